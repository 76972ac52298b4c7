"""Anthropic Message Batches <-> OpenAI Batches: pure mappings, no I/O.

Statuses: `in_progress` -> in_progress, `canceling` -> cancelling, `ended` -> completed, or
cancelled when a cancel was asked for (OpenAI's cancelled batches keep their partial results
too) or every request was cancelled, or expired when every request expired. Counts come from
`request_counts`, OpenAI's way: `failed` counts the errored and expired requests, not those a
cancel left unrun (they count in `total` only, as at OpenAI); custom_ids Anthropic refuses are
mapped to ones it takes, and back.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from gateway.providers.batch_results import Outcome
from gateway.providers.chat_parts import CHAT_COMPLETIONS

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")
# Anthropic's error types -> the HTTP status OpenAI's error line carries.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class CustomIds:
    """Anthropic-side custom_ids: the client's own where Anthropic takes them, else a stand-in
    (`gw-` and a hash of the original) that collides with no other id of the batch."""

    def __init__(self) -> None:
        self.mapped: dict[str, str] = {}  # anthropic id -> the client's, for the mapped ones only
        self._used: set[str] = set()

    def anthropic_id(self, custom_id: str) -> str:
        if CUSTOM_ID.match(custom_id) and custom_id not in self._used:
            self._used.add(custom_id)
            return custom_id
        digest = hashlib.sha256(custom_id.encode()).hexdigest()
        candidate, salt = f"gw-{digest[:40]}", 0
        while candidate in self._used:
            salt += 1
            candidate = f"gw-{digest[:40]}-{salt}"
        self._used.add(candidate)
        self.mapped[candidate] = custom_id
        return candidate


def epoch(timestamp: Any) -> int | None:
    """An RFC 3339 time (Anthropic's) as Unix seconds."""
    if not isinstance(timestamp, str) or not timestamp:
        return None
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def request_counts(batch: dict[str, Any]) -> dict[str, int]:
    counts = batch.get("request_counts") or {}
    return {name: int(counts.get(name) or 0) for name in _COUNTS}


def openai_status(batch: dict[str, Any]) -> str:
    status = batch.get("processing_status")
    if status == "canceling":
        return "cancelling"
    if status != "ended":
        return "in_progress"
    counts = request_counts(batch)
    total = sum(counts.values())
    if batch.get("cancel_initiated_at") or (total and counts["canceled"] == total):
        return "cancelled"
    if total and counts["expired"] == total:
        return "expired"
    return "completed"


def openai_batch(
    batch: dict[str, Any], sidecar: dict[str, Any], files: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The OpenAI Batch of an Anthropic MessageBatch; `sidecar` holds the OpenAI-side fields the
    create was given, `files` the output and error file ids once the results are kept."""
    counts = request_counts(batch)
    status = openai_status(batch)
    created = epoch(batch.get("created_at"))
    ended = epoch(batch.get("ended_at"))
    files = files or {}
    return {
        "id": batch["id"],
        "object": "batch",
        "endpoint": sidecar.get("endpoint") or CHAT_COMPLETIONS,
        "input_file_id": sidecar.get("input_file_id") or "",
        "completion_window": sidecar.get("completion_window") or "24h",
        "metadata": sidecar.get("metadata"),
        "model": sidecar.get("model"),
        "status": status,
        "created_at": created,
        "in_progress_at": created,
        "expires_at": epoch(batch.get("expires_at")),
        "cancelling_at": epoch(batch.get("cancel_initiated_at")),
        "completed_at": ended if status == "completed" else None,
        "cancelled_at": ended if status == "cancelled" else None,
        "expired_at": ended if status == "expired" else None,
        "finalizing_at": None,
        "failed_at": None,
        "errors": None,
        "output_file_id": files.get("output_file_id"),
        "error_file_id": files.get("error_file_id"),
        "request_counts": {
            "total": sum(counts.values()),
            "completed": counts["succeeded"],
            "failed": counts["errored"] + counts["expired"],
        },
    }


def outcome(line: dict[str, Any], custom_ids: dict[str, str], created: int) -> Outcome:
    """One line of a batch's results JSONL as an Outcome under the client's own custom_id."""
    from gateway.providers.anthropic.messages import chat_completion

    anthropic_id = str(line.get("custom_id"))
    custom_id = custom_ids.get(anthropic_id, anthropic_id)
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        message = result.get("message") or {}
        return Outcome(custom_id, "succeeded", body=chat_completion(message, created=created))
    if kind == "errored":
        envelope: dict[str, Any] = result.get("error") or {}
        inner = envelope.get("error")
        error: dict[str, Any] = inner if isinstance(inner, dict) else envelope
        error_type = str(error.get("type") or "api_error")
        return Outcome(
            custom_id,
            "errored",
            error_type=error_type,
            error_message=str(error.get("message") or "The request failed at Anthropic."),
            status_code=ERROR_STATUS.get(error_type, 500),
            request_id=envelope.get("request_id"),
        )
    if kind == "canceled":
        return Outcome(custom_id, "canceled")
    return Outcome(custom_id, "expired")
