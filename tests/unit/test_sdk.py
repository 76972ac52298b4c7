"""The Python API (gateway.sdk) against the provider simulator, OpenAI and Azure forms."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gateway import sdk
from gateway.errors import GatewayError

from devserver.simulator import Simulator, SimulatorConfig

LINES = b"".join(
    json.dumps(
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
    ).encode()
    + b"\n"
    for i in range(2)
)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(batch_phase_seconds=0.1, azure_file_processing_seconds=0)) as simulator:
        yield simulator


def settings(sim: Simulator, provider: str) -> dict[str, Any]:
    if provider == "azure":
        return {"custom_llm_provider": "azure", "api_key": "sim-azure-key", "api_base": sim.azure_api_base}
    return {"custom_llm_provider": "openai", "api_key": "sim-openai-key", "api_base": sim.openai_api_base}


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_files_and_batches_round_trip(sim: Simulator, provider: str) -> None:
    s = settings(sim, provider)
    created = sdk.create_file(file=("in.jsonl", LINES), purpose="batch", **s)
    assert (created.filename, created.bytes, created.purpose) == ("in.jsonl", len(LINES), "batch")
    assert sdk.retrieve_file(created.id, **s).id == created.id
    assert created.id in {f.id for f in sdk.list_files(purpose="batch", **s).data}
    assert sdk.file_content(created.id, **s) == LINES

    batch = sdk.create_batch(
        input_file_id=created.id, endpoint="/v1/chat/completions", metadata={"t": "1"}, **s
    )
    assert batch.input_file_id == created.id and batch.metadata == {"t": "1"}
    assert batch.id in {b.id for b in sdk.list_batches(limit=100, **s).data}
    deadline = time.monotonic() + 10
    while batch.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.retrieve_batch(batch.id, **s)
    assert batch.status == "completed" and batch.output_file_id
    output = sdk.file_content(batch.output_file_id, **s).decode().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in output) == ["r0", "r1"]

    assert sdk.delete_file(created.id, **s).deleted is True
    with pytest.raises(GatewayError) as missing:
        sdk.retrieve_file(created.id, **s)
    assert missing.value.status_code == 404


def test_cancel_and_async_twins(sim: Simulator) -> None:
    s = settings(sim, "azure")

    async def run() -> tuple[Any, Any, bytes]:
        created = await sdk.acreate_file(file=("a.jsonl", LINES), purpose="batch", **s)
        batch = await sdk.acreate_batch(input_file_id=created.id, endpoint="/v1/chat/completions", **s)
        again = await sdk.aretrieve_batch(batch.id, **s)
        return batch, again, await sdk.afile_content(created.id, **s)

    batch, again, content = asyncio.run(run())
    assert again.id == batch.id and content == LINES
    assert sdk.cancel_batch(batch.id, **s).status == "cancelling"  # "cancelled" after a phase


def test_file_from_a_path(sim: Simulator, tmp_path: Any) -> None:
    path = tmp_path / "from-disk.jsonl"
    path.write_bytes(LINES)
    created = sdk.create_file(file=path, purpose="batch", **settings(sim, "openai"))
    assert created.filename == "from-disk.jsonl" and created.bytes == len(LINES)


def test_unknown_provider_and_missing_base_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="custom_llm_provider"):
        sdk.retrieve_file("file-x", custom_llm_provider="bedrock")
    monkeypatch.delenv("AZURE_API_BASE", raising=False)
    with pytest.raises(ValueError, match="AZURE_API_BASE"):
        sdk.retrieve_file("file-x", custom_llm_provider="azure", api_key="k")


def test_a_rejected_key_is_named_without_its_value(sim: Simulator) -> None:
    with pytest.raises(GatewayError) as failed:
        sdk.list_files(custom_llm_provider="openai", api_key="sk-wrong", api_base=sim.openai_api_base)
    assert failed.value.code == "upstream_authentication_failed"
    assert "sk-wrong" not in failed.value.message
