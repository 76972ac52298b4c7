"""A Vertex AI batch prediction job as an OpenAI Batch object, and how the gateway names its jobs.

States: https://cloud.google.com/vertex-ai/docs/reference/rest/v1/JobState. Fields of a job
(`state`, `createTime`, `endTime`, `completionStats`, `outputInfo.gcsOutputDirectory`, `error`):
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs#BatchPredictionJob.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from gateway.providers.job_notes import Note, note_batch

# Vertex's job state -> OpenAI's batch status.
STATUS: dict[str, str] = {
    "JOB_STATE_PENDING": "validating",
    "JOB_STATE_QUEUED": "validating",
    "JOB_STATE_RUNNING": "in_progress",
    "JOB_STATE_UPDATING": "in_progress",
    "JOB_STATE_PAUSED": "in_progress",
    "JOB_STATE_CANCELLING": "cancelling",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_SUCCEEDED": "completed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "completed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "expired",
}
# States after which the job writes nothing more; those with predictions to read.
FINISHED = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)
WITH_RESULTS = FINISHED - {"JOB_STATE_FAILED"}
# The label that names the gateway batch a job runs (label values: lowercase, digits, `_`, `-`).
BATCH_LABEL = "gateway_batch"
DISPLAY_NAME_PREFIX = "openai-gateway "
# Vertex runs a Gemini batch for up to 24 hours once it starts; an OpenAI batch's window is 24h.
WINDOW = "24h"
__all__ = ["Note", "batch_object", "job_id", "job_token"]


def job_token(gateway_batch_id: str) -> str:
    """The label value and the object folder of a gateway batch's job: a retried create finds
    the job its first attempt made by this label."""
    return "gw-" + hashlib.sha256(gateway_batch_id.encode()).hexdigest()[:40]


def job_id(name: str) -> str:
    """`projects/…/batchPredictionJobs/123` -> `123`."""
    return name.rsplit("/", 1)[-1]


def _seconds(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _count(stats: dict[str, Any], name: str) -> int:
    raw = stats.get(name)
    return int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 0


def batch_object(job: dict[str, Any], note: Note) -> dict[str, Any]:
    """The OpenAI Batch object of a job (`batchPredictionJobs.get` or a list entry)."""
    state = str(job.get("state") or "")
    status = STATUS.get(state, "validating")
    stats = job.get("completionStats") or {}
    succeeded = _count(stats, "successfulCount")
    failed = _count(stats, "failedCount")
    if state == "JOB_STATE_EXPIRED":
        # OpenAI's rule: requests the window left unrun are failed (an error line each)
        failed += _count(stats, "incompleteCount")
    updated = _seconds(job.get("updateTime"))
    error = job.get("error") or {}
    return note_batch(
        note,
        batch_id=job_id(str(job["name"])),
        status=status,
        counts={"total": note.total, "completed": succeeded, "failed": failed},
        model=str(job.get("model") or "").rsplit("/", 1)[-1] or None,
        in_progress_at=_seconds(job.get("startTime")) if status != "validating" else None,
        expires_at=note.created_at + 24 * 3600,
        cancelling_at=updated if status == "cancelling" else None,
        ended_at=_seconds(job.get("endTime")) or updated,
        failure=(
            "vertex_job_failed",
            str(error.get("message") or "The Vertex AI batch prediction job failed."),
        ),
    )
