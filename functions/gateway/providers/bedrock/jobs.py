"""A Bedrock model invocation job as an OpenAI Batch object, and the names the gateway gives jobs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Bedrock's job status -> OpenAI's batch status.
STATUS: dict[str, str] = {
    "Submitted": "validating",
    "Validating": "validating",
    "Scheduled": "validating",
    "InProgress": "in_progress",
    "Stopping": "cancelling",
    "Stopped": "cancelled",
    "Completed": "completed",
    "PartiallyCompleted": "completed",
    "Failed": "failed",
    "Expired": "expired",
}
# Statuses after which the job writes nothing more: its results can be read.
FINISHED = frozenset({"Completed", "PartiallyCompleted", "Stopped", "Expired", "Failed"})
# When the OpenAI status's own timestamp is the job's endTime.
_END_STAMP = {
    "completed": "completed_at",
    "cancelled": "cancelled_at",
    "failed": "failed_at",
    "expired": "expired_at",
}
JOB_NAME_PREFIX = "gw-"
_NOT_TOKEN = re.compile(r"[^a-zA-Z0-9]+")
# Bedrock's timeoutDurationInHours: 24 to 168.
MIN_TIMEOUT_HOURS, MAX_TIMEOUT_HOURS = 24, 168


def job_token(gateway_batch_id: str) -> str:
    """The clientRequestToken and the job name of a gateway batch: a retried create names the
    same job, and Bedrock answers it instead of starting a second."""
    return JOB_NAME_PREFIX + _NOT_TOKEN.sub("-", gateway_batch_id).strip("-")


def timeout_hours(completion_window: str | None) -> int:
    """`24h` -> 24; Bedrock's bounds apply."""
    raw = (completion_window or "24h").removesuffix("h")
    hours = int(raw) if raw.isdigit() else MIN_TIMEOUT_HOURS
    return max(MIN_TIMEOUT_HOURS, min(MAX_TIMEOUT_HOURS, hours))


def job_id(job_arn: str) -> str:
    return job_arn.rsplit("/", 1)[-1]


@dataclass
class Note:
    """What the gateway keeps beside a job: the OpenAI fields Bedrock does not hold."""

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


def _seconds(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return None


def batch_object(job: dict[str, Any], note: Note) -> dict[str, Any]:
    """The OpenAI Batch object of a job (GetModelInvocationJob's answer or a list summary)."""
    status = STATUS.get(str(job.get("status")), "validating")
    total = job.get("totalRecordCount")
    succeeded = int(job.get("successRecordCount") or 0)
    errored = int(job.get("errorRecordCount") or 0)
    if job.get("status") == "Expired" and total is not None:
        # OpenAI's rule: requests the window left unrun are failed (with an error line each);
        # those a stop left unrun count in `total` only.
        errored += max(0, int(total) - int(job.get("processedRecordCount") or 0))
    modified = _seconds(job.get("lastModifiedTime"))
    return note_batch(
        note,
        batch_id=job_id(str(job["jobArn"])),
        status=status,
        counts={
            "total": int(total) if total is not None else note.total,
            "completed": succeeded,
            "failed": errored,
        },
        model=job.get("modelId"),
        in_progress_at=modified if status == "in_progress" else None,
        expires_at=_seconds(job.get("jobExpirationTime")),
        cancelling_at=modified if status == "cancelling" else None,
        ended_at=_seconds(job.get("endTime")) or modified,
        failure=("bedrock_job_failed", str(job.get("message") or "The Amazon Bedrock job failed.")),
    )
