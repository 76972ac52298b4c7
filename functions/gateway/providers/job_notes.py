"""The note the gateway keeps beside a provider job (Amazon Bedrock's, Vertex AI's): the OpenAI
fields the provider does not hold, and the OpenAI Batch object a job and its note make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# When the OpenAI status's own timestamp is the job's endTime.
_END_STAMP = {
    "completed": "completed_at",
    "cancelled": "cancelled_at",
    "failed": "failed_at",
    "expired": "expired_at",
}


@dataclass
class Note:
    """What the gateway keeps beside a job: the OpenAI fields the provider does not hold."""

    gateway_batch_id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created_at: int
    total: int
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: bool = False  # the output and error files are written

    def as_json(self) -> dict[str, Any]:
        return {
            "gateway_batch_id": self.gateway_batch_id,
            "input_file_id": self.input_file_id,
            "endpoint": self.endpoint,
            "completion_window": self.completion_window,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Note:
        return cls(
            gateway_batch_id=str(raw["gateway_batch_id"]),
            input_file_id=str(raw["input_file_id"]),
            endpoint=str(raw["endpoint"]),
            completion_window=str(raw["completion_window"]),
            metadata=raw.get("metadata"),
            created_at=int(raw["created_at"]),
            total=int(raw["total"]),
            output_file_id=raw.get("output_file_id"),
            error_file_id=raw.get("error_file_id"),
            results="output_file_id" in raw,
        )


def note_batch(
    note: Note,
    *,
    batch_id: str,
    status: str,
    counts: dict[str, int],
    model: Any,
    in_progress_at: int | None,
    expires_at: int | None,
    cancelling_at: int | None,
    ended_at: int | None,
    failure: tuple[str, str],
) -> dict[str, Any]:
    """The OpenAI Batch object of a job the gateway keeps a note of (Bedrock's, Vertex AI's):
    the note's fields, the job's times and counts; `ended_at` stamps a finished status and
    `failure` (code, message) is the error of a failed job."""
    batch: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": note.endpoint,
        "errors": None,
        "input_file_id": note.input_file_id,
        "completion_window": note.completion_window,
        "status": status,
        "output_file_id": note.output_file_id,
        "error_file_id": note.error_file_id,
        "created_at": note.created_at,
        "in_progress_at": in_progress_at,
        "expires_at": expires_at,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": cancelling_at,
        "cancelled_at": None,
        "request_counts": counts,
        "metadata": note.metadata,
        "model": model,
    }
    if status in _END_STAMP:
        batch[_END_STAMP[status]] = ended_at
    if status == "failed":
        code, message = failure
        batch["errors"] = {
            "object": "list",
            "data": [{"code": code, "message": message, "param": None, "line": None}],
        }
    return batch
