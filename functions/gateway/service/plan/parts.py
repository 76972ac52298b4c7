"""Part records: one item per provider batch of a plan (kind `batch_part`, owned as its batch).

`object` is what clients see in the batch's `parts` (models.batches.BatchPart); `state` keeps
what only the plan needs: its batch, its index, its lines and token estimate, its input file
at the provider, when it was last submitted, how often quota refused it and the provider
batches that refused it, and its result files at the provider. Every write is conditional on
the item read (`IdMap.save_object(if_unchanged=True)`), so two runners never both move a part.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.models.batches import BatchPart, BatchRequestCounts
from gateway.service.plan import PART_KIND, part_id
from gateway.storage.id_map import IdMap, ObjectRecord

# Statuses a part ends in; `submitting` and `running` hold a provider batch (or may).
FINAL = frozenset({"done", "dropped"})
IN_FLIGHT = frozenset({"submitting", "running"})
EARLIER = "earlier_upstream_ids"  # provider batches that refused the part for quota (ended)


def new_part(batch: ObjectRecord, index: int, lines: int, tokens: int) -> ObjectRecord:
    gateway_id = part_id(batch.id, index)
    part = BatchPart(
        id=gateway_id,
        index=index,
        status="planned",
        request_counts=BatchRequestCounts(total=lines, completed=0, failed=0),
    )
    return ObjectRecord(
        id=gateway_id,
        kind=PART_KIND,
        owner=batch.owner,
        provider=batch.provider,
        created_at=int(time.time()),
        object=part.model_dump(mode="json"),
        state={"batch_id": batch.id, "index": index, "lines": lines, "tokens": tokens},
    )


def status(part: ObjectRecord) -> str:
    return str(part.object.get("status"))


def lines(part: ObjectRecord) -> int:
    return int(part.state.get("lines") or 0)


def tokens(part: ObjectRecord) -> int:
    return int(part.state.get("tokens") or 0)


def counts(part: ObjectRecord) -> tuple[int, int]:
    found = part.object.get("request_counts") or {}
    return int(found.get("completed") or 0), int(found.get("failed") or 0)


def update(part: ObjectRecord, **fields: Any) -> None:
    """Change the client-facing fields (validated as a BatchPart)."""
    part.object = BatchPart.model_validate({**part.object, **fields}).model_dump(mode="json")


def save(id_map: IdMap, part: ObjectRecord) -> bool:
    """The part as changed, if the table still holds what it was read as (else `part` becomes
    what the table holds, and False)."""
    return id_map.save_object(part, if_unchanged=True)


def load(id_map: IdMap, batch_id: str, count: int) -> list[ObjectRecord]:
    """The plan's parts in order (a part the split has not written yet is left out)."""
    ids = [part_id(batch_id, index) for index in range(count)]
    found = id_map.get_many(ids)
    return [found[each] for each in ids if each in found]
