"""A Bedrock model invocation job as an OpenAI Batch object, and the names the gateway gives jobs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gateway.providers.job_notes import Note, note_batch

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
