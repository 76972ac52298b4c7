"""The Gemini API's Files and Batch Mode (``/gemini/...``: ``Simulator.gemini_api_base``).

As Google documents them (https://ai.google.dev/api/files, https://ai.google.dev/api/batch-mode,
https://ai.google.dev/gemini-api/docs/batch-mode):

- Files: a resumable upload (``POST /upload/v1beta/files`` with ``X-Goog-Upload-Protocol:
  resumable`` and ``X-Goog-Upload-Command: start``, answered with ``X-Goog-Upload-URL``; then the
  bytes with ``upload`` / ``upload, finalize`` at the declared offset) or a multipart one
  (``X-Goog-Upload-Protocol: multipart``, a ``multipart/related`` body), get, list, delete, and
  ``GET /download/v1beta/files/{id}:download?alt=media``. Names ``files/[a-z0-9-]{1,40}``; a file
  lives 48 hours; at most 2 GB (``limits``).
- Batches: ``POST /v1beta/models/{model}:batchGenerateContent`` with ``batch.displayName`` and
  ``batch.inputConfig.fileName`` (a JSONL file of ``{"key", "request"}`` lines), answered with a
  long-running Operation (``name: batches/…``, ``metadata`` the GenerateContentBatch, ``done``,
  ``response.responsesFile``); get, list (``pageSize``, ``pageToken``), ``:cancel``, delete.
  A batch is PENDING for one phase, RUNNING for the next (its requests finish one after
  another), then SUCCEEDED; a cancel ends it CANCELLED at once, the requests that ran kept in its
  responses file. A line the request rules refuse (`gemini_requests`) has an ``error`` result.
- Errors: ``{"error": {"code", "message", "status"}}``; a wrong key is a 400 INVALID_ARGUMENT
  with reason API_KEY_INVALID (as Google answers it), a missing one 403 PERMISSION_DENIED.
- Quota: ``limits.concurrent_jobs`` batches PENDING or RUNNING at once (Google's "concurrent
  batch requests"); past it a create is 429 RESOURCE_EXHAUSTED. ``sim-expire`` /
  ``sim-fail-<code>`` in a line's key: that request expires (the batch ends EXPIRED) or fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .gemini_requests import MODELS, RequestInvalid, check_request, respond
from .limits import Directive, FirstAttempts, SimulatorLimits

FILE_TTL_SECONDS = 48 * 3600
BATCH_TTL_SECONDS = 48 * 3600  # a batch still pending or running after 48 hours expires
_FILE_NAME = re.compile(r"^[a-z0-9-]{1,40}$")
_BATCH_ID = re.compile(r"^[a-z0-9]{1,63}$")
_ALNUM = string.ascii_lowercase + string.digits
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# google.rpc.Code of a failed request (a result line's `error.code`), by the directive's code.
_RPC_CODES = {"rate_limit_exceeded": (8, "RESOURCE_EXHAUSTED"), "server_error": (13, "INTERNAL")}


class GeminiError(ApiError):
    """An HTTP error in Google's shape."""

    def __init__(self, status: int, message: str, *, reason: str | None = None) -> None:
        super().__init__(status, message, type=_STATUS_NAMES.get(status, "UNKNOWN"))
        self.reason = reason

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message, "status": self.type}
        if self.reason:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.reason,
                    "domain": "googleapis.com",
                }
            ]
        return {"error": error}


def invalid(message: str) -> GeminiError:
    return GeminiError(400, message)


def rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class GeminiFile:
    name: str
    display_name: str
    mime_type: str
    size: int
    path: str
    created: float
    sha256: str
    source: str = "UPLOADED"

    def to_api(self, base_url: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "displayName": self.display_name,
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.created),
            "expirationTime": rfc3339(self.created + FILE_TTL_SECONDS),
            "sha256Hash": self.sha256,
            "uri": f"{base_url}/v1beta/{self.name}",
            "state": "ACTIVE",
            "source": self.source,
        }


@dataclass
class UploadSession:
    display_name: str
    mime_type: str
    size: int
    path: str
    offset: int = 0


@dataclass
class Line:
    key: str | None
    request: Any
    directive: Directive | None = None


@dataclass
class GeminiBatch:
    id: str
    seq: int
    model: str
    display_name: str
    input_file: str
    created: float
    phase: float
    lines: list[Line]
    failure: str | None = None  # the input file could not be read: the batch fails
    cancel_at: float | None = None
    deleted: bool = False
    responses_file: str | None = None

    @property
    def name(self) -> str:
        return "batches/" + self.id

    def done_at(self, index: int) -> float:
        return self.created + self.phase + self.phase * (index + 1) / max(1, len(self.lines))

    def ended_at(self) -> float:
        end = self.created + (self.phase if self.failure else 2 * self.phase)
        return min(end, self.cancel_at) if self.cancel_at is not None else end

    def state(self, now: float) -> str:
        if self.cancel_at is not None and now >= self.cancel_at:
            return "BATCH_STATE_CANCELLED"
        if now >= self.ended_at():
            if self.failure:
                return "BATCH_STATE_FAILED"
            if any(line.directive is not None and line.directive.kind == "expire" for line in self.lines):
                return "BATCH_STATE_EXPIRED"
            return "BATCH_STATE_SUCCEEDED"
        if now - self.created >= BATCH_TTL_SECONDS:
            return "BATCH_STATE_EXPIRED"
        return "BATCH_STATE_RUNNING" if now >= self.created + self.phase else "BATCH_STATE_PENDING"

    def ran(self, index: int, now: float) -> bool:
        line = self.lines[index]
        if self.failure or (line.directive is not None and line.directive.kind == "expire"):
            return False
        return self.done_at(index) <= min(now, self.ended_at())

    def result(self, index: int) -> dict[str, Any]:
        line = self.lines[index]
        out: dict[str, Any] = {"key": line.key} if line.key is not None else {}
        if line.directive is not None and line.directive.kind == "fail":
            code, status = _RPC_CODES.get(line.directive.code or "", (3, "INVALID_ARGUMENT"))
            return {**out, "error": {"code": code, "message": line.directive.message, "status": status}}
        try:
            check_request(line.request, self.model)
        except RequestInvalid as exc:
            return {**out, "error": {"code": 3, "message": str(exc), "status": "INVALID_ARGUMENT"}}
        return {**out, "response": respond(line.request, self.model, line.key or str(index))}

    def stats(self, now: float) -> dict[str, str]:
        succeeded = failed = 0
        for index in range(len(self.lines)):
            if self.ran(index, now):
                if "error" in self.result(index):
                    failed += 1
                else:
                    succeeded += 1
        total = len(self.lines)
        return {
            "requestCount": str(total),
            "successfulRequestCount": str(succeeded),
            "failedRequestCount": str(failed),
            "pendingRequestCount": str(total - succeeded - failed),
        }

    def to_api(self, now: float) -> dict[str, Any]:
        state = self.state(now)
        done = state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE,
            "model": "models/" + self.model,
            "displayName": self.display_name,
            "inputConfig": {"fileName": self.input_file},
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(min(now, self.ended_at()) if done else now),
            "batchStats": self.stats(now),
            "state": state,
            "name": self.name,
        }
        operation: dict[str, Any] = {"name": self.name, "metadata": metadata, "done": done}
        if done:
            metadata["endTime"] = rfc3339(self.ended_at())
        if state == "BATCH_STATE_FAILED":
            operation["error"] = {"code": 3, "message": self.failure}
        elif done and self.responses_file:
            metadata["output"] = {"responsesFile": self.responses_file}
            operation["response"] = {"@type": OUTPUT_TYPE, "responsesFile": self.responses_file}
        return operation


@dataclass
class GeminiApi:
    """The simulated Gemini Files and Batch Mode, every object under one lock."""

    root: str
    phase_seconds: Callable[[], float]
    key: Callable[[], str]
    clock: Callable[[], float] = time.time
    limits: Callable[[], SimulatorLimits] = SimulatorLimits
    first_attempts: FirstAttempts = field(default_factory=FirstAttempts)
    files: dict[str, GeminiFile] = field(default_factory=dict)
    uploads: dict[str, UploadSession] = field(default_factory=dict)
    batches: dict[str, GeminiBatch] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _seq: int = 0

    def __post_init__(self) -> None:
        os.makedirs(self.root, exist_ok=True)

    def reset(self) -> None:
        with self.lock:
            paths = [f.path for f in self.files.values()] + [u.path for u in self.uploads.values()]
            for path in paths:
                if os.path.exists(path):
                    os.remove(path)
            self.files.clear()
            self.uploads.clear()
            self.batches.clear()

    def check_key(self, presented: str | None) -> None:
        if not presented:
            raise GeminiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if presented != self.key():
            raise GeminiError(
                400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
            )

    # Files ----------------------------------------------------------------------------------------
    def start_upload(self, headers: Any, body: Any, base_url: str) -> tuple[dict[str, str], dict[str, Any]]:
        if (headers.get("X-Goog-Upload-Protocol") or "").lower() != "resumable":
            raise invalid("X-Goog-Upload-Protocol must be resumable or multipart.")
        if (headers.get("X-Goog-Upload-Command") or "").lower() != "start":
            raise invalid("X-Goog-Upload-Command must be 'start' to begin an upload.")
        try:
            size = int(headers.get("X-Goog-Upload-Header-Content-Length") or "")
        except ValueError:
            raise invalid("X-Goog-Upload-Header-Content-Length is required.") from None
        most = self.limits().bytes_for("gemini")
        if size > most:
            raise invalid(f"File size {size} exceeds the maximum of {most} bytes.")
        meta = body.get("file") if isinstance(body, dict) else None
        display = str((meta or {}).get("displayName") or (meta or {}).get("display_name") or "")
        if len(display) > 512:
            raise invalid("file.display_name: must be at most 512 characters.")
        upload_id = secrets.token_hex(16)
        path = os.path.join(self.root, "upload-" + upload_id)
        open(path, "wb").close()
        mime = headers.get("X-Goog-Upload-Header-Content-Type") or "application/octet-stream"
        with self.lock:
            self.uploads[upload_id] = UploadSession(display, mime, size, path)
        url = f"{base_url}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
        return {"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"}, {}

    def multipart_upload(self, headers: Any, read: Callable[[], bytes], base_url: str) -> dict[str, Any]:
        """``X-Goog-Upload-Protocol: multipart``: one ``multipart/related`` body, the file's JSON
        metadata then its bytes."""
        import email.parser
        import email.policy

        most = self.limits().bytes_for("gemini")
        body = b""
        while chunk := read():
            body += chunk
            if len(body) > most + 64 * 1024:
                raise invalid(f"File size exceeds the maximum of {most} bytes.")
        content_type = headers.get("Content-Type") or ""
        if not content_type.lower().startswith("multipart/related"):
            raise invalid("A multipart upload is one multipart/related body (metadata, then the media).")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        parts = list(message.iter_parts()) if message.is_multipart() else []
        if len(parts) != 2:
            raise invalid("A multipart upload has two parts: the metadata and the media.")
        try:
            meta = json.loads(_payload_bytes(parts[0]) or b"{}")
        except ValueError:
            raise invalid("The first part of a multipart upload is the file's JSON metadata.") from None
        media = _payload_bytes(parts[1])
        if len(media) > most:
            raise invalid(f"File size {len(media)} exceeds the maximum of {most} bytes.")
        file_meta = meta.get("file") if isinstance(meta, dict) else None
        display = str((file_meta or {}).get("displayName") or (file_meta or {}).get("display_name") or "")
        upload_id = secrets.token_hex(16)
        path = os.path.join(self.root, "upload-" + upload_id)
        with open(path, "wb") as out:
            out.write(media)
        session = UploadSession(display, parts[1].get_content_type(), len(media), path, len(media))
        with self.lock:
            self.uploads[upload_id] = session
        return self._finalize(upload_id, session, base_url)

    def upload_bytes(
        self, upload_id: str, headers: Any, read: Callable[[], bytes], base_url: str
    ) -> dict[str, Any]:
        with self.lock:
            session = self.uploads.get(upload_id)
        if session is None:
            raise GeminiError(404, "The upload session does not exist or has expired.")
        commands = {c.strip() for c in (headers.get("X-Goog-Upload-Command") or "").lower().split(",")}
        if not commands & {"upload", "finalize"}:
            raise invalid("X-Goog-Upload-Command must be 'upload', 'finalize' or 'upload, finalize'.")
        if int(headers.get("X-Goog-Upload-Offset") or -1) != session.offset:
            raise invalid(f"X-Goog-Upload-Offset must be {session.offset}, the bytes received so far.")
        with open(session.path, "ab") as out:
            while chunk := read():
                session.offset += len(chunk)
                if session.offset > session.size:
                    raise invalid("More bytes were sent than X-Goog-Upload-Header-Content-Length declared.")
                out.write(chunk)
        if "finalize" not in commands:
            return {}
        if session.offset != session.size:
            raise invalid(f"Upload finalized at {session.offset} of the {session.size} bytes declared.")
        return self._finalize(upload_id, session, base_url)

    def _finalize(self, upload_id: str, session: UploadSession, base_url: str) -> dict[str, Any]:
        with open(session.path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        with self.lock:
            self.uploads.pop(upload_id, None)
            name = "files/" + "".join(secrets.choice(_ALNUM) for _ in range(12))
            final = os.path.join(self.root, name.replace("/", "-"))
            os.replace(session.path, final)
            record = GeminiFile(
                name, session.display_name, session.mime_type, session.size, final, self.clock(), digest
            )
            self.files[name] = record
            return {"file": record.to_api(base_url)}

    def _file(self, name: str) -> GeminiFile:
        if not _FILE_NAME.match(name.removeprefix("files/")):
            raise invalid(f"Invalid file name {name!r}: expected files/[a-z0-9-]{{1,40}}.")
        record = self.files.get(name)
        if record is None or self.clock() >= record.created + FILE_TTL_SECONDS:
            raise GeminiError(
                403,
                f"You do not have permission to access the File {name.removeprefix('files/')} "
                "or it may not exist.",
            )
        return record

    def get_file(self, name: str, base_url: str) -> dict[str, Any]:
        with self.lock:
            return self._file(name).to_api(base_url)

    def list_files(self, query: dict[str, str], base_url: str) -> dict[str, Any]:
        with self.lock:
            live = [f for f in self.files.values() if self.clock() < f.created + FILE_TTL_SECONDS]
            page, token = _page(sorted(live, key=lambda f: -f.created), query, maximum=100)
            answer: dict[str, Any] = {"files": [f.to_api(base_url) for f in page]}
        if token:
            answer["nextPageToken"] = token
        return answer

    def delete_file(self, name: str) -> dict[str, Any]:
        with self.lock:
            record = self._file(name)
            del self.files[name]
        if os.path.exists(record.path):
            os.remove(record.path)
        return {}

    def download(self, name: str) -> bytes:
        with self.lock:
            record = self._file(name)
            if record.source == "GENERATED" and not os.path.exists(record.path):
                self._write_responses(record)
        with open(record.path, "rb") as fh:
            return fh.read()

    # Batches --------------------------------------------------------------------------------------
    def create_batch(self, model: str, body: Any) -> dict[str, Any]:
        if model not in MODELS:
            raise GeminiError(
                404,
                f"models/{model} is not found for API version v1beta, "
                "or is not supported for batchGenerateContent.",
            )
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict):
            raise invalid("* BatchGenerateContentRequest.batch: batch is required")
        display = batch.get("displayName") or batch.get("display_name")
        if not isinstance(display, str) or not display:
            raise invalid("* BatchGenerateContentRequest.batch.display_name: display_name is required")
        config = batch.get("inputConfig") or batch.get("input_config")
        file_name = (config or {}).get("fileName") or (config or {}).get("file_name")
        if not isinstance(file_name, str):
            raise invalid(
                "* BatchGenerateContentRequest.batch.input_config: file_name or requests is required"
            )
        limits = self.limits()
        with self.lock:
            source = self._file(file_name)
            if source.size > limits.bytes_for("gemini"):
                raise invalid(f"The input file is larger than {limits.bytes_for('gemini')} bytes.")
            now = self.clock()
            if limits.concurrent_jobs is not None:
                running = sum(
                    1
                    for b in self.batches.values()
                    if not b.deleted and b.state(now) in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
                )
                if running >= limits.concurrent_jobs:
                    raise GeminiError(
                        429,
                        "You exceeded your current quota, please check your plan and billing details. "
                        "For more information on this error, head to: "
                        "https://ai.google.dev/gemini-api/docs/rate-limits.",
                    )
            lines, failure = self._read_lines(source.path, limits)
            self._seq += 1
            batch_id = "".join(secrets.choice(_ALNUM) for _ in range(24))
            record = GeminiBatch(
                batch_id,
                self._seq,
                model,
                display,
                file_name,
                now,
                float(self.phase_seconds()),
                lines,
                failure,
            )
            self.batches[batch_id] = record
            return record.to_api(now)

    def _read_lines(self, path: str, limits: SimulatorLimits) -> tuple[list[Line], str | None]:
        lines: list[Line] = []
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except ValueError:
                    return [], f"Invalid JSON on line {number} of the input file."
                if not isinstance(item, dict) or "request" not in item:
                    return [], f"Line {number} of the input file has no 'request'."
                key = item.get("key")
                key = str(key) if key is not None else None
                lines.append(Line(key, item["request"], self.first_attempts.take("gemini", key)))
        if not lines:
            return [], "The input file holds no requests."
        if limits.max_requests is not None and len(lines) > limits.max_requests:
            return [], f"The input file holds {len(lines)} requests, more than {limits.max_requests}."
        return lines, None

    def _batch(self, batch_id: str) -> GeminiBatch:
        if not _BATCH_ID.match(batch_id):
            raise invalid(f"Invalid batch name 'batches/{batch_id}'.")
        record = self.batches.get(batch_id)
        if record is None or record.deleted:
            raise GeminiError(404, f"Batch 'batches/{batch_id}' not found.")
        return record

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._batch(batch_id)
            return self._with_output(record).to_api(self.clock())

    def _with_output(self, record: GeminiBatch) -> GeminiBatch:
        """A finished batch that ran requests gets its responses file (made once)."""
        now = self.clock()
        state = record.state(now)
        if (
            state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_FAILED")
            or record.responses_file
        ):
            return record
        if not any(record.ran(index, now) for index in range(len(record.lines))):
            return record
        name = "files/batch-" + record.id[:30]
        path = os.path.join(self.root, name.replace("/", "-"))
        self.files[name] = GeminiFile(name, name, "application/jsonl", 0, path, now, "", source="GENERATED")
        self._write_responses(self.files[name], record)
        record.responses_file = name
        return record

    def _write_responses(self, file: GeminiFile, record: GeminiBatch | None = None) -> None:
        if record is None:
            record = next(b for b in self.batches.values() if b.responses_file == file.name)
        now = self.clock()
        with open(file.path, "wb") as out:
            for index in range(len(record.lines)):
                if record.ran(index, now):
                    out.write(json.dumps(record.result(index)).encode() + b"\n")
        file.size = os.path.getsize(file.path)
        with open(file.path, "rb") as fh:
            file.sha256 = hashlib.sha256(fh.read()).hexdigest()

    def list_batches(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            newest = sorted((b for b in self.batches.values() if not b.deleted), key=lambda b: -b.seq)
            page, token = _page(newest, query, maximum=1000)
            now = self.clock()
            answer: dict[str, Any] = {"operations": [self._with_output(b).to_api(now) for b in page]}
        if token:
            answer["nextPageToken"] = token
        return answer

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._batch(batch_id)
            now = self.clock()
            state = record.state(now)
            if state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                raise GeminiError(
                    400, f"Batch 'batches/{batch_id}' is in state {state} and cannot be cancelled."
                )
            record.cancel_at = now
            return {}

    def delete_batch(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            self._batch(batch_id).deleted = True
            return {}


def _payload_bytes(part: Any) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _page(items: list[Any], query: dict[str, str], *, maximum: int) -> tuple[list[Any], str | None]:
    try:
        size = int(query.get("pageSize") or 10)
        start = int(query.get("pageToken") or 0)
    except ValueError:
        raise invalid("pageSize and pageToken must be integers here.") from None
    size = max(1, min(size, maximum))
    page = items[start : start + size]
    return page, str(start + size) if start + size < len(items) else None


# HTTP ---------------------------------------------------------------------------------------------
_MODEL_ACTION = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchGenerateContent$")
_BATCH_PATH = re.compile(r"^/v1beta/batches/(?P<id>[^/:]+)(?::(?P<verb>cancel))?$")
_FILE_PATH = re.compile(r"^/v1beta/files/(?P<id>[^/:]+)$")
_DOWNLOAD_PATH = re.compile(r"^/download/v1beta/files/(?P<id>[^/:]+):download$")


@dataclass
class Answer:
    status: int = 200
    json: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def handle(
    api: GeminiApi,
    method: str,
    path: str,
    query: dict[str, str],
    headers: Any,
    read_json: Callable[[], Any],
    read: Callable[[], bytes],
    base_url: str,
) -> Answer:
    """One request under the Gemini prefix (`path` without it)."""
    api.check_key(headers.get("x-goog-api-key") or query.get("key"))
    if path == "/upload/v1beta/files" and method == "POST":
        if "upload_id" in query:
            return Answer(
                json=api.upload_bytes(query["upload_id"], headers, read, base_url),
                headers={"X-Goog-Upload-Status": "final"},
            )
        if (headers.get("X-Goog-Upload-Protocol") or "").lower() == "multipart":
            return Answer(json=api.multipart_upload(headers, read, base_url))
        upload_headers, body = api.start_upload(headers, read_json(), base_url)
        return Answer(json=body, headers=upload_headers)
    if path == "/v1beta/files" and method == "GET":
        return Answer(json=api.list_files(query, base_url))
    if match := _FILE_PATH.match(path):
        name = "files/" + match["id"]
        if method == "GET":
            return Answer(json=api.get_file(name, base_url))
        if method == "DELETE":
            return Answer(json=api.delete_file(name))
    if (match := _DOWNLOAD_PATH.match(path)) and method == "GET":
        if query.get("alt") != "media":
            raise invalid("Downloads need alt=media.")
        return Answer(raw=api.download("files/" + match["id"]))
    if (match := _MODEL_ACTION.match(path)) and method == "POST":
        return Answer(json=api.create_batch(match["model"], read_json()))
    if path == "/v1beta/batches" and method == "GET":
        return Answer(json=api.list_batches(query))
    if match := _BATCH_PATH.match(path):
        if match["verb"] == "cancel" and method == "POST":
            return Answer(json=api.cancel_batch(match["id"]))
        if match["verb"] is None and method == "GET":
            return Answer(json=api.get_batch(match["id"]))
        if match["verb"] is None and method == "DELETE":
            return Answer(json=api.delete_batch(match["id"]))
    raise GeminiError(404, f"The requested URL {path} was not found on this server ({method}).")
