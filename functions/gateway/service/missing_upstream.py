"""A tracked batch its provider answers 404 for: remembered at the first 404, ended after a
grace period (a provider's brief inconsistency is not the end of a batch).

Ended as `failed` (or `expired` once its completion window has passed) with the reason in
`errors`, announced like any other end, and settled: it books what its output shows (nothing,
when the provider holds none), so its budget hold goes back. Logged once at the first 404 and
once when ended; the passes between log nothing.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.errors import GatewayError
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch
from gateway.observability import logger
from gateway.storage.id_map import IdMap, ObjectRecord

GRACE_SECONDS = 3600
MISSING_SINCE = "upstream_missing_since"  # in `state`: when the provider first answered 404
CODE = "provider_batch_not_found"


def is_missing(exc: Exception) -> bool:
    return isinstance(exc, GatewayError) and exc.status_code == 404


def forget_missing(record: ObjectRecord) -> None:
    """The provider answered for it again: a later 404 starts a new grace period."""
    if MISSING_SINCE in record.state:
        record.state = {name: value for name, value in record.state.items() if name != MISSING_SINCE}


def note_missing(id_map: IdMap, record: ObjectRecord, now: int | None = None) -> bool:
    """Record the 404 (the first one) or end the batch (past the grace period): True when
    this call ended it."""
    now = int(time.time()) if now is None else now
    since = record.state.get(MISSING_SINCE)
    if since is None:
        record.state = {**record.state, MISSING_SINCE: now}
        if id_map.save_object(record):
            logger.warning(
                "the provider answers 404 for a tracked batch; it ends after the grace period",
                extra={
                    "batch_id": record.id,
                    "upstream_id": record.upstream_id,
                    "grace_seconds": GRACE_SECONDS,
                },
            )
        return False
    if now - int(since) < GRACE_SECONDS:
        return False
    return _end(id_map, record, now)


def _end(id_map: IdMap, record: ObjectRecord, now: int) -> bool:
    from gateway.service import batch_events
    from gateway.service.settlement import settle_if_finished

    before = record.stored_object()
    if record.status not in TERMINAL_BATCH_STATUSES:
        status = "expired" if now >= record.created_at + _window_seconds(record.object) else "failed"
        record.object = {
            **record.object,
            "status": status,
            f"{status}_at": now,
            "errors": {
                "object": "list",
                "data": [
                    {
                        "code": CODE,
                        "message": f"Provider '{record.provider}' no longer knows this batch "
                        f"(404 for {GRACE_SECONDS // 60} minutes); the gateway ended it.",
                        "line": None,
                        "param": None,
                    }
                ],
            },
        }
    recorded = batch_events.outbox_events(record, before)
    if not id_map.save_object(record, with_puts=[event.to_item() for event in recorded]):
        return False  # another writer changed it first: the next pass looks again
    batch_events.publish(recorded, id_map)
    logger.info("batch ended: its provider no longer knows it", extra={"batch_id": record.id})
    settle_if_finished(record, Batch.model_validate(record.object))
    return True


def _window_seconds(batch: dict[str, Any]) -> int:
    window = str(batch.get("completion_window") or "24h")
    number, unit = window[:-1], window[-1:]
    if not number.isdigit():
        return 24 * 3600
    return int(number) * {"h": 3600, "d": 86400, "m": 60, "s": 1}.get(unit, 3600)
