"""A planned batch's owner's requests: cancel, pause, resume. Each is one conditional write of
the batch's record (its plan's flag, and for a cancel its `cancelling` status with the event);
the watcher's next step acts on it (service.plan.runner): a pause submits no new part (running
ones finish), a resume lets them go again, a cancel cancels running parts, drops waiting ones
and merges what finished."""

from __future__ import annotations

import time

from gateway.errors import ConflictError, ServiceUnavailableError
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import PLAN

_ATTEMPTS = 3  # a write lost to a watcher's step is read again and retried


def cancel(id_map: IdMap, record: ObjectRecord) -> Batch:
    return _request(id_map, record, "cancel", True)


def pause(id_map: IdMap, record: ObjectRecord, paused: bool) -> Batch:
    return _request(id_map, record, "paused", paused)


def _request(id_map: IdMap, record: ObjectRecord, flag: str, value: bool) -> Batch:
    from gateway.service.plan.runner import record_change

    for _ in range(_ATTEMPTS):
        if PLAN not in record.state:
            raise ConflictError(
                f"Batch {record.id} runs as one provider batch: only a batch run as parts can be "
                "paused or resumed.",
                param="batch_id",
                code="batch_not_pausable",
            )
        if record.status in TERMINAL_BATCH_STATUSES or (flag == "paused" and record.status == "cancelling"):
            raise ConflictError(
                f"Cannot {'cancel' if flag == 'cancel' else 'pause or resume'} a batch with status "
                f"'{record.status}'.",
                param="batch_id",
                code="batch_not_cancellable" if flag == "cancel" else "batch_not_pausable",
            )
        plan = {**record.state[PLAN], flag: value}
        obj = dict(record.object)
        if flag == "cancel":
            obj["status"], obj["cancelling_at"] = "cancelling", obj.get("cancelling_at") or int(time.time())
        else:
            obj["paused"] = value
        record.state = {**record.state, PLAN: plan}
        if record_change(id_map, record, obj):
            return Batch.model_validate(record.object)
        current = id_map.get_consistent(record.id)
        if current is None:
            break
        record = current
    raise ServiceUnavailableError("The batch changed while it was being recorded; retry.")
