"""Files: create, retrieve, list, delete, content."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from gateway.errors import (
    ConflictError,
    InvalidRequestError,
    ServiceUnavailableError,
    UpstreamRequestError,
)
from gateway.formats.ids import new_id
from gateway.http.auth import Caller
from gateway.http.idempotency import KEY_LIFETIME_SECONDS, idempotency_key_reused
from gateway.models.common import ListPage
from gateway.models.files import FileDeleted, FileObject
from gateway.providers.registry import client_for
from gateway.runtime.settings import get_settings
from gateway.service import adoption
from gateway.service.listing import ListRequest, page_objects
from gateway.service.ownership import owned_record
from gateway.service.translate import OUTPUT_PURPOSE, file_object
from gateway.storage import pending
from gateway.storage.id_map import IdMap, ObjectRecord

_PENDING_STATUS = "uploaded"  # what a file reads while the gateway waits for its provider

if TYPE_CHECKING:  # content delivery (S3) is loaded by the two functions that use it only
    from gateway.service.content_delivery import FileContent


@dataclass(frozen=True)
class NewFile:
    filename: str
    content: bytes | IO[bytes]
    purpose: str
    content_type: str = "application/octet-stream"
    expires_after: dict[str, Any] | None = None


def create_file(
    caller: Caller,
    provider: str | None,
    new_file: NewFile,
    id_map: IdMap | None = None,
    *,
    file_id: str | None = None,
) -> FileObject:
    """Write ahead: a pending record (conditional put, status `uploaded`), the provider's
    upload, then the record finished (conditional). `file_id` comes from the caller's
    Idempotency-Key: a retry meets its first attempt's record and finishes it, adopting the
    provider's file if an earlier attempt made one (service.adoption)."""
    id_map = id_map or IdMap()
    provider = provider or get_settings().default_provider
    caller.require_provider(provider)
    if not new_file.purpose.strip():
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
    fresh = _pending_file(caller, provider, new_file, file_id or new_id("file"))
    if new_file.purpose == "batch":
        # checked line by line before any provider sees it (or bills for it); loaded here only
        from gateway.service.batch_input_check import BATCH_CHECK_STATE, checked_figures, rules_for

        fresh.state[BATCH_CHECK_STATE] = checked_figures(new_file.content, rules_for(provider))
    existing = pending.put_new(fresh)
    if existing is None:
        return _upload(id_map, fresh, new_file, first_attempt=True)
    if time.time() - existing.created_at > KEY_LIFETIME_SECONDS:
        # an old key used again, for this request or another: a new file (the age comes first)
        return create_file(caller, provider, new_file, id_map)
    if existing.kind != "file" or existing.state.get("request") != fresh.state["request"]:
        raise idempotency_key_reused()
    if pending.is_pending(existing) and existing.status == _PENDING_STATUS:
        upstream = adoption.find_upstream_file(id_map, existing)
        if upstream is not None:
            return _finish(id_map, existing, upstream)
        adoption.wait_for_provider(existing)
        existing.state = {**existing.state, pending.PENDING: {"attempted_at": int(time.time())}}
        if not pending.settle(existing, expected_status=_PENDING_STATUS):
            return _reloaded(id_map, existing)
        return _upload(id_map, existing, new_file, first_attempt=False)
    return FileObject.model_validate(existing.object)


def retrieve_file(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileObject:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    if pending.is_pending(record):
        return adopt_pending_file(record, id_map)
    if record.upstream_id is None or record.status in {"error"}:
        if _transfer_overdue(record):
            from gateway.service.transfer_failure import finish_stale_transfer  # only then

            finish_stale_transfer(record.id, id_map)
            record = id_map.get_consistent(record.id) or record
        return FileObject.model_validate(record.object)
    obj = file_object(client_for(record.provider).retrieve_file(record.upstream_id), record.id)
    if record.purpose == OUTPUT_PURPOSE and obj.purpose != OUTPUT_PURPOSE:
        # a planned batch's merged file made before they were kept (uploaded as `user_data`)
        obj = obj.model_copy(update={"purpose": OUTPUT_PURPOSE})
    snapshot = record.object = obj.model_dump(mode="json")
    id_map.save_if_changed(record)  # an unchanged file costs no write
    # a lost conditional write leaves the newer stored object in the record: serve that
    return obj if record.object is snapshot else FileObject.model_validate(record.object)


def _transfer_overdue(record: ObjectRecord) -> bool:
    """A file still waiting for a transfer whose deadline has passed (it will never finish)."""
    job = record.state.get("transfer") if record.status == "uploaded" else None
    deadline = job.get("deadline") if isinstance(job, dict) else None
    return deadline is not None and time.time() > float(deadline)


def adopt_pending_file(record: ObjectRecord, id_map: IdMap | None = None) -> FileObject:
    """Settle a file whose upload never heard back from the provider (for retrieve, delete and
    the periodic watcher): attach the provider's file if it has one; end it in `error` once no
    upload can still be running; else leave it pending (`uploaded`)."""
    id_map = id_map or IdMap()
    if not pending.is_pending(record):
        return FileObject.model_validate(record.object)
    upstream = adoption.find_upstream_file(id_map, record)
    if upstream is not None:
        return _finish(id_map, record, upstream)
    if not adoption.given_up(record):
        return FileObject.model_validate(record.object)
    record.object = {
        **record.object,
        "status": "error",
        "status_details": f"The upload to provider '{record.provider}' did not complete, and the "
        "provider holds no such file. Upload it again.",
    }
    record.state = {name: value for name, value in record.state.items() if name != pending.PENDING}
    if pending.settle(record, expected_status=_PENDING_STATUS):
        return FileObject.model_validate(record.object)
    return _reloaded(id_map, record)


def list_files(caller: Caller, request: ListRequest, id_map: IdMap | None = None) -> ListPage[FileObject]:
    objects, has_more = page_objects(id_map or IdMap(), caller, "file", request)
    return ListPage[FileObject].of([FileObject.model_validate(o) for o in objects], has_more)


def delete_file(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileDeleted:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    if pending.is_pending(record):
        adopt_pending_file(record, id_map)  # a provider file its upload left behind goes too
        record = id_map.get(record.id) or record
    if record.upstream_id is not None:
        try:
            client_for(record.provider).delete_file(record.upstream_id)
        except UpstreamRequestError as exc:
            if exc.status_code != 404:  # already gone upstream: forget it here too
                raise
    id_map.delete(record)
    from gateway.service import content_delivery

    content_delivery.forget(record)
    return FileDeleted(id=record.id)


def file_content(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileContent:
    """Inline bytes when they fit a Lambda response, else a presigned URL (service.content_delivery)."""
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    filename = str(record.object.get("filename") or f"{record.id}.jsonl")
    if record.upstream_id is None:
        failed = record.status == "error"
        raise ConflictError(
            f"File {file_id} failed to reach its provider: {record.object.get('status_details')}"
            if failed
            else f"File {file_id} is still being transferred to its provider; try again shortly.",
            code="file_not_ready",
        )
    from gateway.service import content_delivery

    return content_delivery.deliver(record, filename)


# Write-ahead steps of a create ---------------------------------------------------------------
def _pending_file(caller: Caller, provider: str, new_file: NewFile, file_id: str) -> ObjectRecord:
    size, digest = _size_and_digest(new_file.content)
    now = int(time.time())
    obj = FileObject(
        id=file_id,
        bytes=size,
        created_at=now,
        filename=new_file.filename,
        purpose=new_file.purpose,
        status=_PENDING_STATUS,
    )
    request = {
        "provider": provider,
        "filename": new_file.filename,
        "purpose": new_file.purpose,
        "expires_after": new_file.expires_after,
        "bytes": size,
        "sha256": digest,
    }
    return ObjectRecord(
        id=file_id,
        kind="file",
        owner=caller.key_id,
        provider=provider,
        created_at=now,
        object=obj.model_dump(mode="json"),
        purpose=new_file.purpose,
        state={"request": adoption.request_hash(request), pending.PENDING: {"attempted_at": now}},
    )


def _upload(id_map: IdMap, record: ObjectRecord, new_file: NewFile, *, first_attempt: bool) -> FileObject:
    if hasattr(new_file.content, "seek"):
        new_file.content.seek(0)
    try:
        upstream = client_for(record.provider).create_file(
            filename=adoption.upstream_filename(record.id, new_file.filename),
            content=new_file.content,
            purpose=new_file.purpose,
            expires_after=new_file.expires_after,
            content_type=new_file.content_type,
            timeout=adoption.create_timeout(),
        )
    except Exception as exc:
        adoption.after_failed_call(record, exc, first_attempt=first_attempt)
        raise
    return _finish(id_map, record, upstream)


def _finish(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> FileObject:
    upstream_id = str(upstream["id"])
    if id_map.claim_upstream(record.provider, upstream_id, record.id) != record.id:
        raise ServiceUnavailableError("The provider's file is claimed by another request; retry.")
    obj = file_object(upstream, record.id)
    record.upstream_id = upstream_id
    record.object = obj.model_dump(mode="json")
    record.ttl = obj.expires_at
    record.state = {name: value for name, value in record.state.items() if name != pending.PENDING}
    if pending.attach_upstream(record, expected_status=_PENDING_STATUS):
        return obj
    current = id_map.get(record.id)
    if current is not None and current.upstream_id == upstream_id:
        return FileObject.model_validate(current.object)  # a concurrent call finished it
    raise ServiceUnavailableError("The file changed while it was being recorded; retry.")


def _reloaded(id_map: IdMap, record: ObjectRecord) -> FileObject:
    current = id_map.get(record.id)
    if current is None:
        raise ServiceUnavailableError("The file changed while it was being recorded; retry.")
    return FileObject.model_validate(current.object)


def _size_and_digest(content: bytes | IO[bytes]) -> tuple[int, str]:
    if isinstance(content, bytes | bytearray):
        return len(content), hashlib.sha256(content).hexdigest()
    digest, size = hashlib.sha256(), 0
    content.seek(0)
    while chunk := content.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    content.seek(0)
    return size, digest.hexdigest()
