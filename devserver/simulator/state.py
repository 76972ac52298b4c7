"""Shared simulator state and the provider semantics (files, uploads, batches, faults, keys).

One re-entrant lock guards every record. Slow work (copying parts, scanning a batch input, writing
outputs) runs outside it; batch processing runs on a small thread pool and its results are only
revealed when the batch's clock says so (status is computed lazily on every read).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, BinaryIO

from . import batchwork
from .anthropic_batches import AnthropicBatches
from .batchwork import Results, Validation
from .config import SimulatorConfig
from .errors import ApiError, bad_request, missing, not_found
from .httpio import ReceivedFile
from .limits import Directive, FirstAttempts, SimulatorLimits, compact
from .records import (
    ANTHROPIC,
    AZURE,
    OPENAI,
    TERMINAL,
    BatchRecord,
    Fault,
    FileRecord,
    PartRecord,
    UploadRecord,
    new_id,
)

log = logging.getLogger("devserver.simulator")
SIM_ORGANIZATION = "org-simulator"

FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
# Azure OpenAI's Files API documents fewer upload purposes (no user_data, no vision).
AZURE_FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "evals"})
BATCH_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
AZURE_BATCH_ENDPOINTS = BATCH_ENDPOINTS + tuple(e[3:] for e in BATCH_ENDPOINTS)
MIN_EXPIRY, MAX_EXPIRY = 3600, 2592000
UPLOAD_MAX_BYTES = 8 << 30
PART_MAX_BYTES = 64 << 20
COPY_CHUNK = 1 << 20


def _unlink(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _int_field(value: Any, param: str) -> int:
    if isinstance(value, bool):
        raise bad_request(f"Invalid type for '{param}': expected an integer.", param)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise bad_request(f"Invalid type for '{param}': expected an integer, but got {value!r}.", param)


def parse_expires_after(anchor: Any, seconds: Any, param: str) -> int | None:
    """Validate an ``expires_after``-style policy; returns the seconds, or None when absent."""
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise bad_request(
            f"Invalid value for '{param}.anchor': expected 'created_at'.", f"{param}.anchor", "invalid_value"
        )
    if seconds is None:
        raise missing(f"{param}.seconds")
    value = _int_field(seconds, f"{param}.seconds")
    if not MIN_EXPIRY <= value <= MAX_EXPIRY:
        raise bad_request(
            f"Invalid '{param}.seconds': must be between {MIN_EXPIRY} and {MAX_EXPIRY}.",
            f"{param}.seconds",
            "invalid_value",
        )
    return value


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid 'limit': expected an integer, but got '{raw}'.", "limit") from None
    if value < 1:
        raise bad_request(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, got {value}.", "limit"
        )
    if value > maximum:
        raise bad_request(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {maximum}, got {value}.",
            "limit",
        )
    return value


class SimState:
    def __init__(self, config: SimulatorConfig, root: str) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.root = root
        self.files_dir = os.path.join(root, "files")
        self.tmp_dir = os.path.join(root, "tmp")
        self.parts_dir = os.path.join(root, "parts")
        self.inputs_dir = os.path.join(root, "batch-inputs")
        self._make_dirs()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sim-batch")
        self._seq = itertools.count(1)
        self._init_memory()

    # ------------------------------------------------------------------ housekeeping

    def _make_dirs(self) -> None:
        for d in (self.files_dir, self.tmp_dir, self.parts_dir, self.inputs_dir):
            os.makedirs(d, exist_ok=True)

    def _init_memory(self) -> None:
        self.files: dict[str, FileRecord] = {}
        self.uploads: dict[str, UploadRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.received: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.keys = {
            OPENAI: self.config.openai_key,
            AZURE: self.config.azure_key,
            ANTHROPIC: self.config.anthropic_key,
        }
        self.anthropic = AnthropicBatches(lambda: self.phase, clock=self.config.clock)
        self.cursor_seq: dict[str, int] = {}  # survives deletion so pagination cursors stay valid
        # the line ids whose test directive was applied (one object: the Bedrock jobs share it)
        if not hasattr(self, "first_attempts"):
            self.first_attempts = FirstAttempts()
        self.first_attempts.clear()
        self.anthropic.first_attempts = self.first_attempts
        self.anthropic.limits = lambda: self.config.limits

    @property
    def phase(self) -> float:
        return max(0.0, float(self.config.batch_phase_seconds))

    def reset(self) -> None:
        with self.lock:
            for batch in self.batches.values():
                batch.abandoned.set()
            self._init_memory()
            for d in (self.files_dir, self.parts_dir, self.inputs_dir, self.tmp_dir):
                shutil.rmtree(d, ignore_errors=True)
            self._make_dirs()

    def close(self) -> None:
        with self.lock:
            for batch in self.batches.values():
                batch.abandoned.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def new_temp_path(self, prefix: str) -> str:
        fd, path = tempfile.mkstemp(prefix=prefix, dir=self.tmp_dir)
        os.close(fd)
        return path

    # ------------------------------------------------------------------ keys and faults

    def key_ok(self, provider: str, presented: str | None) -> bool:
        with self.lock:
            expected = self.keys[provider]
        return presented is not None and presented == expected

    def set_keys(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name, provider in (
                ("openai_key", OPENAI),
                ("azure_key", AZURE),
                ("anthropic_key", ANTHROPIC),
            ):
                if name in body:
                    if not isinstance(body[name], str) or not body[name]:
                        raise bad_request(f"'{name}' must be a non-empty string.", name)
                    self.keys[provider] = body[name]
            return {"object": "sim.keys", "ok": True}

    def set_limits(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sim/limits``: the caps and quotas from now on (`limits.SimulatorLimits`)."""
        try:
            limits = SimulatorLimits.parse(body)
        except ValueError as exc:
            raise bad_request(str(exc), "limits") from None
        self.config.limits = limits
        return {"object": "sim.limits", **asdict(limits)}

    def add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        status = body.get("status")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise bad_request("'status' must be an HTTP error status (400-599) or null.", "status")
        times = body.get("times", 1)
        if not isinstance(times, int) or times < 1:
            raise bad_request("'times' must be a positive integer.", "times")
        delay = body.get("delay_seconds") or 0
        if not isinstance(delay, int | float) or delay < 0:
            raise bad_request("'delay_seconds' must be a non-negative number.", "delay_seconds")
        if status is None and delay <= 0:
            raise bad_request("Give a 'status', a positive 'delay_seconds', or both.", "status")
        retry_after = body.get("retry_after")
        if retry_after is None and status == 429:
            retry_after = 1
        if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
            raise bad_request("'retry_after' must be a non-negative number.", "retry_after")
        method = body.get("method")
        fault = Fault(
            status=status,
            times=times,
            retry_after=retry_after,
            delay_seconds=float(delay),
            path_contains=str(body.get("path_contains") or ""),
            method=str(method).upper() if method else None,
        )
        with self.lock:
            self.faults.append(fault)
            return {"object": "sim.faults", "pending": len(self.faults)}

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            if not self.faults:
                return None
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ files

    def add_file(
        self,
        provider: str,
        *,
        filename: str,
        purpose: str,
        src_path: str,
        size: int,
        sha256: str,
        expires_after: int | None,
        received: bool,
    ) -> FileRecord:
        file_id = new_id("file-")
        dest = os.path.join(self.files_dir, file_id)
        os.replace(src_path, dest)
        now = time.time()
        # Azure processes uploaded files for a moment; files it writes itself are ready at once.
        ready_at = now + self.config.azure_processing_seconds() if provider == AZURE and received else 0.0
        with self.lock:
            rec = FileRecord(
                id=file_id,
                provider=provider,
                seq=next(self._seq),
                filename=filename,
                purpose=purpose,
                bytes=size,
                created=now,
                path=dest,
                sha256=sha256,
                expires_at=int(now) + expires_after if expires_after else None,
                ready_at=ready_at,
            )
            self.files[file_id] = rec
            self.cursor_seq[file_id] = rec.seq
            if received:
                self.received[file_id] = {"id": file_id, "sha256": sha256, "bytes": size}
        return rec

    def create_file(
        self, provider: str, fields: dict[str, str], upload: ReceivedFile | None
    ) -> dict[str, Any]:
        try:
            if upload is None:
                raise missing("file")
            purpose = fields.get("purpose")
            if not purpose:
                raise missing("purpose")
            _check_purpose(provider, purpose)
            expires = parse_expires_after(
                fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]"), "expires_after"
            )
        except ApiError:
            if upload is not None:
                _unlink(upload.path)
            raise
        rec = self.add_file(
            provider,
            filename=upload.filename or "file",
            purpose=purpose,
            src_path=upload.path,
            size=upload.size,
            sha256=upload.sha256,
            expires_after=expires,
            received=True,
        )
        return rec.to_api(time.time())

    def _live_file(self, provider: str, file_id: str) -> FileRecord:
        """The file, or 404. Caller holds the lock."""
        rec = self.files.get(file_id)
        if rec is None or rec.provider != provider:
            raise not_found("File", file_id)
        if rec.expires_at is not None and time.time() >= rec.expires_at:
            del self.files[file_id]
            _unlink(rec.path)
            raise not_found("File", file_id)
        return rec

    def get_file(self, provider: str, file_id: str) -> dict[str, Any]:
        with self.lock:
            return self._live_file(provider, file_id).to_api(time.time())

    def delete_file(self, provider: str, file_id: str) -> dict[str, Any]:
        with self.lock:
            rec = self._live_file(provider, file_id)
            del self.files[file_id]
            _unlink(rec.path)
        return {"id": file_id, "object": "file", "deleted": True}

    def open_content(self, provider: str, file_id: str) -> tuple[BinaryIO, int]:
        with self.lock:
            rec = self._live_file(provider, file_id)
            fh = open(rec.path, "rb")  # noqa: SIM115 - the handler streams and closes it
        return fh, os.fstat(fh.fileno()).st_size

    def list_files(self, provider: str, query: dict[str, str]) -> dict[str, Any]:
        limit = parse_limit(query.get("limit"), 10000, 10000)
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise bad_request(f"Invalid value for 'order': '{order}'. Expected 'asc' or 'desc'.", "order")
        purpose = query.get("purpose")
        after = query.get("after")
        now = time.time()
        with self.lock:
            recs = [
                r
                for r in self.files.values()
                if r.provider == provider
                and (not purpose or r.purpose == purpose)
                and (r.expires_at is None or now < r.expires_at)
            ]
            recs.sort(key=lambda r: r.seq, reverse=order == "desc")
            if after:
                pivot = self.cursor_seq.get(after)
                if pivot is not None:
                    recs = [r for r in recs if (r.seq < pivot if order == "desc" else r.seq > pivot)]
            page = [r.to_api(now) for r in recs[:limit]]
            return _page(page, len(recs) > limit)

    def received_info(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            info = self.received.get(file_id)
        if info is None:
            raise ApiError(404, f"Nothing was received for file '{file_id}'.", param="file_id")
        return dict(info)

    # ------------------------------------------------------------------ uploads

    def _upload_api(self, up: UploadRecord) -> dict[str, Any]:
        if up.status == "pending" and time.time() >= up.expires_at:
            up.status = "expired"
            self._drop_parts(up)
        file_obj = None
        if up.file_id is not None:
            rec = self.files.get(up.file_id)
            file_obj = rec.to_api(time.time()) if rec is not None else None
        return {
            "id": up.id,
            "object": "upload",
            "bytes": up.bytes,
            "created_at": up.created_at,
            "expires_at": up.expires_at,
            "filename": up.filename,
            "purpose": up.purpose,
            "status": up.status,
            "file": file_obj,
        }

    def _drop_parts(self, up: UploadRecord) -> None:
        for part in up.parts.values():
            _unlink(part.path)
        up.parts.clear()

    def create_upload(self, provider: str, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("bytes", "filename", "mime_type", "purpose"):
            if body.get(name) is None:
                raise missing(name)
        size = _int_field(body["bytes"], "bytes")
        if not 0 <= size <= UPLOAD_MAX_BYTES:
            raise bad_request(f"Invalid 'bytes': must be between 0 and {UPLOAD_MAX_BYTES}.", "bytes")
        purpose = body["purpose"]
        _check_purpose(provider, purpose)
        for name in ("filename", "mime_type"):
            if not isinstance(body[name], str) or not body[name]:
                raise bad_request(f"Invalid '{name}': expected a non-empty string.", name)
        exp = body.get("expires_after")
        if exp is not None and not isinstance(exp, dict):
            raise bad_request("Invalid 'expires_after': expected an object.", "expires_after")
        file_expiry = (
            parse_expires_after(exp.get("anchor"), exp.get("seconds"), "expires_after") if exp else None
        )
        now = int(time.time())
        up = UploadRecord(
            id=new_id("upload_"),
            provider=provider,
            filename=body["filename"],
            purpose=purpose,
            bytes=size,
            mime_type=body["mime_type"],
            created_at=now,
            expires_at=now + 3600,
            file_expires_after=file_expiry,
        )
        with self.lock:
            self.uploads[up.id] = up
            return self._upload_api(up)

    def _pending_upload(self, provider: str, upload_id: str) -> UploadRecord:
        up = self.uploads.get(upload_id)
        if up is None or up.provider != provider:
            raise not_found("Upload", upload_id)
        self._upload_api(up)  # applies expiry
        if up.status != "pending":
            raise bad_request(
                f"Upload {upload_id} is already {up.status}.", "upload_id", "upload_not_pending"
            )
        return up

    def add_part(self, provider: str, upload_id: str, data: ReceivedFile | None) -> dict[str, Any]:
        try:
            if data is None:
                raise missing("data")
            if data.size > PART_MAX_BYTES:
                raise bad_request("Each part must be at most 64 MB.", "data", "part_too_large")
            with self.lock:
                up = self._pending_upload(provider, upload_id)
                part = PartRecord(
                    id=new_id("part_"),
                    created_at=int(time.time()),
                    path=os.path.join(self.parts_dir, new_id("p", 16)),
                    bytes=data.size,
                )
                os.replace(data.path, part.path)
                up.parts[part.id] = part
                return up.part_to_api(part)
        except BaseException:
            if data is not None:
                _unlink(data.path)
            raise

    def complete_upload(self, provider: str, upload_id: str, body: dict[str, Any]) -> dict[str, Any]:
        part_ids = body.get("part_ids")
        if part_ids is None:
            raise missing("part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("Invalid 'part_ids': expected an array of strings.", "part_ids")
        if len(set(part_ids)) != len(part_ids):
            raise bad_request("Invalid 'part_ids': a part is listed more than once.", "part_ids")
        md5 = body.get("md5")
        if md5 is not None and not isinstance(md5, str):
            raise bad_request("Invalid 'md5': expected a string.", "md5")
        with self.lock:
            up = self._pending_upload(provider, upload_id)
            unknown = [p for p in part_ids if p not in up.parts]
            if unknown:
                raise bad_request(f"Invalid part ID(s) for this Upload: {', '.join(unknown)}.", "part_ids")
            parts = [up.parts[p] for p in part_ids]
            total = sum(p.bytes for p in parts)
            if total != up.bytes:
                raise bad_request(
                    f"The number of bytes uploaded ({total}) does not match the number of bytes declared "
                    f"when the Upload was created ({up.bytes}).",
                    "part_ids",
                    "bytes_mismatch",
                )
            up.status = "completing"  # internal: keeps concurrent part/complete calls out
        dest = self.new_temp_path("upload-")
        sha, md = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        try:
            with open(dest, "wb") as out:
                for part in parts:
                    with open(part.path, "rb") as src:
                        while chunk := src.read(COPY_CHUNK):
                            out.write(chunk)
                            sha.update(chunk)
                            md.update(chunk)
        except BaseException:
            _unlink(dest)
            with self.lock:
                up.status = "pending"
            raise
        if md5 and md5.lower() != md.hexdigest():
            _unlink(dest)
            with self.lock:
                up.status = "pending"
            raise bad_request(
                "The md5 checksum of the assembled file does not match the 'md5' given.",
                "md5",
                "md5_mismatch",
            )
        rec = self.add_file(
            provider,
            filename=up.filename,
            purpose=up.purpose,
            src_path=dest,
            size=total,
            sha256=sha.hexdigest(),
            expires_after=up.file_expires_after,
            received=True,
        )
        with self.lock:
            up.status = "completed"
            up.file_id = rec.id
            self._drop_parts(up)
            return self._upload_api(up)

    def cancel_upload(self, provider: str, upload_id: str) -> dict[str, Any]:
        with self.lock:
            up = self.uploads.get(upload_id)
            if up is None or up.provider != provider:
                raise not_found("Upload", upload_id)
            self._upload_api(up)
            if up.status in ("completed", "completing"):
                raise bad_request(
                    f"Upload {upload_id} is already completed and cannot be cancelled.", "upload_id"
                )
            if up.status == "pending":
                up.status = "cancelled"
                self._drop_parts(up)
            return self._upload_api(up)

    # ------------------------------------------------------------------ batches

    def create_batch(self, provider: str, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("input_file_id", "endpoint", "completion_window"):
            if body.get(name) is None:
                raise missing(name)
        input_file_id = body["input_file_id"]
        endpoint = body["endpoint"]
        window = body["completion_window"]
        allowed = AZURE_BATCH_ENDPOINTS if provider == AZURE else BATCH_ENDPOINTS
        if endpoint not in allowed:
            raise bad_request(
                f"Invalid value for 'endpoint': '{endpoint}'. Supported values are: {', '.join(allowed)}.",
                "endpoint",
                "invalid_value",
            )
        if window != "24h":
            raise bad_request(
                f"Invalid value for 'completion_window': '{window}'. Supported values are: '24h'.",
                "completion_window",
                "invalid_value",
            )
        metadata = body.get("metadata")
        if metadata is not None:
            ok = isinstance(metadata, dict) and len(metadata) <= 16
            ok = ok and all(
                isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
                for k, v in metadata.items()
            )
            if not ok:
                raise bad_request(
                    "Invalid 'metadata': at most 16 string pairs; keys up to 64 and values up to 512 "
                    "characters.",
                    "metadata",
                )
        oea = body.get("output_expires_after")
        if oea is not None and not isinstance(oea, dict):
            raise bad_request("Invalid 'output_expires_after': expected an object.", "output_expires_after")
        output_expiry = (
            parse_expires_after(oea.get("anchor"), oea.get("seconds"), "output_expires_after")
            if oea
            else None
        )
        batch_id = "batch_" + os.urandom(16).hex()
        with self.lock:
            if not isinstance(input_file_id, str) or input_file_id not in self.files:
                raise bad_request(
                    f"Invalid 'input_file_id': file '{input_file_id}' not found.",
                    "input_file_id",
                    "invalid_value",
                )
            try:
                src = self._live_file(provider, input_file_id)
            except ApiError:
                raise bad_request(
                    f"Invalid 'input_file_id': file '{input_file_id}' not found.",
                    "input_file_id",
                    "invalid_value",
                ) from None
            if src.purpose != "batch":
                raise bad_request(
                    f"The input file '{input_file_id}' must be uploaded with purpose 'batch', "
                    f"not '{src.purpose}'.",
                    "input_file_id",
                    "invalid_file_purpose",
                )
            # The batch keeps its own link to the input so deleting the file does not disturb it.
            input_path = os.path.join(self.inputs_dir, batch_id + ".jsonl")
            try:
                os.link(src.path, input_path)
            except OSError:
                shutil.copyfile(src.path, input_path)
            batch = BatchRecord(
                id=batch_id,
                provider=provider,
                seq=next(self._seq),
                endpoint=endpoint,
                input_file_id=input_file_id,
                input_path=input_path,
                completion_window=window,
                metadata=metadata,
                output_expires_after=output_expiry,
                created=self.config.clock(),
                input_bytes=src.bytes,
            )
            self.batches[batch_id] = batch
            self.cursor_seq[batch_id] = batch.seq
            batch.work = self.executor.submit(self._process_batch, batch)
            return batch.to_api()

    def finish_work(self) -> None:
        """Wait until every batch's background pass has ended (tests: no sleeping for it)."""
        with self.lock:
            pending = [b.work for b in self.batches.values() if b.work is not None]
        for work in pending:
            with contextlib.suppress(Exception):
                work.result()

    def _directive(self, batch: BatchRecord, custom_id: str) -> Directive | None:
        """A line's test directive (`limits`), decided on the custom_id's first attempt."""
        with self.lock:
            if custom_id not in batch.directives:
                batch.directives[custom_id] = self.first_attempts.take(batch.provider, custom_id)
            return batch.directives[custom_id]

    def _process_batch(self, batch: BatchRecord) -> None:
        """Background: one pass that validates the input and writes the full output."""
        try:
            validation, results = batchwork.process(
                batch.input_path,
                batch.endpoint,
                self.tmp_dir,
                should_stop=batch.abandoned.is_set,
                directive=lambda custom_id: self._directive(batch, custom_id),
                clock=self.config.clock,
            )
        except Exception as exc:
            if not batch.abandoned.is_set():
                log.exception("batch %s: processing failed", batch.id)
            message = f"The batch could not be processed: {exc}"
            validation = Validation(
                errors=[{"code": "server_error", "line": None, "message": message, "param": None}]
            )
            validation.done_at = self.config.clock()
            results = Results(done_at=validation.done_at)
        with self.lock:
            if batch.abandoned.is_set():
                results.discard()
                return
            batch.validation = validation
            batch.results = results

    def _process_partial(self, batch: BatchRecord, limit: int) -> None:
        """Background, after a cancel: the output of the first ``limit`` requests."""
        try:
            _, results = batchwork.process(
                batch.input_path,
                batch.endpoint,
                self.tmp_dir,
                validate=False,
                limit=limit,
                directive=lambda custom_id: self._directive(batch, custom_id),
                clock=self.config.clock,
            )
        except Exception:
            if not batch.abandoned.is_set():
                log.exception("batch %s: partial output failed", batch.id)
            results = Results(done_at=self.config.clock())
        with self.lock:
            if batch.abandoned.is_set() and batch.id not in self.batches:
                results.discard()
                return
            batch.partial = results

    def _register_outputs(self, batch: BatchRecord, results: Results) -> None:
        """Caller holds the lock: turn a run's staged output/error files into batch_output files."""
        for staged, suffix in ((results.output, "output"), (results.error, "error")):
            if staged is None:
                continue
            rec = self.add_file(
                batch.provider,
                filename=f"{batch.id}_{suffix}.jsonl",
                purpose="batch_output",
                src_path=staged.path,
                size=staged.bytes,
                sha256=staged.sha256,
                expires_after=batch.output_expires_after,
                received=False,
            )
            if suffix == "output":
                batch.output_file_id = rec.id
            else:
                batch.error_file_id = rec.id
        results.output = results.error = None
        batch.completed, batch.failed = results.completed, results.failed
        batch.usage = results.usage()
        batch.model = results.model

    def _refresh(self, batch: BatchRecord, now: float) -> None:
        """Caller holds the lock: move the batch along its timeline up to ``now``."""
        p = self.phase
        if batch.status not in TERMINAL and now >= batch.created + 86400:
            batch.status = "expired"
            _unlink(batch.input_path)  # the batch is over; drop its private input link
            batch.stamps["expired_at"] = int(now)
            batch.left_queue_at = now
            batch.abandoned.set()
            for res in (batch.results, batch.partial):
                if res is not None:
                    res.discard()
            return
        if batch.status == "validating":
            v = batch.validation
            due = batch.created + p
            if v is None or now < due:
                return
            at = max(due, v.done_at)
            errors = v.errors or self._refusals(batch, v, at)
            if errors:
                batch.status = "failed"
                _unlink(batch.input_path)
                batch.errors = {"object": "list", "data": errors}
                batch.stamps["failed_at"] = int(at)
                if batch.results is not None:
                    batch.results.discard()
                return
            batch.status = "in_progress"
            batch.in_progress_start = at
            batch.stamps["in_progress_at"] = int(at)
            batch.total = v.total
            if batch.results is not None:
                batch.enqueued_tokens = batch.results.enqueued_tokens
                batch.queue_model = batch.results.model
        if batch.status == "in_progress":
            assert batch.in_progress_start is not None
            due = batch.in_progress_start + p
            if now < due:
                res = batch.results
                if res is not None and p > 0:
                    frac = (now - batch.in_progress_start) / p
                    batch.completed = math.floor(frac * res.completed)
                    batch.failed = math.floor(frac * res.failed)
                return
            batch.status = "finalizing"
            batch.finalizing_start = due
            batch.stamps["finalizing_at"] = int(due)
        if batch.status == "finalizing":
            assert batch.finalizing_start is not None
            due = batch.finalizing_start + p
            res = batch.results
            if now < due or res is None:
                return
            batch.results = None
            # only an expired batch has expired requests, as at OpenAI
            self._finish(batch, res, "expired" if res.expired else "completed", due)
            return
        if batch.status == "cancelling":
            assert batch.cancelling_start is not None
            due = batch.cancelling_start + p
            res = batch.partial
            if now < due or res is None:
                return
            batch.partial = None
            self._finish(batch, res, "cancelled", due)

    def _finish(self, batch: BatchRecord, results: Results, status: str, due: float) -> None:
        """A batch's last step, completed or cancelled: its output and error files appear."""
        self._register_outputs(batch, results)
        batch.status = status
        _unlink(batch.input_path)
        batch.stamps[f"{status}_at"] = int(max(due, results.done_at))
        batch.left_queue_at = due

    def _refusals(self, batch: BatchRecord, validation: Validation, at: float) -> list[dict[str, Any]]:
        """What fails a valid batch at the end of its validation: a limit it passes, or the
        enqueued-token quota of its model over the batches in progress at that time (`limits`)."""
        limits = self.config.limits
        most = limits.requests_for(batch.provider)
        if validation.total > most:
            message = f"The batch input file has {validation.total} requests; a batch holds at most {most}."
            return [{"code": "too_many_tasks", "line": None, "message": message, "param": None}]
        largest = limits.bytes_for(batch.provider)
        if batch.input_bytes > largest:
            message = (
                f"The batch input file is {batch.input_bytes} bytes; the most a batch takes is {largest}."
            )
            return [{"code": "file_too_large", "line": None, "message": message, "param": None}]
        model = batch.results.model if batch.results is not None else None
        quota = limits.tokens_for(model)
        tokens = batch.results.enqueued_tokens if batch.results is not None else 0
        if quota is None or self._enqueued(batch, model, at) + tokens <= quota:
            return []
        if batch.provider == AZURE:
            message = (
                f"The number of enqueued tokens has surpassed the configured limit of {compact(quota)} for "
                f"the deployment '{model}'. Please either increase the limit or try again once the current "
                "jobs have finished."
            )
        else:
            message = (
                f"Enqueued token limit reached for {model} in organization {SIM_ORGANIZATION}. Limit: "
                f"{quota:,} enqueued tokens. Please try again once some in_progress batches have been "
                "completed."
            )
        return [{"code": "token_limit_exceeded", "line": None, "message": message, "param": None}]

    def _enqueued(self, batch: BatchRecord, model: str | None, at: float) -> int:
        """The prompt tokens of `model`'s other batches in progress at `at` (caller holds the lock).
        The batches made before this one are brought to `at` first, so that the one validated
        first is the one admitted."""
        total = 0
        for other in list(self.batches.values()):
            if other is batch or other.provider != batch.provider:
                continue
            if other.seq < batch.seq and other.status not in TERMINAL:
                self._refresh(other, at)
            if other.queue_model == model and other.enqueued_at(at):
                total += other.enqueued_tokens
        return total

    def _batch(self, provider: str, batch_id: str) -> BatchRecord:
        batch = self.batches.get(batch_id)
        if batch is None or batch.provider != provider:
            raise not_found("Batch", batch_id, param="batch_id")
        self._refresh(batch, self.config.clock())
        return batch

    def get_batch(self, provider: str, batch_id: str) -> dict[str, Any]:
        with self.lock:
            return self._batch(provider, batch_id).to_api()

    def list_batches(self, provider: str, query: dict[str, str]) -> dict[str, Any]:
        limit = parse_limit(query.get("limit"), 20, 100)
        after = query.get("after")
        now = self.config.clock()
        with self.lock:
            recs = sorted((b for b in self.batches.values() if b.provider == provider), key=lambda b: -b.seq)
            if after:
                pivot = self.cursor_seq.get(after)
                if pivot is not None:
                    recs = [b for b in recs if b.seq < pivot]
            page = recs[:limit]
            for b in page:
                self._refresh(b, now)
            return _page([b.to_api() for b in page], len(recs) > limit)

    def cancel_batch(self, provider: str, batch_id: str) -> dict[str, Any]:
        with self.lock:
            batch = self._batch(provider, batch_id)
            if batch.status == "cancelling":
                return batch.to_api()
            if batch.status in TERMINAL:
                raise ApiError(
                    409,
                    f"Cannot cancel a batch with status '{batch.status}'.",
                    param="batch_id",
                    code="batch_not_cancellable",
                )
            now = self.config.clock()
            if batch.status == "validating":
                done = 0
                batch.abandoned.set()  # stop the validation pass; nothing was processed
            elif batch.status == "in_progress":
                assert batch.in_progress_start is not None
                frac = (now - batch.in_progress_start) / self.phase if self.phase > 0 else 1.0
                done = max(0, min(batch.total, math.floor(frac * batch.total)))
            else:  # finalizing: every request has run
                done = batch.total
            batch.status = "cancelling"
            batch.cancelling_start = now
            batch.stamps["cancelling_at"] = int(now)
            batch.cancel_count = done
            full, batch.results = batch.results, None
            if done > 0 and done == batch.total and full is not None:
                batch.partial = full
            else:
                if full is not None:
                    full.discard()
                if done == 0:
                    batch.partial = Results(done_at=now)
                else:
                    batch.work = self.executor.submit(self._process_partial, batch, done)
            return batch.to_api()


def _page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _check_purpose(provider: str, purpose: str) -> None:
    if provider == AZURE:
        if purpose not in AZURE_FILE_PURPOSES:
            supported = ", ".join(sorted(AZURE_FILE_PURPOSES))
            raise bad_request(
                f"The specified purpose '{purpose}' is not supported. Supported purposes: {supported}.",
                "purpose",
                "invalidPayload",
            )
    elif purpose not in FILE_PURPOSES:
        raise bad_request(
            f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'", "purpose", "invalid_value"
        )
