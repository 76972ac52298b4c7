"""Vertex AI batch prediction rows both ways, job states, deployment settings and the token key.

Shapes from the providers' documents: a Cloud Storage input row `{"request": {...}}` and an
output row `{"status", "processed_time", "request", "response"}`
(https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage),
a BatchPredictionJob (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.errors import InvalidRequestError, UpstreamError
from gateway.providers.config import parse_deployments
from gateway.providers.vertex import jobs as vertex_jobs
from gateway.providers.vertex import records as vertex_records
from gateway.providers.vertex.google_token import parse_key
from gateway.providers.vertex.jobs import Note
from pydantic import ValidationError


def _line(custom_id: str, **body: Any) -> bytes:
    request = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hello"}], **body}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}
    return json.dumps(line).encode()


def _rows(
    *lines: bytes, models: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], vertex_records.Rows]:
    into = vertex_records.Rows()
    rows = [
        json.loads(row)
        for row in vertex_records.rows(list(lines), models=models or {}, default_max_tokens=4096, into=into)
    ]
    return rows, into


# OpenAI -> Vertex -------------------------------------------------------------------------------
def test_each_line_becomes_a_request_row_labelled_with_its_place() -> None:
    rows, into = _rows(
        _line("first/1", max_tokens=64, temperature=0.2),
        b"   ",
        _line(
            "second é",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        ),
    )
    assert into.custom_ids == ["first/1", "second é"] and into.model == "gemini-2.5-flash"
    assert into.model_resource == "publishers/google/models/gemini-2.5-flash"
    first, second = (row["request"] for row in rows)
    assert set(rows[0]) == {"request"}  # the documented row: the request and nothing else
    assert first["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert (
        first["generationConfig"]["maxOutputTokens"] == 64 and first["generationConfig"]["temperature"] == 0.2
    )
    assert first["labels"] == {"gateway_line": "l0000000001"}
    assert second["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert second["labels"] == {"gateway_line": "l0000000002"}
    assert "model" not in first  # the job names the model
    assert into.size == sum(
        len(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()) + 1 for row in rows
    )


def test_a_deployment_alias_names_the_gemini_model() -> None:
    _, into = _rows(
        _line("a", model="fast"), models={"fast": "publishers/google/models/gemini-2.5-flash-lite"}
    )
    assert into.model == "gemini-2.5-flash-lite"
    with pytest.raises(InvalidRequestError, match="not configured"):
        _rows(_line("a", model="gemini-2.5-pro"), models={"fast": "gemini-2.5-flash-lite"})


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (_line("a", model="gpt-4o"), "Line 1: Model 'gpt-4o' is not supported"),
        (_line("a", logit_bias={"1": 1}), "Line 1: body.logit_bias"),
        (b'{"custom_id": "a"}', "Line 1: is not a batch request line"),
        (json.dumps({"custom_id": "a", "url": "/v1/embeddings", "body": {}}).encode(), "/v1/embeddings"),
    ],
)
def test_a_line_vertex_cannot_take_is_refused_naming_it(line: bytes, found: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        _rows(line)
    assert found in error.value.message and error.value.code == "invalid_batch_line"


def test_one_job_runs_one_model() -> None:
    with pytest.raises(
        InvalidRequestError, match=r"Line 2: model 'gemini-2\.5-pro': a Vertex AI batch runs one model"
    ):
        _rows(_line("a"), _line("b", model="gemini-2.5-pro"))


def test_an_empty_file_and_too_many_requests_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequestError, match="no requests"):
        _rows(b"\n")
    monkeypatch.setattr(vertex_records, "MAX_REQUESTS", 2)
    with pytest.raises(InvalidRequestError) as error:
        _rows(_line("a"), _line("b"), _line("c"))
    assert error.value.code == "too_many_requests_in_batch"


def test_the_upload_check_names_the_field() -> None:
    vertex_records.check_line(json.loads(_line("a"))["body"], models={}, default_max_tokens=1)
    with pytest.raises(ValueError, match=r"body\.model"):
        vertex_records.check_line(
            json.loads(_line("a", model="gpt-4o"))["body"], models={}, default_max_tokens=1
        )


def test_a_claude_line_becomes_a_messages_row_numbered_by_its_custom_id() -> None:
    rows, into = _rows(
        _line(
            "any/id é",
            model="claude-sonnet-4@20250514",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
            ],
        ),
        _line("second", model="claude-sonnet-4@20250514", max_tokens=None),
    )
    assert into.model_resource == "publishers/anthropic/models/claude-sonnet-4@20250514"
    first, second = rows
    # the documented row: {"custom_id", "request": Messages body + anthropic_version, no model}
    assert first["custom_id"] == "l0000000001" and second["custom_id"] == "l0000000002"
    assert first["request"] == {  # no model: the job names it
        "anthropic_version": "vertex-2023-10-16",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4096,
    }
    assert second["request"]["max_tokens"] == 4096  # the deployment's default: Claude requires one
    assert into.custom_ids == ["any/id é", "second"]


def test_a_claude_image_by_url_is_refused_naming_the_line() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    line = _line("a", model="claude-sonnet-4@20250514", messages=[{"role": "user", "content": [image]}])
    with pytest.raises(InvalidRequestError, match="Line 1"):
        _rows(line)


def test_a_claude_row_reads_back_as_the_chat_completion_of_its_message() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Hi there"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
    row = {"custom_id": "l0000000002", "request": {"messages": []}, "status": "", "response": message}
    done = vertex_records.outcome(row, ["a", "b"], model="claude-sonnet-4@20250514", created=5)
    assert done is not None and done.custom_id == "b" and done.body is not None
    assert done.body["choices"][0]["message"]["content"] == "Hi there"
    assert done.body["usage"]["prompt_tokens"] == 12 and done.body["choices"][0]["finish_reason"] == "stop"


# Vertex -> OpenAI -------------------------------------------------------------------------------
def _output_row(index: int, **fields: Any) -> dict[str, Any]:
    request = {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "labels": {"gateway_line": f"l{index:010d}"},
    }
    return {"status": "", "processed_time": "2024-11-01T18:13:16.826+00:00", "request": request, **fields}


_RESPONSE = {
    "candidates": [
        {
            "avgLogprobs": -0.57,
            "content": {"parts": [{"text": "This video shows a marketing campaign."}], "role": "model"},
            "finishReason": "STOP",
        }
    ],
    "modelVersion": "gemini-2.0-flash-001@default",
    "usageMetadata": {"candidatesTokenCount": 36, "promptTokenCount": 29180, "totalTokenCount": 29216},
}


def test_a_response_row_is_the_chat_completion_of_its_custom_id_whatever_its_place() -> None:
    custom_ids = ["first", "second"]
    # rows come back in any order: each finds its custom_id by its label
    second = vertex_records.outcome(
        _output_row(2, response=_RESPONSE), custom_ids, model="gemini-2.0-flash", created=7
    )
    assert second is not None and second.custom_id == "second" and second.kind == "succeeded"
    body = second.body
    assert body is not None and body["object"] == "chat.completion" and body["created"] == 7
    assert body["choices"][0]["message"]["content"] == "This video shows a marketing campaign."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 29180 and body["usage"]["completion_tokens"] == 36


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (
            'Bad Request: {"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT"}}',
            400,
            "invalid_request_error",
        ),
        (
            '{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}',
            429,
            "api_error",
        ),
        ("Internal error encountered.", 500, "api_error"),
    ],
)
def test_a_status_row_is_an_errored_request_with_its_code(status: str, code: int, kind: str) -> None:
    errored = vertex_records.outcome(_output_row(1, status=status), ["only"], model="m", created=0)
    assert errored is not None and errored.kind == "errored" and errored.custom_id == "only"
    assert (errored.status_code, errored.error_type) == (code, kind)
    assert errored.error_message and errored.error_message in status


def test_rows_the_gateway_did_not_write_are_ignored() -> None:
    assert (
        vertex_records.outcome(_output_row(3, response=_RESPONSE), ["a", "b"], model="m", created=0) is None
    )
    unlabelled = {"status": "", "request": {"contents": []}, "response": _RESPONSE}
    assert vertex_records.outcome(unlabelled, ["a"], model="m", created=0) is None
    assert vertex_records.line_index("l00000000x1") is None and vertex_records.line_index(5) is None


# Jobs -------------------------------------------------------------------------------------------
_NOTE = Note(
    gateway_batch_id="batch_x",
    input_file_id="kfile-1",
    endpoint="/v1/chat/completions",
    completion_window="24h",
    metadata={"tag": "t"},
    created_at=1_700_000_000,
    total=10,
)


def _job(state: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "projects/p/locations/us-central1/batchPredictionJobs/1234567890123456789",
        "model": "publishers/google/models/gemini-2.5-flash",
        "state": state,
        "createTime": "2023-11-14T22:13:20.000000Z",
        "updateTime": "2023-11-14T22:20:00.000000Z",
        **fields,
    }


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("JOB_STATE_PENDING", "validating"),
        ("JOB_STATE_QUEUED", "validating"),
        ("JOB_STATE_RUNNING", "in_progress"),
        ("JOB_STATE_CANCELLING", "cancelling"),
        ("JOB_STATE_CANCELLED", "cancelled"),
        ("JOB_STATE_SUCCEEDED", "completed"),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", "completed"),
        ("JOB_STATE_FAILED", "failed"),
        ("JOB_STATE_EXPIRED", "expired"),
    ],
)
def test_each_job_state_is_an_openai_status(state: str, status: str) -> None:
    batch = vertex_jobs.batch_object(_job(state), _NOTE)
    assert batch["status"] == status and batch["id"] == "1234567890123456789"
    assert batch["model"] == "gemini-2.5-flash" and batch["metadata"] == {"tag": "t"}


def test_counts_and_times_of_a_finished_job() -> None:
    stats = {"successfulCount": "7", "failedCount": "1", "incompleteCount": "2"}
    done = vertex_jobs.batch_object(
        _job("JOB_STATE_SUCCEEDED", completionStats=stats, endTime="2023-11-14T22:30:00Z"), _NOTE
    )
    assert done["request_counts"] == {"total": 10, "completed": 7, "failed": 1}
    assert done["completed_at"] == 1_700_001_000  # its endTime
    expired = vertex_jobs.batch_object(_job("JOB_STATE_EXPIRED", completionStats=stats), _NOTE)
    assert expired["request_counts"]["failed"] == 3  # the unrun ones are failed, as OpenAI's
    failed = vertex_jobs.batch_object(
        _job("JOB_STATE_FAILED", error={"code": 3, "message": "bad input"}), _NOTE
    )
    assert failed["errors"]["data"][0]["message"] == "bad input" and failed["failed_at"] is not None


def test_a_job_token_is_a_label_value_fixed_by_the_gateway_id() -> None:
    token = vertex_jobs.job_token("batch_AbC123")
    assert token == vertex_jobs.job_token("batch_AbC123") != vertex_jobs.job_token("batch_AbC124")
    assert len(token) <= 63 and token == token.lower() and token.replace("-", "").isalnum()


# Deployment settings and the key ----------------------------------------------------------------
def _vertex(**spec: Any) -> Any:
    base = {
        "type": "vertex",
        "project": "my-project-1",
        "location": "europe-west4",
        "gcs_bucket": "my_batches",
    }
    return parse_deployments({"vertex": {**base, **spec}})["vertex"]


def test_a_vertex_deployment_gets_its_regional_endpoints() -> None:
    deployment = _vertex(gcs_prefix="gateway")
    assert deployment.api_base == "https://europe-west4-aiplatform.googleapis.com"
    assert deployment.gcs_api_base == "https://storage.googleapis.com"
    assert deployment.gcs_prefix == "gateway/" and deployment.keeps_files


@pytest.mark.parametrize(
    "spec",
    [
        {"project": "My_Project"},
        {"project": None},
        {"location": "europe west4"},
        {"gcs_bucket": "Upper"},
        {"gcs_bucket": "goog-batches"},
        {"gcs_bucket": "ab"},
        {"gcs_prefix": "/rooted"},
    ],
)
def test_bad_vertex_settings_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _vertex(**spec)


def test_the_key_must_be_a_service_account_json_key() -> None:
    key = {"type": "service_account", "client_email": "a@b", "private_key": "k", "token_uri": "https://t"}
    assert parse_key(json.dumps(key), "vertex") == key
    for raw in (
        None,
        "not json",
        json.dumps({**key, "type": "authorized_user"}),
        json.dumps({"type": "service_account"}),
    ):
        with pytest.raises(UpstreamError) as error:
            parse_key(raw, "vertex")
        assert error.value.code == "provider_key_invalid" and "k" not in error.value.message.split()


# Google's errors ------------------------------------------------------------------------------
def _google_error(status: int, name: str) -> Any:
    import httpx

    body = {"error": {"code": status, "message": f"{name} happened", "status": name}}
    return httpx.Response(status, json=body, request=httpx.Request("GET", "https://x"))


def test_googles_errors_become_the_gateways() -> None:
    from gateway.errors import ConflictError, RateLimitError, UpstreamRequestError
    from gateway.providers.errors import QuotaRefused
    from gateway.providers.vertex.google_cloud import _error

    create = "vertex batchPredictionJobs.create"
    refused = _error(_google_error(429, "RESOURCE_EXHAUSTED"), "vertex", create)
    assert isinstance(refused, QuotaRefused)  # the plan waits and submits the part again
    throttled = _error(_google_error(429, "RESOURCE_EXHAUSTED"), "vertex", "vertex batchPredictionJobs.get")
    assert isinstance(throttled, RateLimitError) and not isinstance(throttled, QuotaRefused)
    denied = _error(_google_error(403, "PERMISSION_DENIED"), "vertex", create)
    assert isinstance(denied, UpstreamError) and denied.code == "provider_access_denied"
    missing = _error(_google_error(404, "NOT_FOUND"), "vertex", "vertex batchPredictionJobs.get")
    assert isinstance(missing, UpstreamRequestError) and missing.status_code == 404
    invalid = _error(_google_error(400, "INVALID_ARGUMENT"), "vertex", create)
    assert isinstance(invalid, UpstreamRequestError) and (invalid.status_code, invalid.code) == (
        400,
        "INVALID_ARGUMENT",
    )
    assert isinstance(_error(_google_error(409, "ALREADY_EXISTS"), "vertex", create), ConflictError)
    failed = _error(_google_error(503, "UNAVAILABLE"), "vertex", create)
    assert type(failed) is UpstreamError and failed.status_code == 502
