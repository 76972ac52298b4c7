"""Anthropic Message Batches -> OpenAI Batch fields, and the batch output/error lines."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.models.batches import Batch
from gateway.providers.anthropic.shapes import CustomIds, openai_batch, openai_status, outcome
from gateway.providers.batch_results import ERROR, OUTPUT, Outcome, has_line, result_line

# The MessageBatch of Anthropic's API reference (retrieve), a batch still processing.
DOCUMENTED_BATCH: dict[str, Any] = {
    "id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message_batch",
    "processing_status": "in_progress",
    "request_counts": {"processing": 100, "succeeded": 50, "errored": 30, "canceled": 10, "expired": 10},
    "ended_at": None,
    "created_at": "2024-08-20T18:37:24.100435Z",
    "expires_at": "2024-08-21T18:37:24.100435Z",
    "archived_at": None,
    "cancel_initiated_at": None,
    "results_url": None,
}
NOTE = {
    "input_file_id": "kfile-1",
    "endpoint": "/v1/chat/completions",
    "completion_window": "24h",
    "metadata": {"a": "b"},
}


def ended(**counts: int) -> dict[str, Any]:
    full = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0, **counts}
    return {
        **DOCUMENTED_BATCH,
        "processing_status": "ended",
        "ended_at": "2024-08-21T08:00:00Z",
        "request_counts": full,
    }


@pytest.mark.parametrize(
    ("batch", "status"),
    [
        (DOCUMENTED_BATCH, "in_progress"),
        ({**DOCUMENTED_BATCH, "processing_status": "canceling"}, "cancelling"),
        (ended(succeeded=3, errored=1), "completed"),
        (ended(canceled=4), "cancelled"),
        (ended(expired=4), "expired"),
        (ended(succeeded=1, expired=3), "completed"),
        ({**ended(succeeded=1, canceled=3), "cancel_initiated_at": "2024-08-21T07:00:00Z"}, "cancelled"),
    ],
)
def test_statuses(batch: dict[str, Any], status: str) -> None:
    assert openai_status(batch) == status


def test_documented_batch_as_an_openai_batch() -> None:
    converted = openai_batch(DOCUMENTED_BATCH, NOTE)
    Batch.model_validate(converted)
    # OpenAI's rule: failed = errored + expired; the 10 a cancel left unrun count in total only.
    assert converted["request_counts"] == {"total": 200, "completed": 50, "failed": 40}
    assert converted["created_at"] == 1724179044 == converted["in_progress_at"]
    assert converted["expires_at"] == 1724179044 + 86400
    assert converted["input_file_id"] == "kfile-1" and converted["metadata"] == {"a": "b"}
    assert converted["completed_at"] is None and converted["output_file_id"] is None


def test_an_ended_batch_carries_its_files_and_end_time() -> None:
    files = {"output_file_id": "kfile-out", "error_file_id": None}
    converted = openai_batch(ended(succeeded=2), NOTE, files)
    assert converted["status"] == "completed" and converted["completed_at"] == 1724227200
    assert (converted["output_file_id"], converted["error_file_id"]) == ("kfile-out", None)
    cancelled = openai_batch({**ended(canceled=2), "cancel_initiated_at": "2024-08-21T07:00:00Z"}, NOTE)
    assert (cancelled["cancelling_at"], cancelled["cancelled_at"]) == (1724223600, 1724227200)


def test_custom_ids_outside_anthropics_pattern_are_mapped_uniquely() -> None:
    ids = CustomIds()
    assert ids.anthropic_id("request-1") == "request-1"
    odd = ids.anthropic_id("request 1")
    long = ids.anthropic_id("y" * 65)
    assert odd != long and odd.startswith("gw-") and len(odd) <= 64
    assert ids.mapped == {odd: "request 1", long: "y" * 65}
    assert ids.anthropic_id("request 1") not in (odd, "request 1")  # a duplicate still gets its own


def test_results_lines_back_under_the_clients_custom_ids() -> None:
    succeeded = {
        "custom_id": "gw-1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_014VwiXbi91y3JMjcpyGBHX5",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "Hello again!"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 36},
            },
        },
    }
    kind, line = result_line(outcome(succeeded, {"gw-1": "my request"}, 100), "batch_x")
    assert kind == OUTPUT and line["custom_id"] == "my request" and line["error"] is None
    assert line["id"].startswith("batch_req_") and line["response"]["status_code"] == 200
    body = line["response"]["body"]
    assert body["choices"][0]["message"]["content"] == "Hello again!" and body["usage"]["total_tokens"] == 47
    errored = {
        "custom_id": "e",
        "result": {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            },
        },
    }
    kind, line = result_line(outcome(errored, {}, 100), "batch_x")
    assert kind == ERROR and line["response"]["status_code"] == 400
    assert line["response"]["body"]["error"]["message"] == "max_tokens: Field required"
    kind, line = result_line(outcome({"custom_id": "c", "result": {"type": "expired"}}, {}, 100), "batch_x")
    assert kind == ERROR and line["response"] is None and line["error"]["code"] == "batch_expired"
    # A request a cancel left unrun gets no line, as at OpenAI.
    canceled = outcome({"custom_id": "c", "result": {"type": "canceled"}}, {}, 100)
    assert canceled.kind == "canceled" and not has_line(canceled)
    with pytest.raises(ValueError):
        result_line(canceled, "batch_x")


def test_line_ids_are_fixed_per_batch_and_request() -> None:
    first = result_line(Outcome("a", "expired"), "batch_x")[1]["id"]
    assert first == result_line(Outcome("a", "expired"), "batch_x")[1]["id"]
    assert first != result_line(Outcome("b", "expired"), "batch_x")[1]["id"]
