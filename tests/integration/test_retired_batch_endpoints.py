"""An endpoint OpenAI retired (openai-python 3.63: "The Videos API shut down on September 24,
2026. Batch creation no longer accepts this endpoint.") is refused at create on every provider,
with that reason, before any provider is called."""

from __future__ import annotations

import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of

MODELS = {
    "openai": "gpt-4o-mini",
    "azure": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "bedrock": "claude-3-5-haiku",
    "gemini": "gemini-2.5-flash",
}


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("endpoint", ["/v1/videos", "/videos"])
def test_a_videos_batch_is_refused_saying_the_api_shut_down(
    local_gateway: LocalGateway, provider: str, endpoint: str
) -> None:
    sdk = client(local_gateway, provider=provider)
    uploaded = sdk.files.create(file=("in.jsonl", batch_jsonl(1, model=MODELS[provider])), purpose="batch")
    before = sdk.batches.list(limit=100).data
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    error = error_of(refused.value)
    assert error["param"] == "endpoint"
    assert "Videos API shut down on September 24, 2026" in error["message"]
    assert sdk.batches.list(limit=100).data == before  # nothing created
