"""What a recorded batch change announces, and announcing it.

Detail types: `batch.in_progress|completed|failed|expired|cancelled` when the status reaches
one of those, `batch.progress` when only `request_counts` moved. Each goes to the EventBridge
bus (detail: the gateway's batch object, its owner's key id, the provider deployment) and to
the owner's webhook endpoints that listed its type, as OpenAI's webhook event.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.observability import logger
from gateway.runtime import event_bus
from gateway.storage import outbox
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.outbox import OutboxEvent
from gateway.webhooks import dispatch, events

STATUS_EVENTS = frozenset({"in_progress", "completed", "failed", "expired", "cancelled"})
PROGRESS = "batch.progress"


def _counts(batch: dict[str, Any] | None) -> tuple[int, int, int] | None:
    counts = (batch or {}).get("request_counts")
    if not isinstance(counts, dict):
        return None
    return int(counts.get("completed") or 0), int(counts.get("failed") or 0), int(counts.get("total") or 0)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, str]]:
    """(event type, what makes its id unique) for each announceable change from `before` to
    `after`: the status reached, else counts that moved from counts already known (a status
    event carries its counts; a batch's first counts are no progress)."""
    status = after.get("status")
    if status in STATUS_EVENTS and status != (before or {}).get("status"):
        return [(f"batch.{status}", "")]
    counts, known = _counts(after), _counts(before)
    if (
        counts is not None
        and known is not None
        and counts != known
        and status not in ("cancelled", "expired")
    ):
        return [(PROGRESS, "{}/{}/{}".format(*counts))]
    return []


# What makes the id of a status event recorded before the batch had a provider batch unique
# (a batch cancelled while its create was pending, a create given up): its provider batch, found
# later, ends with a real final event of its own, which receivers must not drop as a duplicate.
UNATTACHED = "unattached"


def announced_changes(record: ObjectRecord, before: dict[str, Any] | None) -> list[tuple[str, str]]:
    """`changes`, with the ids of the status events of a record not attached to a provider
    batch yet set apart from those of the provider batch's own changes. (A provider batch found
    already in the record's final status is the same change: no second event.)"""
    found = changes(before, record.object)
    if record.upstream_id is None:
        return [(kind, f"{UNATTACHED}#{unique}" if kind != PROGRESS else unique) for kind, unique in found]
    return found


def outbox_events(record: ObjectRecord, before: dict[str, Any] | None) -> list[OutboxEvent]:
    """The events of the change `record.object` makes to `before` (empty when none)."""
    now = int(time.time())
    found = []
    for event_type, unique in announced_changes(record, before):
        event = events.batch_event(record.id, event_type, now, detail=unique)
        detail = {
            "event_id": event["id"],
            "batch": record.object,
            "owner": record.owner,
            "provider": record.provider,
        }
        found.append(OutboxEvent(event, event_type, detail, record.owner, record.provider))
    return found


def publish(recorded: list[OutboxEvent], id_map: IdMap | None = None) -> int:
    """Each event to the bus and the owner's endpoints, then out of the outbox. A failure
    leaves the event in the outbox (the watcher publishes it later): how many went out."""
    published = 0
    for event in recorded:
        try:
            event_bus.put_event(event.detail_type, event.detail)
            dispatch.publish(event.owner, event.event, id_map)
            outbox.delete(event)
        except Exception:
            logger.exception("event not published; left in the outbox", extra={"event_id": event.event_id})
            continue
        published += 1
    return published
