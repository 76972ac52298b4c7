"""Batches through the local server with the official SDK: lifecycle, routing memory, lists."""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest
from gateway.models.batches import BATCH_ENDPOINTS, RETIRED_BATCH_ENDPOINTS

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of, upload_batch_file, wait_for_batch


def simulator_batches(gateway: LocalGateway, tag: str) -> list[object]:
    """The simulator's own records of the batches created with metadata {"tag": tag}."""
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return [b for b in state.batches.values() if (b.metadata or {}).get("tag") == tag]


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_batch_runs_to_completion_and_its_output_is_a_gateway_file(
    local_gateway: LocalGateway, provider: str
) -> None:
    sdk = client(local_gateway, provider=provider)
    input_file = upload_batch_file(sdk, 3)
    tag = uuid.uuid4().hex
    created = sdk.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tag": tag},
    )
    assert created.id.startswith("batch_")
    assert created.input_file_id == input_file.id
    assert created.metadata == {"tag": tag}
    openai.types.Batch.model_validate(created.to_dict())  # strict, as LiteLLM parses it

    # Routing memory: the plain /v1 client reaches the provider that owns the batch.
    plain = client(local_gateway)
    done = wait_for_batch(plain, created.id)
    assert done.status == "completed", done
    assert done.request_counts is not None and done.request_counts.completed == 3
    [upstream] = simulator_batches(local_gateway, tag)
    assert upstream.provider == provider  # type: ignore[attr-defined]
    assert upstream.id != created.id  # type: ignore[attr-defined]

    # The output file was created by the provider and is a gateway file, owned like the batch.
    assert done.output_file_id is not None and done.output_file_id.startswith("file-")
    output = plain.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output"
    openai.types.Batch.model_validate(done.to_dict())  # strict: raises on an off-spec value
    openai.types.FileObject.model_validate(output.to_dict())
    lines = [json.loads(line) for line in plain.files.content(done.output_file_id).text.splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["request-0", "request-1", "request-2"]
    assert all(line["response"]["status_code"] == 200 for line in lines)
    listed = {f.id for f in plain.files.list(purpose="batch_output")}
    assert done.output_file_id in listed


def test_invalid_lines_go_to_an_error_file(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    # one model per file (the gateway checks that at upload): the provider fails a request
    # without messages, as OpenAI does
    bad = {
        "custom_id": "request-bad",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini"},
    }
    content = batch_jsonl(1) + json.dumps(bad).encode() + b"\n"
    input_file = sdk.files.create(file=("mixed.jsonl", content), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for_batch(sdk, batch.id)
    assert done.status == "completed"
    assert done.error_file_id is not None
    errors = [json.loads(line) for line in sdk.files.content(done.error_file_id).text.splitlines()]
    assert [e["custom_id"] for e in errors] == ["request-bad"]


def test_cancel_then_cancelling_a_finished_batch_is_a_409(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway, provider="azure")
    batch = sdk.batches.create(
        input_file_id=upload_batch_file(sdk).id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelled = sdk.batches.cancel(batch.id)
    assert cancelled.id == batch.id
    assert cancelled.status == "cancelling"  # the provider's answer: "cancelled" comes later
    final = wait_for_batch(sdk, batch.id)
    assert final.status == "cancelled"
    assert final.cancelled_at is not None

    with pytest.raises(openai.ConflictError) as caught:
        sdk.batches.cancel(batch.id)
    assert caught.value.status_code == 409
    assert caught.value.response.headers["x-should-retry"] == "false"  # final: the SDK must not retry
    assert "cancel" in error_of(caught.value)["message"].lower()


def test_batch_list_is_newest_first_with_current_statuses(local_gateway: LocalGateway) -> None:
    key = _new_key(local_gateway)  # an empty tenant, so the list holds exactly this test's batches
    sdk = client(local_gateway, key=key)
    file_id = upload_batch_file(sdk).id
    ids = [
        sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(3)
    ]
    for batch_id in ids:
        assert wait_for_batch(sdk, batch_id).status == "completed"

    listed = list(sdk.batches.list(limit=2))  # auto-pagination over two pages
    assert [b.id for b in listed] == ids[::-1]
    assert all(b.status == "completed" for b in listed)  # not the "validating" snapshot of creation

    first_page = sdk.batches.list(limit=2)
    assert first_page.has_more is True
    second_page = sdk.batches.list(limit=2, after=first_page.data[-1].id)
    assert [b.id for b in second_page.data] == ids[:1]
    assert second_page.has_more is False


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_a_list_alone_brings_unfinished_batches_up_to_date(
    local_gateway: LocalGateway, provider: str
) -> None:
    """Never retrieved one by one: the list itself refreshes them (one provider list call)."""
    sdk = client(local_gateway, provider=provider, key=_new_key(local_gateway))
    file_id = upload_batch_file(sdk).id
    ids = {
        sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(3)
    }
    deadline = time.monotonic() + 30
    while True:
        listed = sdk.batches.list(limit=10).data
        if all(b.status == "completed" for b in listed) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {b.id for b in listed} == ids
    assert all(b.status == "completed" for b in listed)
    for batch in listed:  # the provider's output files, registered on first sight by the list
        assert batch.output_file_id is not None and batch.output_file_id.startswith("file-")
        assert b"custom_id" in sdk.files.content(batch.output_file_id).content


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"endpoint": "/v1/images"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"input_file_id": "file-unknown"}, "input_file_id"),
    ],
)
def test_bad_batch_requests_name_the_param(
    local_gateway: LocalGateway, overrides: dict[str, object], param: str
) -> None:
    # A malformed value is 400; a well-formed id that names no file of the caller's is 404.
    status = 404 if param == "input_file_id" else 400
    sdk = client(local_gateway)
    body: dict[str, object] = {
        "input_file_id": upload_batch_file(sdk).id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **overrides,
    }
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.post("/batches", body=body, cast_to=object)
    assert caught.value.status_code == status
    assert error_of(caught.value)["param"] == param


def test_every_batch_endpoint_is_accepted(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    for endpoint in BATCH_ENDPOINTS:  # openai-python's own list (tests/unit/test_batch_endpoints.py)
        if endpoint in RETIRED_BATCH_ENDPOINTS:
            continue  # tests/integration/test_retired_batch_endpoints.py
        file_id = sdk.files.create(file=("e.jsonl", batch_jsonl(1, endpoint=endpoint)), purpose="batch").id
        batch = sdk.batches.create(
            input_file_id=file_id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
        assert batch.endpoint == endpoint


def _new_key(gateway: LocalGateway) -> str:
    import httpx

    response = httpx.post(
        f"{gateway.url}/key/generate",
        headers={"Authorization": f"Bearer {gateway.master_key}"},
        json={"key_alias": f"batches-{uuid.uuid4().hex[:8]}"},
    )
    response.raise_for_status()
    return str(response.json()["key"])


def test_a_batch_on_an_azure_file_through_the_openai_prefix_is_a_400_provider_mismatch(
    local_gateway: LocalGateway,
) -> None:
    azure_file = upload_batch_file(client(local_gateway, provider="azure"))
    with pytest.raises(openai.BadRequestError) as caught:
        client(local_gateway, provider="openai").batches.create(
            input_file_id=azure_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    error = error_of(caught.value)
    assert (error["code"], error["param"]) == ("provider_mismatch", "input_file_id")
    assert f"Input file {azure_file.id} belongs to provider 'azure', not 'openai'." in error["message"]
