"""The end-to-end suite: both providers' flows through the official `openai` SDK.

Runs unchanged against the local server (make test) and any deployed URL (make e2e).
Every object it creates is its own, and the files it uploads are deleted at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import Target

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def sdk(target: Target, provider: str | None = None) -> openai.OpenAI:
    base = f"{target.url}/v1" if provider is None else f"{target.url}/{provider}/v1"
    return openai.OpenAI(base_url=base, api_key=target.api_key, max_retries=2, timeout=60)


def batch_input(model: str, count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"e2e-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model,
                    "messages": [{"role": "user", "content": "Reply with OK."}],
                    "max_tokens": 5,
                },
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


@pytest.fixture
def uploaded(target: Target) -> Iterator[list[str]]:
    """File ids to delete after the test, whatever its outcome."""
    ids: list[str] = []
    yield ids
    client = sdk(target)
    for file_id in ids:
        with contextlib.suppress(openai.NotFoundError):
            client.files.delete(file_id)


def test_health(target: Target) -> None:
    response = httpx.get(f"{target.url}/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_wrong_key_is_rejected(target: Target) -> None:
    client = openai.OpenAI(base_url=f"{target.url}/v1", api_key="sk-e2e-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.files.list()


def test_unknown_ids_are_404(target: Target) -> None:
    client = sdk(target)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-e2e-unknown")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_e2e_unknown")


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_file_and_batch_flow(target: Target, provider: str, uploaded: list[str]) -> None:
    if provider not in target.providers:
        pytest.skip(f"{provider} is not in E2E_PROVIDERS")
    client = sdk(target, provider)
    content = batch_input(target.model, 2)
    file = client.files.create(file=("e2e.jsonl", io.BytesIO(content), "application/jsonl"), purpose="batch")
    uploaded.append(file.id)
    assert file.bytes == len(content)

    plain = sdk(target)  # later calls need no provider: the gateway remembers it
    assert plain.files.retrieve(file.id).filename == "e2e.jsonl"
    assert plain.files.content(file.id).read() == content
    assert file.id in {f.id for f in plain.files.list(purpose="batch", limit=100)}

    tag = uuid.uuid4().hex
    batch = plain.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"e2e": tag},
        extra_headers={"custom-llm-provider": provider},
    )
    assert batch.input_file_id == file.id
    assert batch.metadata == {"e2e": tag}
    assert batch.id in {b.id for b in plain.batches.list(limit=100)}

    if target.wait_seconds <= 0:
        plain.batches.cancel(batch.id)
        return
    deadline = time.monotonic() + target.wait_seconds
    while batch.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1 if not target.local else 0.2)
        batch = plain.batches.retrieve(batch.id)
    if batch.status not in TERMINAL:
        plain.batches.cancel(batch.id)
        # A batch that never finishes is a failure to see, not a skip to scroll past; a slow
        # provider gets a larger E2E_WAIT_SECONDS, or 0 to only create and cancel.
        pytest.fail(f"batch {batch.id} still {batch.status} after {target.wait_seconds}s (cancelled)")
    assert batch.status == "completed", batch
    assert batch.output_file_id is not None
    uploaded.append(batch.output_file_id)
    lines = [json.loads(line) for line in plain.files.content(batch.output_file_id).read().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["e2e-0", "e2e-1"]


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_cancel_flow(target: Target, provider: str, uploaded: list[str]) -> None:
    if provider not in target.providers:
        pytest.skip(f"{provider} is not in E2E_PROVIDERS")
    client = sdk(target, provider)
    file = client.files.create(file=("cancel.jsonl", batch_input(target.model, 3)), purpose="batch")
    uploaded.append(file.id)
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelled = sdk(target).batches.cancel(batch.id)
    # The API reference: a cancelled batch is "cancelling" (up to 10 minutes) before "cancelled";
    # the gateway passes the provider's answer on, and the simulator behaves the same.
    assert cancelled.status == "cancelling"


def test_azure_openai_client_on_azures_wire_format(target: Target, uploaded: list[str]) -> None:
    """AzureOpenAI unchanged: /azure/openai/files?api-version=…, answered as Azure does (201)."""
    if "azure" not in target.providers:
        pytest.skip("azure is not in E2E_PROVIDERS")
    azure = openai.AzureOpenAI(
        azure_endpoint=f"{target.url}/azure", api_key=target.api_key, api_version="2024-10-21", max_retries=2
    )
    created = azure.files.with_raw_response.create(
        file=("e2e-azure.jsonl", io.BytesIO(batch_input(target.model, 1)), "application/jsonl"),
        purpose="batch",
    )
    assert created.status_code == 201
    file = created.parse()
    uploaded.append(file.id)
    assert azure.files.retrieve(file.id).id == file.id
    batch = azure.batches.with_raw_response.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status_code == 201
    batch_id = batch.parse().id
    assert azure.batches.retrieve(batch_id).id in {b.id for b in azure.batches.list(limit=100)}
    try:
        # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
        assert azure.batches.cancel(batch_id).status in ("cancelling", "cancelled")
    except openai.ConflictError as finished:  # a fast provider may have finished it already
        assert finished.response.headers["x-should-retry"] == "false"
