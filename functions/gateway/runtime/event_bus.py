"""Batch events to the stack's EventBridge bus (moto's events endpoint under `make serve`)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from gateway.runtime import resources


@lru_cache(maxsize=1)
def _client() -> Any:
    import boto3  # deferred: only the functions that publish pay for the client

    return boto3.client("events")


def put_event(detail_type: str, detail: dict[str, Any]) -> None:
    """One event on the bus; raises when EventBridge did not take it (the outbox keeps it)."""
    bus = os.environ.get(resources.ENV_EVENT_BUS_NAME)
    if not bus:
        return  # no bus configured (unit tests, a bare local run): webhooks only
    answer = _client().put_events(
        Entries=[
            {
                "Source": resources.EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":")),
                "EventBusName": bus,
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        entry = (answer.get("Entries") or [{}])[0]
        raise RuntimeError(f"EventBridge refused the event: {entry.get('ErrorCode')}")


def reset_client() -> None:
    _client.cache_clear()
