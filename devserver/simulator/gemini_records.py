"""The simulated Gemini API's records: files, upload sessions, batches and their lines, each as
Google shows it (RFC 3339 times, int64 counts as strings, a batch as a long-running Operation),
and the error in Google's shape (`gemini` holds them; see its docstring for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .gemini_requests import RequestInvalid, check_request, respond
from .limits import Directive

FILE_TTL_SECONDS = 48 * 3600
BATCH_TTL_SECONDS = 48 * 3600  # a batch still pending or running after 48 hours expires
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
