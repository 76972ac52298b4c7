"""A Gemini Batch Mode batch as an OpenAI Batch, and one result line as an `Outcome`: pure.

A batch is a long-running Operation (https://ai.google.dev/api/batch-mode): `name`
`batches/{id}`, `metadata` the GenerateContentBatch (`state`, `batchStats` with int64 counts as
strings, `createTime`/`endTime` in RFC 3339, `output.responsesFile`), `done`, and `error` (a
google.rpc.Status) when it failed. A responses file line is `{"key", "response"}` (a
GenerateContentResponse) or `{"key", "error"}` (a google.rpc.Status).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gateway.providers.batch_results import Outcome
from gateway.providers.chat_parts import CHAT_COMPLETIONS
from gateway.providers.gemini.content import chat_completion

DISPLAY_PREFIX = "gw-"  # a batch's displayName: this, then the gateway's batch id
BATCH_PREFIX = "batches/"
# Gemini's BatchState -> OpenAI's batch status.
STATUS = {
    "BATCH_STATE_PENDING": "validating",
    "BATCH_STATE_RUNNING": "in_progress",
    "BATCH_STATE_SUCCEEDED": "completed",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired",
}
FINISHED = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)
# Gemini keeps a batch up to 48 hours before it expires (https://ai.google.dev/gemini-api/docs/batch-mode).
EXPIRY_SECONDS = 48 * 3600
# google.rpc.Code -> the HTTP status Google maps it to (https://cloud.google.com/apis/design/errors).
RPC_STATUS = {
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    13: 500,
    14: 503,
    16: 401,
}
RESOURCE_EXHAUSTED = "resource_exhausted"
_FILE_NAME = re.compile(r"^files/[a-z0-9-]{1,64}$")
_END_STAMP = {
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": "expired_at",
}


def display_name(gateway_id: str) -> str:
    return DISPLAY_PREFIX + gateway_id


def gateway_id_of(display: Any) -> str | None:
    """The gateway batch id a batch's displayName carries (None: not a gateway batch)."""
    if isinstance(display, str) and display.startswith(DISPLAY_PREFIX) and len(display) > len(DISPLAY_PREFIX):
        return display[len(DISPLAY_PREFIX) :]
    return None


def holds(operation: dict[str, Any], total: int) -> bool:
    """Whether a batch holds `total` requests (a pending note is only taken by a batch of its
    size: a batch made elsewhere under a gateway-like displayName takes none)."""
    count = (metadata(operation).get("batchStats") or {}).get("requestCount")
    return count is None or int(count) == total


def batch_id(operation: dict[str, Any]) -> str:
    """The id the gateway keeps for a batch: its name without `batches/`."""
    return str(operation.get("name") or "").removeprefix(BATCH_PREFIX)


def metadata(operation: dict[str, Any]) -> dict[str, Any]:
    found = operation.get("metadata")
    return found if isinstance(found, dict) else {}


def state(operation: dict[str, Any]) -> str:
    return str(metadata(operation).get("state") or "BATCH_STATE_PENDING")


def responses_file(operation: dict[str, Any]) -> str | None:
    for holder in ((metadata(operation).get("output") or {}), (operation.get("response") or {})):
        name = holder.get("responsesFile") if isinstance(holder, dict) else None
        if is_file_name(name):
            return str(name)
    return None


def is_file_name(name: Any) -> bool:
    """A Files API name, `files/{id}` (what the gateway puts in a URL path)."""
    return isinstance(name, str) and _FILE_NAME.match(name) is not None


def epoch(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str) or not timestamp:
        return None
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def counts(operation: dict[str, Any], total: int) -> dict[str, int]:
    """OpenAI's request_counts from batchStats: requests an expiry left unrun are failed (they
    get an error line), those a cancel left unrun count in `total` only (as at OpenAI)."""
    stats = metadata(operation).get("batchStats") or {}
    succeeded = int(stats.get("successfulRequestCount") or 0)
    failed = int(stats.get("failedRequestCount") or 0)
    total = int(stats.get("requestCount") or total)
    if state(operation) == "BATCH_STATE_EXPIRED":
        failed = total - succeeded
    return {"total": total, "completed": succeeded, "failed": failed}


def openai_batch(
    operation: dict[str, Any], note: dict[str, Any], files: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAI Batch of a Gemini batch; `note` keeps the OpenAI fields of its create, `files`
    the output and error file ids once its results are kept."""
    meta = metadata(operation)
    status = STATUS.get(state(operation), "validating")
    created = epoch(meta.get("createTime")) or int(note.get("attempted_at") or 0)
    ended = epoch(meta.get("endTime")) or epoch(meta.get("updateTime"))
    files = files or {}
    batch: dict[str, Any] = {
        "id": batch_id(operation),
        "object": "batch",
        "endpoint": note.get("endpoint") or CHAT_COMPLETIONS,
        "errors": None,
        "input_file_id": note.get("input_file_id") or "",
        "completion_window": note.get("completion_window") or "24h",
        "status": status,
        "output_file_id": files.get("output_file_id"),
        "error_file_id": files.get("error_file_id"),
        "created_at": created,
        "in_progress_at": epoch(meta.get("updateTime")) if status == "in_progress" else None,
        "expires_at": created + EXPIRY_SECONDS,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": counts(operation, int(note.get("total") or 0)),
        "metadata": note.get("metadata"),
        "model": note.get("model"),
    }
    if status in _END_STAMP:
        batch[_END_STAMP[status]] = ended
    if status == "cancelled":
        batch["cancelling_at"] = ended
    if status == "failed":
        error: dict[str, Any] = operation["error"] if isinstance(operation.get("error"), dict) else {}
        code = RESOURCE_EXHAUSTED if error.get("code") == 8 else "gemini_batch_failed"
        batch["errors"] = {
            "object": "list",
            "data": [
                {
                    "code": code,
                    "message": str(error.get("message") or "The Gemini batch failed."),
                    "param": None,
                    "line": None,
                }
            ],
        }
    return batch


def outcome(line: dict[str, Any], *, model: str, created: int) -> Outcome:
    """One responses-file line as an Outcome; its `key` is the client's custom_id."""
    custom_id = str(line.get("key"))
    response = line.get("response")
    if isinstance(response, dict):
        return Outcome(
            custom_id,
            "succeeded",
            body=chat_completion(response, model=model, custom_id=custom_id, created=created),
        )
    error: dict[str, Any] = line["error"] if isinstance(line.get("error"), dict) else {}
    code = error.get("code")
    status_code = RPC_STATUS.get(code, 500) if isinstance(code, int) else 500
    error_type = "invalid_request_error"
    if status_code == 429:
        error_type = "rate_limit_error"
    elif status_code >= 500:
        error_type = "server_error"
    return Outcome(
        custom_id,
        "errored",
        error_type=error_type,
        error_message=str(error.get("message") or "The request failed at Gemini."),
        status_code=status_code,
    )
