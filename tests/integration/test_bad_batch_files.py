"""OpenAI's contract for a bad batch file, through the official SDK against the local server:
the upload refuses only a file that is not JSON Lines of objects; every other problem fails
the batch at create (200, then `failed` with `errors.data[]` naming each line), before any
provider sees it, at no cost. LiteLLM's routing tests expect exactly this of a proxy."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of
from tests.integration.tenancy import generate_key, key_api

GOOD: dict[str, Any] = {
    "custom_id": "r-1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
}


def jsonl(*lines: dict[str, Any] | str) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


def upload(sdk: openai.OpenAI, content: bytes, name: str | None = None) -> openai.types.FileObject:
    name = name or f"bad-{uuid.uuid4().hex[:8]}.jsonl"
    return sdk.files.create(file=(name, io.BytesIO(content), "application/jsonl"), purpose="batch")


def simulator_batches_on(gateway: LocalGateway, upstream_file_ids: set[str]) -> int:
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return sum(1 for batch in state.batches.values() if batch.input_file_id in upstream_file_ids)


def upstream_file_ids(gateway: LocalGateway, filename: str) -> set[str]:
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return {file_id for file_id, f in state.files.items() if f.filename == filename}


def test_litellms_test_data_file_uploads_and_its_batch_fails_with_line_numbers(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway)
    name = f"litellm-{uuid.uuid4().hex[:8]}.jsonl"
    file = upload(sdk, jsonl({"test": "data"}), name)  # 200, as OpenAI and LiteLLM answer
    assert file.status == "processed" and file.purpose == "batch"
    batch = sdk.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed"  # 200: the batch exists, and failed its validation
    retrieved = sdk.batches.retrieve(batch.id)
    assert retrieved.status == "failed" and retrieved.failed_at is not None
    assert retrieved.errors is not None and retrieved.errors.data
    assert {(error.code, error.line) for error in retrieved.errors.data} == {
        ("missing_required_parameter", 1)
    }
    assert [error.param for error in retrieved.errors.data] == ["custom_id", "method", "url", "body"]
    assert simulator_batches_on(local_gateway, upstream_file_ids(local_gateway, name)) == 0
    cost: dict[str, Any] = retrieved.to_dict()["cost"]  # type: ignore[assignment]
    assert cost["total"] == 0  # settled: it cost nothing


OTHER_MODEL = {**GOOD, "custom_id": "r-2", "body": {**GOOD["body"], "model": "gpt-4o"}}


@pytest.mark.parametrize(
    ("lines", "endpoint", "code", "param", "line"),
    [
        ((GOOD, GOOD), "/v1/chat/completions", "duplicate_custom_id", "custom_id", 2),
        ((GOOD, OTHER_MODEL), "/v1/chat/completions", "mismatched_model", "body.model", 2),
        ((GOOD,), "/v1/embeddings", "invalid_url", "url", 1),
        (
            (GOOD, {**GOOD, "custom_id": "r-2", "url": "/v1/embeddings"}),
            "/v1/chat/completions",
            "invalid_url",
            "url",
            2,
        ),
        (({**GOOD, "body": {"messages": []}},), "/v1/chat/completions", "invalid_request", "body.model", 1),
        (
            (GOOD, {k: v for k, v in {**GOOD, "custom_id": "r-2"}.items() if k != "method"}),
            "/v1/chat/completions",
            "missing_required_parameter",
            "method",
            2,
        ),
        ((), "/v1/chat/completions", "empty_file", None, None),
        (
            ({**GOOD, "body": {**GOOD["body"], "stream": True}},),
            "/v1/chat/completions",
            "streaming_unsupported",
            "body.stream",
            1,
        ),
    ],
)
def test_each_problem_fails_the_batch_with_openais_code_param_and_line(
    local_gateway: LocalGateway,
    lines: tuple[dict[str, Any], ...],
    endpoint: str,
    code: str,
    param: str | None,
    line: int | None,
) -> None:
    sdk = client(local_gateway)
    name = f"bad-{uuid.uuid4().hex[:8]}.jsonl"
    file = upload(sdk, jsonl(*lines), name)
    batch = sdk.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.param, e.line) for e in batch.errors.data] == [(code, param, line)]
    assert simulator_batches_on(local_gateway, upstream_file_ids(local_gateway, name)) == 0


def test_a_file_that_is_not_json_lines_is_refused_at_upload_with_its_line_numbers(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        upload(sdk, jsonl(GOOD, "{not json", "[1, 2]"))
    error = error_of(refused.value)
    assert (error["code"], error["param"]) == ("invalid_json_line", "file")
    assert "line 2: " in error["message"] and "line 3: " in error["message"]


def test_a_bad_file_through_the_uploads_api_is_processed_and_its_batch_fails(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway)
    content = batch_jsonl(2) + batch_jsonl(1)  # request-0 twice
    upload_ = sdk.uploads.create(
        bytes=len(content), filename="dup.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    part = sdk.uploads.parts.create(upload_.id, data=content)
    completed = sdk.uploads.complete(upload_.id, part_ids=[part.id])
    assert completed.file is not None and local_gateway.wait_for_async(30)
    assert sdk.files.retrieve(completed.file.id).status == "processed"
    batch = sdk.batches.create(
        input_file_id=completed.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [("duplicate_custom_id", 3)]


def test_a_bad_files_batch_holds_nothing_of_a_budget_and_books_nothing(local_gateway: LocalGateway) -> None:
    key = generate_key(local_gateway, "bad-file", max_budget=0.000001)
    sdk = client(local_gateway, key=key.key)
    file = upload(sdk, jsonl({"test": "data"}))
    batch = sdk.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed"  # not budget_exceeded, not budget_unknown_cost: it costs nothing
    info = key_api(local_gateway, "GET", "/key/info", params={"key": key.key_id})
    assert info.status_code == 200, info.text
    assert (info.json()["info"]["holds"], info.json()["info"]["spend"]) == (0, 0)


def check(sdk: openai.OpenAI, file_id: str, endpoint: str = "/v1/chat/completions") -> dict[str, Any]:
    """POST /v1/batches/check as the README shows it: the SDK's own `post`."""
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}
    answer = sdk.post("/batches/check", body=body, cast_to=object)
    assert isinstance(answer, dict)
    return answer


def test_check_answers_what_a_create_would_do_without_creating_anything(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    good = upload(sdk, batch_jsonl(3))
    before = {batch.id for batch in sdk.batches.list(limit=100)}
    answer = check(sdk, good.id)
    assert answer["object"] == "batch.check" and answer["valid"] is True and answer["checked"] is True
    assert (answer["provider"], answer["requests"], answer["parts"]) == ("openai", 3, 1)
    assert answer["errors"] == {"object": "list", "data": []} and answer["error_count"] == 0
    assert answer["limits"] == {"max_requests": 50_000, "max_bytes": 200 * 1024 * 1024, "min_requests": None}
    estimate = answer["estimate"]
    assert estimate["model"] == "gpt-4o-mini" and estimate["input_tokens"] > 0 and estimate["cost"] > 0
    bad = upload(sdk, jsonl(GOOD, GOOD, {"test": "data"}))
    answer = check(sdk, bad.id, "/v1/embeddings")
    assert answer["valid"] is False
    assert [(e["code"], e["line"]) for e in answer["errors"]["data"]] == [
        ("invalid_url", 1),
        ("duplicate_custom_id", 2),
        *[("missing_required_parameter", 3)] * 4,
    ]
    assert answer["error_count"] == 7  # line 2's url too
    assert {batch.id for batch in sdk.batches.list(limit=100)} == before  # nothing created


def test_check_takes_the_create_rules_and_the_providers_limits(local_gateway: LocalGateway) -> None:
    anthropic = client(local_gateway, provider="anthropic")
    file = anthropic.files.create(
        file=("c.jsonl", io.BytesIO(jsonl(GOOD)), "application/jsonl"), purpose="batch"
    )
    answer = check(anthropic, file.id)
    assert answer["provider"] == "anthropic"
    assert answer["limits"] == {"max_requests": 100_000, "max_bytes": 256 * 1024 * 1024, "min_requests": None}
    with pytest.raises(openai.BadRequestError) as refused:
        check(anthropic, file.id, "/v1/embeddings")
    assert error_of(refused.value)["param"] == "endpoint"
    with pytest.raises(openai.NotFoundError):
        check(client(local_gateway), "file-doesnotexist")
    other = generate_key(local_gateway, "check-other")
    with pytest.raises(openai.NotFoundError):  # another key's file is unknown to it
        check(client(local_gateway, key=other.key), file.id)
    with pytest.raises(openai.BadRequestError) as mismatch:  # the file is Anthropic's
        check(client(local_gateway, provider="openai"), file.id)
    assert error_of(mismatch.value)["code"] == "provider_mismatch"
