"""A Bedrock model invocation job as an OpenAI Batch object: status mapping, counts, names.

Jobs are shaped as boto3 returns GetModelInvocationJob (botocore's service model for
`bedrock`: timestamps parsed into datetimes, record counters as numbers).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway.providers.bedrock import jobs as bedrock_jobs
from gateway.providers.job_notes import Note

SUBMITTED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
MODIFIED = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
ENDED = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
NOTE = Note(
    gateway_batch_id="batch_abc",
    input_file_id="kfile-1",
    endpoint="/v1/chat/completions",
    completion_window="24h",
    metadata={"team": "a"},
    created_at=int(SUBMITTED.timestamp()),
    total=120,
)


def _job(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456",
        "jobName": "gw-batch-abc",
        "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "status": status,
        "submitTime": SUBMITTED,
        "lastModifiedTime": MODIFIED,
        "jobExpirationTime": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        **fields,
    }


@pytest.mark.parametrize(
    ("bedrock", "openai"),
    [
        ("Submitted", "validating"),
        ("Validating", "validating"),
        ("Scheduled", "validating"),
        ("InProgress", "in_progress"),
        ("Stopping", "cancelling"),
        ("Stopped", "cancelled"),
        ("Completed", "completed"),
        ("PartiallyCompleted", "completed"),
        ("Failed", "failed"),
        ("Expired", "expired"),
    ],
)
def test_status_mapping(bedrock: str, openai: str) -> None:
    assert bedrock_jobs.batch_object(_job(bedrock, endTime=ENDED), NOTE)["status"] == openai


def test_every_status_of_the_service_model_is_mapped() -> None:
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("bedrock", "service-2")
    assert set(model["shapes"]["ModelInvocationJobStatus"]["enum"]) == set(bedrock_jobs.STATUS)


def test_a_finished_job_carries_counts_times_and_the_note() -> None:
    job = _job(
        "PartiallyCompleted", endTime=ENDED, totalRecordCount=120, successRecordCount=117, errorRecordCount=3
    )
    batch = bedrock_jobs.batch_object(job, NOTE)
    assert batch["id"] == "abcdef123456" and batch["object"] == "batch"
    assert batch["request_counts"] == {"total": 120, "completed": 117, "failed": 3}
    assert batch["completed_at"] == int(ENDED.timestamp()) and batch["in_progress_at"] is None
    assert (batch["input_file_id"], batch["endpoint"], batch["completion_window"]) == (
        "kfile-1",
        "/v1/chat/completions",
        "24h",
    )
    assert batch["metadata"] == {"team": "a"} and batch["created_at"] == NOTE.created_at
    assert batch["expires_at"] == int(datetime(2026, 12, 2, 10, 0, tzinfo=UTC).timestamp())


def test_before_bedrock_counts_the_total_is_the_notes() -> None:
    batch = bedrock_jobs.batch_object(_job("Submitted"), NOTE)
    assert batch["request_counts"] == {"total": 120, "completed": 0, "failed": 0}


def test_a_running_and_a_stopping_job_carry_their_stamps() -> None:
    assert bedrock_jobs.batch_object(_job("InProgress"), NOTE)["in_progress_at"] == int(MODIFIED.timestamp())
    assert bedrock_jobs.batch_object(_job("Stopping"), NOTE)["cancelling_at"] == int(MODIFIED.timestamp())


def test_a_failed_job_names_bedrocks_message() -> None:
    batch = bedrock_jobs.batch_object(_job("Failed", endTime=ENDED, message="Access denied to model"), NOTE)
    assert batch["failed_at"] == int(ENDED.timestamp())
    assert batch["errors"]["data"][0]["message"] == "Access denied to model"


def test_job_tokens_are_valid_bedrock_names_and_stable() -> None:
    # botocore's patterns for ModelInvocationIdempotencyToken and ModelInvocationJobName
    token_pattern = re.compile(r"^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$")
    name_pattern = re.compile(r"^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}$")
    token = bedrock_jobs.job_token("batch_Ab3dEf9hIjKlMnOpQrStUvWx")
    assert (
        token
        == bedrock_jobs.job_token("batch_Ab3dEf9hIjKlMnOpQrStUvWx")
        == "gw-batch-Ab3dEf9hIjKlMnOpQrStUvWx"
    )
    assert token_pattern.match(token) and name_pattern.match(token) and len(token) <= 63


@pytest.mark.parametrize(
    ("window", "hours"), [("24h", 24), (None, 24), ("72h", 72), ("1000h", 168), ("1h", 24)]
)
def test_timeout_hours_within_bedrocks_bounds(window: str | None, hours: int) -> None:
    assert bedrock_jobs.timeout_hours(window) == hours


def test_a_stopped_jobs_unrun_records_are_not_failed_as_at_openai() -> None:
    # 120 records, a stop after 50 ran (48 succeeded, 2 errored): the 70 never run count in total only.
    job = _job(
        "Stopped",
        endTime=ENDED,
        totalRecordCount=120,
        processedRecordCount=50,
        successRecordCount=48,
        errorRecordCount=2,
    )
    assert bedrock_jobs.batch_object(job, NOTE)["request_counts"] == {
        "total": 120,
        "completed": 48,
        "failed": 2,
    }


def test_an_expired_jobs_unrun_records_are_failed_as_at_openai() -> None:
    job = _job(
        "Expired",
        endTime=ENDED,
        totalRecordCount=120,
        processedRecordCount=50,
        successRecordCount=48,
        errorRecordCount=2,
    )
    assert bedrock_jobs.batch_object(job, NOTE)["request_counts"] == {
        "total": 120,
        "completed": 48,
        "failed": 72,
    }
