"""The Uploads API: create, add parts, complete (file transferred asynchronously), cancel.

Status rules, as OpenAI's: a part or a completion is only taken by a `pending` upload
(anything else is a 400 naming the status); `complete` answers 400 when the listed parts do
not add up to the declared `bytes` (the upload stays pending, so the client may fix it); an
upload is `expired` an hour after creation. The given `md5` is checked while the transfer
streams the parts (one pass, bounded memory): a mismatch leaves the File in `error`.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.errors import InvalidRequestError, PayloadTooLargeError, ServiceUnavailableError
from gateway.formats.ids import new_id
from gateway.http.auth import Caller
from gateway.http.idempotency import KEY_LIFETIME_SECONDS
from gateway.models.files import FileObject
from gateway.models.uploads import (
    UPLOAD_LIFETIME_SECONDS,
    CompleteUploadRequest,
    CreateUploadRequest,
    Upload,
    UploadPart,
)
from gateway.observability import logger
from gateway.providers.registry import require_known
from gateway.routes import MAX_UPLOAD_PART_BYTES
from gateway.runtime import async_invoke
from gateway.runtime.settings import get_settings
from gateway.service.ownership import owned_record
from gateway.storage import pending, transitions, upload_parts
from gateway.storage.id_map import IdMap, ObjectRecord

TRANSFER_FUNCTION = "file_transfer"
# Upload records outlive their hour by as long as the lifecycle rule keeps stray parts.
_RECORD_TTL_SECONDS = UPLOAD_LIFETIME_SECONDS + 86400 * 2


def create_upload(
    caller: Caller,
    provider: str | None,
    request: CreateUploadRequest,
    id_map: IdMap | None = None,
    *,
    upload_id: str | None = None,
) -> Upload:
    """`upload_id` comes from the caller's Idempotency-Key: a retry whose first attempt was
    stored (its answer lost) gets that upload, not a second one."""
    id_map = id_map or IdMap()
    provider = require_known(provider or get_settings().default_provider)
    caller.require_provider(provider)
    now = int(time.time())
    upload = Upload(
        id=upload_id or new_id("upload"),
        bytes=request.bytes,
        created_at=now,
        expires_at=now + UPLOAD_LIFETIME_SECONDS,
        filename=request.filename,
        purpose=request.purpose,
        status="pending",
    )
    state: dict[str, Any] = {"mime_type": request.mime_type}
    if request.expires_after is not None:
        state["expires_after"] = request.expires_after.model_dump()
    existing = pending.put_new(
        ObjectRecord(
            id=upload.id,
            kind="upload",
            owner=caller.key_id,
            provider=provider,
            created_at=now,
            object=upload.model_dump(mode="json"),
            purpose=upload.purpose,
            ttl=now + _RECORD_TTL_SECONDS,
            state=state,
        )
    )
    if existing is None:
        return upload
    if existing.kind != "upload" or now - existing.created_at > KEY_LIFETIME_SECONDS:
        return create_upload(caller, provider, request, id_map)  # an old key used again: a new upload
    return Upload.model_validate(existing.object)


def add_part(caller: Caller, upload_id: str, data: bytes, id_map: IdMap | None = None) -> UploadPart:
    id_map = id_map or IdMap()
    if len(data) > MAX_UPLOAD_PART_BYTES:
        raise part_too_large(len(data))
    record = _pending(id_map, caller, upload_id)
    part = UploadPart(id=new_id("part"), created_at=int(time.time()), upload_id=record.id)
    upload_parts.put_part(record.id, part.id, data)
    return part


def complete_upload(
    caller: Caller, upload_id: str, request: CompleteUploadRequest, id_map: IdMap | None = None
) -> Upload:
    """Crash-safe in three steps: the claim (pending -> completing) writes ahead the file id and
    the parts; then the file record (created once), the transfer's invocation, and the upload
    marked completed. A complete or cancel that finds the upload `completing` finishes it."""
    id_map = id_map or IdMap()
    record = _live(id_map, caller, upload_id)
    if _stored_status(record) == transitions.COMPLETING:
        return _finish_completion(id_map, record)
    record = _pending(id_map, caller, upload_id, record)
    upload = Upload.model_validate(record.object)
    if len(set(request.part_ids)) != len(request.part_ids):
        raise InvalidRequestError("Invalid 'part_ids': a part is listed more than once.", param="part_ids")
    parts, unknown = upload_parts.named_parts(record.id, request.part_ids)
    if unknown:
        raise InvalidRequestError(
            f"Invalid part ID(s) for this Upload: {', '.join(unknown[:10])}.", param="part_ids"
        )
    received = sum(part.size for part in parts)
    if received != upload.bytes:
        raise InvalidRequestError(
            f"The number of bytes uploaded ({received}) does not match the number of bytes declared "
            f"when the Upload was created ({upload.bytes}).",
            param="part_ids",
            code="bytes_mismatch",
        )
    completion = {
        "file_id": new_id("file"),
        "created_at": int(time.time()),
        "part_ids": request.part_ids,
        "md5": request.md5.lower() if request.md5 else None,
    }
    if not transitions.claim_completion(record.id, completion):
        if transitions.current_status(record.id) == transitions.COMPLETING:
            return _finish_completion(id_map, record)  # a concurrent complete claimed it
        raise _not_pending(upload_id, _reload_status(id_map, record))
    return _finish_completion(id_map, record, completion)


def _finish_completion(
    id_map: IdMap, record: ObjectRecord, completion: dict[str, Any] | None = None
) -> Upload:
    """Every step after the claim, each safe to repeat: the file record is created once, the
    transfer tolerates a second invocation, and the upload becomes completed once."""
    completion = completion or transitions.pending_completion(record.id)
    if completion is None:  # another attempt finished it meanwhile
        return _completed_upload(id_map, record)
    upload = Upload.model_validate({**record.object, "status": "pending"})
    file_id, created_at = str(completion["file_id"]), int(completion["created_at"])
    file = FileObject(
        id=file_id,
        bytes=upload.bytes,
        created_at=created_at,
        filename=upload.filename,
        purpose=upload.purpose,
        status="uploaded",
    )
    id_map.put_new(
        ObjectRecord(
            id=file.id,
            kind="file",
            owner=record.owner,
            provider=record.provider,
            created_at=created_at,
            object=file.model_dump(mode="json"),
            purpose=file.purpose,
            state={
                "transfer": {
                    "upload_id": record.id,
                    "part_ids": completion["part_ids"],
                    "md5": completion["md5"],
                    "mime_type": record.state.get("mime_type") or "application/octet-stream",
                    "expires_after": record.state.get("expires_after"),
                    "started_at": created_at,
                    "deadline": created_at + get_settings().transfer_deadline_seconds,
                }
            },
        )
    )  # False: an earlier attempt created it
    _start_transfer(record, file_id)
    upload = upload.model_copy(update={"status": "completed", "file": file})
    record.object = upload.model_dump(mode="json")
    record.state = {**record.state, "file_id": file_id}
    if not transitions.finish_completion(record):
        return _completed_upload(id_map, record)
    record.mark_stored()
    logger.info("upload completed", extra={"upload_id": record.id, "file_id": file_id, "bytes": file.bytes})
    return upload


def _start_transfer(upload: ObjectRecord, file_id: str) -> None:
    """Invoke the transfer function. If that fails the upload stays `completing` (its file
    recorded, its parts in S3) and the client's retry of complete invokes it again; a file whose
    transfer never starts ends in `error` at its deadline (transfer_failure.finish_stale_transfer)."""
    try:
        async_invoke.invoke_async(TRANSFER_FUNCTION, {"file_id": file_id})
    except Exception:
        logger.exception("could not start the transfer", extra={"upload_id": upload.id, "file_id": file_id})
        raise ServiceUnavailableError(
            "The upload could not be handed to the file transfer; nothing was lost, retry complete."
        ) from None


def _completed_upload(id_map: IdMap, record: ObjectRecord) -> Upload:
    """The upload as another attempt completed it."""
    stored = id_map.get_consistent(record.id)
    if stored is None:
        raise _not_pending(record.id, "expired")
    return Upload.model_validate(stored.object)


def cancel_upload(caller: Caller, upload_id: str, id_map: IdMap | None = None) -> Upload:
    id_map = id_map or IdMap()
    record = _live(id_map, caller, upload_id)
    if _stored_status(record) == transitions.COMPLETING:
        _finish_completion(id_map, record)  # the completion won: finish it, then refuse as OpenAI does
        raise _not_cancellable(upload_id, "completed")
    if record.status != "pending" or not transitions.claim_status(record.id, "pending", "cancelled"):
        status = _reload_status(id_map, record)
        if status in ("cancelled", "expired"):
            upload_parts.delete_parts(record.id)  # a retried cancel still leaves nothing behind
            return Upload.model_validate(id_map.get(record.id).object)  # type: ignore[union-attr]
        if transitions.current_status(record.id) == transitions.COMPLETING:
            _finish_completion(id_map, record)
        raise _not_cancellable(upload_id, status)
    return _finish(id_map, record, "cancelled")


def _not_cancellable(upload_id: str, status: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Upload {upload_id} is already {status} and cannot be cancelled.",
        param="upload_id",
        code="upload_not_pending",
    )


def part_too_large(size: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Upload part is {size} bytes, over the gateway's limit of {MAX_UPLOAD_PART_BYTES} bytes per part "
        f"(a part must fit one Lambda invocation): pass part_size <= {MAX_UPLOAD_PART_BYTES}.",
        param="data",
        code="part_too_large",
    )


# Helpers ---------------------------------------------------------------------------------
def _live(id_map: IdMap, caller: Caller, upload_id: str) -> ObjectRecord:
    """The caller's upload, marked expired (and its parts removed) once its hour is over."""
    record = owned_record(id_map, caller, upload_id, "upload", param="upload_id")
    expires_at = int(record.object.get("expires_at") or 0)
    if record.status == "pending" and time.time() >= expires_at:
        if transitions.claim_status(record.id, "pending", "expired"):
            _finish(id_map, record, "expired")
        record = id_map.get(record.id) or record
    return record


def _pending(
    id_map: IdMap, caller: Caller, upload_id: str, record: ObjectRecord | None = None
) -> ObjectRecord:
    record = record or _live(id_map, caller, upload_id)
    status = _stored_status(record)
    if status != "pending":
        raise _not_pending(upload_id, "completed" if status == transitions.COMPLETING else status)
    return record


def _stored_status(record: ObjectRecord) -> str | None:
    """The status attribute as read: it leads the object's during a claim (`completing`)."""
    stored = (record.stored or {}).get("status")
    return str(stored) if stored is not None else record.status


def _finish(id_map: IdMap, record: ObjectRecord, status: str) -> Upload:
    upload = Upload.model_validate({**record.object, "status": status})
    record.object = upload.model_dump(mode="json")
    id_map.save_object(record)
    removed = upload_parts.delete_parts(record.id)
    logger.info(f"upload {status}", extra={"upload_id": record.id, "parts_removed": removed})
    return upload


def _reload_status(id_map: IdMap, record: ObjectRecord) -> str:
    status = transitions.current_status(record.id)
    return "completed" if status in (None, transitions.COMPLETING) else status


def _not_pending(upload_id: str, status: str | None) -> InvalidRequestError:
    return InvalidRequestError(
        f"Upload {upload_id} is already {status}; only a pending upload takes parts or completes.",
        param="upload_id",
        code="upload_not_pending",
    )
