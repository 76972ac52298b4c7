"""LiteLLM's `custom_llm_provider="azure"` flow against the local server, as the seed wrote it:
acreate_file, acreate_batch, aretrieve_batch, afile_content, list_batches. LiteLLM is a test-only
dependency (requirements.txt); its import takes seconds, so this file holds few tests."""

from __future__ import annotations

import asyncio
import io
import os
import time
from typing import Any

import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import TERMINAL_BATCH_STATUSES, batch_jsonl, client

# LiteLLM fetches its model price map from GitHub at import unless told to use its bundled copy:
# tests talk to 127.0.0.1 only.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # a pinned test dependency: missing, the suite fails, never skips

pytestmark = [
    # LiteLLM's own noise, not the gateway's: its pydantic models and a coroutine it drops
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:coroutine 'AzureOpenAIFilesAPI.afile_content' was never awaited"),
]


def settings(gateway: LocalGateway, api_version: str) -> dict[str, Any]:
    return {
        "custom_llm_provider": "azure",
        "api_base": f"{gateway.url}/azure",
        "api_key": gateway.master_key,
        "api_version": api_version,
    }


async def seed_flow(gateway: LocalGateway, api_version: str) -> tuple[Any, Any, bytes, Any]:
    azure = settings(gateway, api_version)
    created = await litellm.acreate_file(
        file=("seed.jsonl", io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch", **azure
    )
    batch = await litellm.acreate_batch(
        input_file_id=created.id, endpoint="/v1/chat/completions", completion_window="24h", **azure
    )
    deadline = time.monotonic() + 30
    while batch.status not in TERMINAL_BATCH_STATUSES and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        batch = await litellm.aretrieve_batch(batch_id=batch.id, **azure)
    content = await litellm.afile_content(file_id=batch.output_file_id, **azure)
    listed = litellm.list_batches(**azure)
    return created, batch, content.content, listed


@pytest.mark.parametrize("api_version", ["2024-10-21", "v1"])
def test_litellm_azure_provider_runs_the_seed_flow(local_gateway: LocalGateway, api_version: str) -> None:
    created, batch, content, listed = asyncio.run(seed_flow(local_gateway, api_version))
    assert created.id.startswith("file-")
    assert batch.status == "completed", batch
    assert batch.id.startswith("batch_") and batch.output_file_id.startswith("file-")
    assert len(content.splitlines()) == 2
    assert batch.id in {b.id for b in listed.data}
    # the objects belong to the Azure deployment: the OpenAI one lists none of them
    assert batch.id not in {b.id for b in client(local_gateway, provider="openai").batches.list()}
    assert batch.id in {b.id for b in client(local_gateway, provider="azure").batches.list()}
