"""Which objects the watcher looks at: a sparse index attribute, present only while an object
needs watching.

`watch_shard` = "<kind>#w<n>" (n from the id's hash, over WATCH_SHARDS partitions) is the
partition key of the `by_watch` index (sort key `created_key`). A batch carries it while it is
pending (whatever its status: a cancel while pending keeps it watched), unfinished, or finished
but not settled; a file while it waits for its provider (`uploaded`, no upstream id). Every
write of those conditions sets or removes it (`apply_to_update`, and `ObjectRecord.to_item`
for whole-item puts); the settlement's transaction removes it. A pass therefore reads live work
only, never the history.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from gateway.models.batches import TERMINAL_BATCH_STATUSES
from gateway.runtime import resources

if TYPE_CHECKING:
    from gateway.storage.id_map import ObjectRecord

WATCH_ATTRIBUTE = resources.WATCH_ATTRIBUTE
WATCH_SHARDS = 4
WATCHED_KINDS = ("batch", "file")
PENDING = "pending"  # storage.pending's key in `state` (not imported: pending imports id_map)
# In a batch's `state`: its record reads final (cancelled while its create was pending) while the
# provider's batch, found later and cancelled there, has not ended yet; the watcher refreshes it
# until it has, and only then books it.
UPSTREAM_OPEN = "upstream_open"
# In a batch's `state`: the batch runs as a plan of parts (service.plan), no provider batch of
# its own; the watcher drives it until it is final and settled.
PLAN = "plan"


def shard_values(kind: str) -> list[str]:
    return [f"{kind}#w{shard}" for shard in range(WATCH_SHARDS)]


def shard_of(kind: str, record_id: str) -> str:
    digest = hashlib.sha256(record_id.encode()).digest()
    return f"{kind}#w{int.from_bytes(digest[:4], 'big') % WATCH_SHARDS}"


def needs_watching(record: ObjectRecord) -> bool:
    if record.kind == "batch":
        if record.upstream_id is None and PENDING in record.state:
            return True  # a create that never heard back, cancelled by its owner or not
        if record.status not in TERMINAL_BATCH_STATUSES:
            return record.upstream_id is not None or PLAN in record.state
        return not record.settlement  # finished: until its usage and cost are booked
    if record.kind == "file":
        return record.status == "uploaded" and record.upstream_id is None
    return False


def watch_value(record: ObjectRecord) -> str | None:
    return shard_of(record.kind, record.id) if needs_watching(record) else None


def apply_to_update(update: dict[str, Any], record: ObjectRecord) -> dict[str, Any]:
    """UpdateItem parameters (`UpdateExpression` with SET, names, values) that also SET the
    watch attribute when `record` needs watching, else REMOVE it (objects of a watched kind)."""
    if record.kind not in WATCHED_KINDS:
        return update
    names = update.setdefault("ExpressionAttributeNames", {})
    names["#watch"] = WATCH_ATTRIBUTE
    value = watch_value(record)
    expression = str(update.get("UpdateExpression") or "").strip()
    if value is not None:
        update.setdefault("ExpressionAttributeValues", {})[":watch"] = {"S": value}
        rest = expression[len("SET ") :] if expression.startswith("SET ") else ""
        if rest:
            update["UpdateExpression"] = f"SET #watch = :watch, {rest}"
        else:
            update["UpdateExpression"] = f"SET #watch = :watch {expression}".strip()
    elif " REMOVE " in f" {expression}":
        update["UpdateExpression"] = expression.replace("REMOVE ", "REMOVE #watch, ", 1)
    else:
        update["UpdateExpression"] = f"{expression} REMOVE #watch".strip()
    return update
