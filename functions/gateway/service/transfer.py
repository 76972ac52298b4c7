"""The transfer of a completed upload to its provider (the file_transfer function).

Streams the parts from S3 in the order `complete` named them, in bounded memory: below the
provider's single-request size one multipart POST /files, above it the provider's own
Uploads API in parts of Settings.transfer_part_bytes (Azure deployments always use /files). Checks
the byte count and the client's md5 on the way, then records the upstream id (status from
the provider), or `error` with `status_details`; the S3 parts are removed either way.

Idempotent: Lambda may deliver an Event invocation again. A file that already has its
upstream id, or failed, is left alone (a recorded one gets its reverse item and parts'
removal finished); two runs racing both upload, but only one notes its copy ahead of the
commit (a retry reuses that copy) and records it, the other deletes its own; a failure only
ends a file in `error`
while it still waits (conditional too). A transfer Lambda gives up on ends in `error` through
the on-failure function, one past its deadline when next looked at (service.transfer_failure).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar, cast

from gateway.errors import (
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamTimeoutError,
)
from gateway.observability import logger, metric_names, tracing
from gateway.observability.metrics import emit
from gateway.providers.api import ProviderApi
from gateway.providers.registry import new_client
from gateway.runtime.settings import get_settings
from gateway.service.batch_input_check import BATCH_CHECK_STATE, check_batch_input, rules_for
from gateway.service.transfer_failure import deadline_message, fail, past_deadline, pending_job
from gateway.service.translate import file_object
from gateway.storage import transitions, upload_parts
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.parts_reader import PartsReader
from gateway.storage.upload_parts import StoredPart

T = TypeVar("T")

ATTEMPTS = 3  # per provider request, on 5xx, 429 and timeouts
RETRY_BASE_SECONDS = 1.0


class TransferFailed(Exception):
    """The file cannot reach the provider: it ends in `error` with this message."""


def transfer_file(file_id: str, id_map: IdMap | None = None) -> str | None:
    """Run one transfer; returns the file's final status (None: nothing to do)."""
    id_map = id_map or IdMap()
    record = id_map.get(file_id)
    if record is not None and record.kind == "file" and (record.upstream_id or record.status == "error"):
        _finish_recorded(id_map, record)
        logger.info("transfer: already recorded", extra={"file_id": file_id})
        return None
    job = pending_job(record)
    if record is None or job is None:
        logger.info("transfer: nothing to do", extra={"file_id": file_id})
        return None
    upload_id = str(job["upload_id"])
    tracing.about(record.id)
    if past_deadline(job, time.time()):
        return fail(id_map, record, upload_id, deadline_message(job))
    client = _client(record.provider)
    try:
        sent = transitions.sent_upstream(record.id)
        upstream = _earlier_copy(client, record, sent)
        checked = None  # a reused copy passed its check in the run that sent it
        if upstream is None:
            try:
                parts = _parts(upload_id, list(job["part_ids"]), int(record.object["bytes"]))
                checked = _checked_batch_input(record, upload_id, parts)
                upstream = _send(client, record, job, parts)
            except (TransferFailed, GatewayError) as exc:
                message = exc.message if isinstance(exc, GatewayError) else str(exc)
                logger.warning("transfer failed", extra={"file_id": file_id, "reason": message})
                return fail(id_map, record, upload_id, message)
            except Exception:
                # A retried invocation would most likely fail the same way: end in `error` now.
                logger.exception("transfer failed unexpectedly", extra={"file_id": file_id})
                return fail(id_map, record, upload_id, "internal error in the gateway")
            if not _note_sent(client, record, str(upstream["id"]), replacing=sent):
                return _not_needed(client, record, upload_id, str(upstream["id"]))
        return _record(id_map, client, record, upload_id, upstream, checked)
    finally:
        client.close()


def _earlier_copy(client: ProviderApi, record: ObjectRecord, sent: str | None) -> dict[str, Any] | None:
    """The provider copy an earlier run made and noted (`sent`) but did not commit (it died
    between the two): reused, so a retry never uploads a second copy. None if there is none."""
    if sent is None:
        return None
    try:
        upstream = client.retrieve_file(sent)
    except UpstreamRequestError as exc:
        if exc.status_code == 404:
            return None
        raise
    logger.info("transfer: reusing the provider copy of an earlier run", extra={"file_id": record.id})
    return upstream


def _note_sent(client: ProviderApi, record: ObjectRecord, upstream_id: str, replacing: str | None) -> bool:
    """Write ahead the new copy's id; if even that fails, delete the copy before Lambda retries."""
    try:
        return transitions.note_sent(record.id, upstream_id, replacing)
    except Exception:
        _delete_quietly(client, upstream_id)
        raise


def _not_needed(client: ProviderApi, record: ObjectRecord, upload_id: str, upstream_id: str) -> str:
    """Another run's copy is noted (a duplicate event), or the file moved on: this copy goes.
    The parts stay while the file still waits: the other run may need them again."""
    _delete_quietly(client, upstream_id)
    status = transitions.current_status(record.id) or "deleted"
    if status != "uploaded":
        upload_parts.delete_parts(upload_id)
    logger.info(
        "transfer: another run's copy is in flight, or the file moved on", extra={"file_id": record.id}
    )
    return status


def _checked_batch_input(
    record: ObjectRecord, upload_id: str, parts: list[StoredPart]
) -> dict[str, Any] | None:
    """A batch file is checked line by line before the provider sees it: one that is not JSON
    Lines of objects fails the transfer with the first such lines (the file ends in `error`,
    nothing is sent); its other problems are kept with its figures (a batch of it fails)."""
    if str(record.purpose or record.object.get("purpose")) != "batch":
        return None
    with PartsReader(upload_id, parts, 0, sum(part.size for part in parts), hashed=False) as reader:
        report = check_batch_input(cast(IO[bytes], reader), rules_for(record.provider))
    if report.refused:
        raise TransferFailed(report.summary())
    return report.figures()


# Sending ---------------------------------------------------------------------------------
def _send(client: ProviderApi, record: ObjectRecord, job: dict[str, Any], parts: list[StoredPart]) -> Any:
    upload_id = str(job["upload_id"])
    total = sum(part.size for part in parts)
    filename = str(record.object.get("filename") or f"{record.id}.jsonl")
    purpose = str(record.purpose or record.object.get("purpose"))
    mime_type = str(job.get("mime_type") or "application/octet-stream")
    expected_md5 = job.get("md5")
    started = time.monotonic()
    # Azure has no Uploads API; a file the gateway keeps is written in parts by its one request.
    single = client.deployment.type == "azure" or client.deployment.keeps_files
    if single or total <= get_settings().transfer_single_request_max_bytes:
        md5: Any = None

        def post_file() -> dict[str, Any]:
            nonlocal md5
            with PartsReader(upload_id, parts, 0, total, hashed=bool(expected_md5)) as reader:
                upstream = client.create_file(
                    filename=filename,
                    content=cast(IO[bytes], reader),
                    purpose=purpose,
                    expires_after=job.get("expires_after"),
                    content_type=mime_type,
                )
                _check_count(reader, total)
                md5 = reader.md5
            return upstream

        upstream = _retrying(post_file)
        if expected_md5 and md5.hexdigest() != expected_md5:
            _delete_quietly(client, str(upstream["id"]))
            raise TransferFailed(_md5_message(md5.hexdigest(), expected_md5))
    else:
        upstream = _send_in_parts(client, upload_id, parts, total, filename, purpose, mime_type, expected_md5)
    seconds = time.monotonic() - started
    logger.info(
        "transfer sent",
        extra={
            "file_id": record.id,
            "bytes": total,
            "seconds": round(seconds, 3),
            "mb_per_s": round(total / 1e6 / seconds, 1) if seconds > 0 else None,
        },
    )
    return upstream


def _send_in_parts(
    client: ProviderApi,
    upload_id: str,
    parts: list[StoredPart],
    total: int,
    filename: str,
    purpose: str,
    mime_type: str,
    expected_md5: str | None,
) -> dict[str, Any]:
    part_bytes = get_settings().transfer_part_bytes
    remote = _retrying(
        lambda: client.create_upload(filename=filename, purpose=purpose, size=total, mime_type=mime_type)
    )
    remote_id = str(remote["id"])
    try:
        md5: Any = hashlib.md5(usedforsecurity=False) if expected_md5 else None
        remote_parts: list[str] = []
        for start in range(0, total, part_bytes):
            length = min(part_bytes, total - start)

            def add_part(
                start: int = start, length: int = length, md5: Any = md5
            ) -> tuple[dict[str, Any], Any]:
                with PartsReader(upload_id, parts, start, length, md5, hashed=md5 is not None) as reader:
                    answer = client.add_upload_part(remote_id, cast(IO[bytes], reader))
                    _check_count(reader, length)
                    return answer, reader.md5

            answer, md5 = _retrying(add_part)
            remote_parts.append(str(answer["id"]))
        if expected_md5 and md5.hexdigest() != expected_md5:
            raise TransferFailed(_md5_message(md5.hexdigest(), expected_md5))
        completed = _retrying(lambda: client.complete_upload(remote_id, remote_parts, md5=expected_md5))
    except BaseException:
        try:
            client.cancel_upload(remote_id)
        except Exception:
            logger.warning("could not cancel the provider upload", extra={"provider_upload_id": remote_id})
        raise
    upstream = completed.get("file")
    if not isinstance(upstream, dict) or not upstream.get("id"):
        raise TransferFailed("the provider completed the upload without a file")
    return upstream


def _retrying(request: Callable[[], T]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return request()
        except (UpstreamError, UpstreamTimeoutError, RateLimitError) as exc:
            if attempt == ATTEMPTS or exc.code == "upstream_authentication_failed":
                raise
            logger.warning("transfer request failed; retrying", extra={"attempt": attempt, "code": exc.code})
            time.sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


# Recording -------------------------------------------------------------------------------
def _record(
    id_map: IdMap,
    client: ProviderApi,
    record: ObjectRecord,
    upload_id: str,
    upstream: dict[str, Any],
    checked: dict[str, Any] | None = None,
) -> str:
    """Commit the upstream id (one conditional write); then the reverse item and the parts'
    removal, which a later run finishes if this one dies (`_finish_recorded`). If the commit
    fails, Lambda's retry reuses the copy (noted ahead): never a second, forgotten copy."""
    upstream_id = str(upstream["id"])
    obj = file_object(upstream, record.id)
    record.object = obj.model_dump(mode="json")
    record.upstream_id = upstream_id
    record.ttl = obj.expires_at
    record.state = {"upload_id": upload_id, "transferred_at": int(time.time())}
    if checked is not None:
        record.state[BATCH_CHECK_STATE] = checked
    try:
        committed = transitions.record_transferred(record)
    except Exception:
        stored = id_map.get_consistent(record.id)
        if stored is None or stored.upstream_id != upstream_id:  # the write did not happen
            logger.exception("transfer: could not record the upstream file", extra={"file_id": record.id})
            raise
        committed = True  # it did, and only its answer was lost
    if not committed:
        current = id_map.get_consistent(record.id)
        if current is not None and current.upstream_id == upstream_id:  # a duplicate run reused it
            return str(current.status)
        # deleted or failed meanwhile, or another run won: this upstream copy is nobody's
        logger.info("transfer: file already recorded, failed or deleted", extra={"file_id": record.id})
        _delete_quietly(client, upstream_id)
        upload_parts.delete_parts(upload_id)
        return str(current.status) if current is not None else "deleted"
    _finish_recorded(id_map, record)
    logger.info("transfer done", extra={"file_id": record.id, "status": obj.status})
    emit(metric_names.TRANSFER_BYTES, obj.bytes or 0, provider=record.provider)
    return str(obj.status)


def _finish_recorded(id_map: IdMap, record: ObjectRecord) -> None:
    """After the commit of a success (or of a failure): the reverse item and the parts'
    removal, both safe to repeat; a run that died after its commit left them to this one."""
    upload_id = record.state.get("upload_id")
    if not upload_id:
        return
    if record.upstream_id and record.state.get("transferred_at"):
        id_map.claim_upstream(record.provider, record.upstream_id, record.id)
        upload_parts.delete_parts(str(upload_id))
    elif record.state.get("failed_at"):
        upload_parts.delete_parts(str(upload_id))


# Helpers ---------------------------------------------------------------------------------
def _parts(upload_id: str, part_ids: list[str], declared: int) -> list[StoredPart]:
    parts, missing = upload_parts.named_parts(upload_id, part_ids)
    if missing:
        raise TransferFailed(f"parts missing from storage: {', '.join(missing[:5])}")
    received = sum(part.size for part in parts)
    if received != declared:
        raise TransferFailed(f"the parts hold {received} bytes, the upload declared {declared}")
    return parts


def _check_count(reader: PartsReader, expected: int) -> None:
    if reader.bytes_read != expected:
        raise TransferFailed(f"read {reader.bytes_read} bytes from storage, expected {expected}")


def _md5_message(actual: str, expected: str) -> str:
    return f"the md5 of the received bytes ({actual}) does not match the md5 given ({expected})"


def _delete_quietly(client: ProviderApi, upstream_id: str) -> None:
    try:
        client.delete_file(upstream_id)
    except Exception:
        logger.warning("could not delete a provider file", extra={"upstream_id": upstream_id})


def _client(provider: str) -> ProviderApi:
    """A client of its own: transfers wait longer for the provider than API requests do."""
    settings = get_settings()
    return new_client(
        provider, timeout=max(settings.transfer_timeout_seconds, settings.upstream_timeout_seconds)
    )
