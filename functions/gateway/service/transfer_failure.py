"""How a transfer that cannot finish ends: the file in `error` with a reason, its parts removed.

Every path writes conditionally (transitions.record_failed): only a file still waiting for its
transfer is failed, so a duplicate run, Lambda's on-failure record arriving late, or a stale
check never turns `processed` into `error`. A provider copy that a run noted (write-ahead) but
never committed is deleted when the file is failed here.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.models.files import FileObject
from gateway.observability import logger, metric_names
from gateway.observability.metrics import emit
from gateway.providers.registry import client_for
from gateway.storage import transitions, upload_parts
from gateway.storage.id_map import IdMap, ObjectRecord

# Lambda's on-failure invocation record: why it gave up (requestContext.condition).
_CONDITIONS = {
    "RetriesExhausted": "the transfer function failed on every attempt",
    "EventAgeExceeded": "the transfer did not start before its event expired",
}


def finish_stale_transfer(file_id: str, id_map: IdMap | None = None, now: float | None = None) -> str | None:
    """End a transfer that is past its deadline in `error` (for files.retrieve and a periodic
    watcher): returns the file's status then, or None when there is nothing stale to finish."""
    id_map = id_map or IdMap()
    record = id_map.get(file_id)
    job = pending_job(record)
    if record is None or job is None or not past_deadline(job, time.time() if now is None else now):
        return None
    return _fail_and_drop_copy(id_map, record, str(job["upload_id"]), deadline_message(job))


def fail_abandoned_transfer(file_id: str, reason: str, id_map: IdMap | None = None) -> str | None:
    """Lambda gave up on the transfer (retries exhausted, event too old): end the file in
    `error` with `reason`, unless it was transferred meanwhile. Returns its status then."""
    id_map = id_map or IdMap()
    record = id_map.get(file_id)
    job = pending_job(record)
    if record is None or job is None:
        return record.status if record is not None else None
    return _fail_and_drop_copy(id_map, record, str(job["upload_id"]), reason)


def _fail_and_drop_copy(id_map: IdMap, record: ObjectRecord, upload_id: str, reason: str) -> str:
    """`fail`, then delete the provider copy a dead run noted but never committed."""
    status = fail(id_map, record, upload_id, reason)
    sent = transitions.sent_upstream(record.id) if status == "error" else None
    if sent is not None:
        try:
            client_for(record.provider).delete_file(sent)
        except Exception:  # logged for an operator: the only trace of a copy left upstream
            logger.exception("could not delete a provider copy", extra={"upstream_id": sent})
    return status


def pending_job(record: ObjectRecord | None) -> dict[str, Any] | None:
    """The transfer job of a file still waiting for it, else None."""
    if record is None or record.kind != "file" or record.status != "uploaded" or record.upstream_id:
        return None
    job = record.state.get("transfer")
    return job if isinstance(job, dict) and job.get("upload_id") else None


def past_deadline(job: dict[str, Any], now: float) -> bool:
    deadline = job.get("deadline")
    return deadline is not None and now > float(deadline)


def deadline_message(job: dict[str, Any]) -> str:
    return f"the transfer did not finish by its deadline ({int(job['deadline'])}, unix seconds)"


def fail(id_map: IdMap, record: ObjectRecord, upload_id: str, message: str) -> str:
    """`error` with the reason, only while the transfer has not succeeded (a duplicate run never
    turns `processed` into `error`); the parts go either way. Returns the file's status."""
    obj = FileObject.model_validate(
        {**record.object, "status": "error", "status_details": f"Transfer to the provider failed: {message}"}
    )
    record.object = obj.model_dump(mode="json")
    record.state = {"upload_id": upload_id, "failed_at": int(time.time())}
    if transitions.record_failed(record):
        record.mark_stored()
        status = "error"
        emit(metric_names.TRANSFER_FAILURES, provider=record.provider)
    else:
        status = transitions.current_status(record.id) or "deleted"
        logger.info("transfer: the file moved on; not failed", extra={"file_id": record.id, "status": status})
    upload_parts.delete_parts(upload_id)
    return status


def handle_failure_record(record: dict[str, Any], id_map: IdMap | None = None) -> dict[str, Any]:
    """Lambda's on-failure destination record for a file_transfer event: end that file in
    `error` with the reason Lambda gave (condition, attempts, error type)."""
    payload = record.get("requestPayload")
    file_id = str(payload.get("file_id") or "") if isinstance(payload, dict) else ""
    if not file_id:
        logger.error("transfer failure record without a file_id", extra={"keys": sorted(record)})
        return {"file_id": None, "status": None}
    context = record.get("requestContext") or {}
    condition = str(context.get("condition") or "unknown")
    reason = _CONDITIONS.get(condition, f"the transfer function gave up ({condition})")
    if attempts := context.get("approximateInvokeCount"):
        reason += f" ({attempts} attempts)"
    response = record.get("responsePayload")
    if isinstance(response, dict) and response.get("errorType"):
        reason += f": {response['errorType']}"
    logger.warning("transfer abandoned by Lambda", extra={"file_id": file_id, "condition": condition})
    return {"file_id": file_id, "status": fail_abandoned_transfer(file_id, reason, id_map)}
