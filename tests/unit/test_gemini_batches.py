"""A Gemini batch Operation as an OpenAI Batch, and responses-file lines as outcomes, from the
shapes of https://ai.google.dev/api/batch-mode."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.providers.gemini import shapes
from gateway.providers.gemini.client import GeminiClient

NOTE = {
    "input_file_id": "kfile-in",
    "endpoint": "/v1/chat/completions",
    "completion_window": "24h",
    "metadata": {"team": "a"},
    "model": "gemini-2.5-flash",
    "total": 4,
    "attempted_at": 1_700_000_000,
}


def operation(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "batches/abc123",
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "displayName": "gw-batch_1",
            "state": state,
            "createTime": "2027-01-15T08:00:00Z",
            "updateTime": "2027-01-15T08:00:20Z",
            "endTime": "2027-01-15T08:00:20Z",
            "batchStats": {
                "requestCount": "4",
                "successfulRequestCount": "2",
                "failedRequestCount": "1",
                "pendingRequestCount": "1",
            },
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("state", "status", "stamp"),
    [
        ("BATCH_STATE_PENDING", "validating", None),
        ("BATCH_STATE_RUNNING", "in_progress", "in_progress_at"),
        ("BATCH_STATE_SUCCEEDED", "completed", "completed_at"),
        ("BATCH_STATE_FAILED", "failed", "failed_at"),
        ("BATCH_STATE_CANCELLED", "cancelled", "cancelled_at"),
        ("BATCH_STATE_EXPIRED", "expired", "expired_at"),
    ],
)
def test_each_state_is_an_openai_status_with_its_time(state: str, status: str, stamp: str | None) -> None:
    batch = shapes.openai_batch(operation(state), NOTE)
    assert batch["id"] == "abc123" and batch["status"] == status
    assert batch["created_at"] == 1_800_000_000  # createTime 2027-01-15T08:00:00Z
    assert batch["expires_at"] == 1_800_000_000 + 48 * 3600
    assert batch["metadata"] == {"team": "a"} and batch["model"] == "gemini-2.5-flash"
    if stamp:
        assert batch[stamp] is not None


def test_counts_follow_openais_rule() -> None:
    assert shapes.openai_batch(operation("BATCH_STATE_CANCELLED"), NOTE)["request_counts"] == {
        "total": 4,
        "completed": 2,
        "failed": 1,
    }
    # an expiry fails what it left unrun (each gets a batch_expired line)
    assert shapes.openai_batch(operation("BATCH_STATE_EXPIRED"), NOTE)["request_counts"] == {
        "total": 4,
        "completed": 2,
        "failed": 2,
    }


def test_a_failed_batch_carries_its_error_and_a_quota_failure_is_recognised() -> None:
    failed = shapes.openai_batch(
        operation("BATCH_STATE_FAILED", error={"code": 3, "message": "bad file"}), NOTE
    )
    assert failed["errors"]["data"][0]["code"] == "gemini_batch_failed"
    assert failed["errors"]["data"][0]["message"] == "bad file"
    quota = shapes.openai_batch(operation("BATCH_STATE_FAILED", error={"code": 8, "message": "quota"}), NOTE)
    assert quota["errors"]["data"][0]["code"] == "resource_exhausted"
    assert GeminiClient.quota_refused(None, quota) is True  # type: ignore[arg-type]
    assert GeminiClient.quota_refused(None, failed) is False  # type: ignore[arg-type]


def test_the_responses_file_is_read_from_metadata_or_response() -> None:
    assert (
        shapes.responses_file(operation("BATCH_STATE_SUCCEEDED", response={"responsesFile": "files/r"}))
        == "files/r"
    )
    assert shapes.responses_file(operation("BATCH_STATE_RUNNING")) is None


def test_result_lines_become_outcomes_under_their_key() -> None:
    succeeded = shapes.outcome(
        {
            "key": "my id",
            "response": {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]},
        },
        model="gemini-2.5-flash",
        created=5,
    )
    assert succeeded.kind == "succeeded" and succeeded.custom_id == "my id"
    assert succeeded.body is not None and succeeded.body["choices"][0]["message"]["content"] == "hi"
    for code, status, error_type in [
        (3, 400, "invalid_request_error"),
        (8, 429, "rate_limit_error"),
        (13, 500, "server_error"),
    ]:
        errored = shapes.outcome({"key": "e", "error": {"code": code, "message": "m"}}, model="m", created=5)
        assert (errored.kind, errored.status_code, errored.error_type) == ("errored", status, error_type)


def test_display_names_carry_the_gateway_id_and_a_pending_note_fits_only_its_size() -> None:
    assert shapes.gateway_id_of(shapes.display_name("batch_9")) == "batch_9"
    assert shapes.gateway_id_of("someone's batch") is None and shapes.gateway_id_of("gw-") is None
    assert shapes.holds(operation("BATCH_STATE_PENDING"), 4)
    assert not shapes.holds(operation("BATCH_STATE_PENDING"), 5)


def test_only_a_files_api_name_is_read_as_the_responses_file() -> None:
    for odd in ("files/../batches/x", "https://elsewhere/x", "files/", 7):
        assert (
            shapes.responses_file(operation("BATCH_STATE_SUCCEEDED", response={"responsesFile": odd})) is None
        )
