"""One delivery attempt: sign the event, POST it, remember how it went.

A 2xx acknowledges; a redirect is not followed; 10 s timeout. The destination is checked
again here, so a name that starts resolving into a private network is never called.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway import secret_store
from gateway.ids import new_id
from gateway.models.webhooks import WebhookDelivery
from gateway.observability import logger
from gateway.settings import get_settings
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks.destinations import UnsafeDestinationError, check_destination
from gateway.webhooks.signing import signed_headers, signing_secret

DELIVERY_TIMEOUT_SECONDS = 10.0
KEEP_DELIVERIES_SECONDS = 30 * 86400
GRACE_SECONDS = 24 * 3600


def current_secrets(endpoint: ObjectRecord, now: int) -> list[str]:
    """The secret of the endpoint's generation, and the previous one while its grace period lasts."""
    root = secret_store.key_pepper()
    state = endpoint.state
    secrets = [signing_secret(root, endpoint.id, int(state.get("generation", 1)))]
    previous, until = state.get("previous_generation"), state.get("previous_valid_until")
    if previous is not None and until is not None and now < int(until):
        secrets.append(signing_secret(root, endpoint.id, int(previous)))
    return secrets


def send(
    endpoint: ObjectRecord, event: dict[str, Any], attempt: int, id_map: IdMap | None = None
) -> WebhookDelivery:
    """Delivers `event` once to `endpoint` and records the attempt."""
    import httpx  # only the functions that deliver pay for it

    now = int(time.time())
    body = json.dumps(event, separators=(",", ":")).encode()
    url = str(endpoint.object["url"])
    status_code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        check_destination(url, allow_loopback=get_settings().webhooks_allow_loopback)
        headers = signed_headers(current_secrets(endpoint, now), str(event["id"]), now, body)
        with httpx.Client(timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False) as client:
            status_code = client.post(url, content=body, headers=headers).status_code
    except UnsafeDestinationError as exc:
        error = exc.message
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: the endpoint could not be reached"
    latency_ms = int((time.perf_counter() - started) * 1000)
    delivery = WebhookDelivery(
        id=new_id("webhook_delivery"),
        webhook_endpoint_id=endpoint.id,
        event_id=str(event["id"]),
        event_type=str(event["type"]),
        attempt=attempt,
        created_at=now,
        status_code=status_code,
        latency_ms=latency_ms,
        success=status_code is not None and 200 <= status_code < 300,
        error=error,
    )
    (id_map or IdMap()).put(
        ObjectRecord(
            id=delivery.id,
            kind="webhook_delivery",
            owner=endpoint.id,  # listed per endpoint through the by_owner index
            provider=NO_PROVIDER,
            created_at=now,
            object=delivery.model_dump(mode="json"),
            state={"event": event},
            ttl=now + KEEP_DELIVERIES_SECONDS,
        ),
        reverse=False,
    )
    logger.info(
        "webhook delivery",
        extra={"endpoint_id": endpoint.id, "event_id": delivery.event_id, "status_code": status_code},
    )
    return delivery
