"""Small helpers for the integration suites: SDK clients and batch input files."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import openai
from openai.types import Batch

from devserver.server import LocalGateway

TERMINAL_BATCH_STATUSES = {"completed", "failed", "expired", "cancelled"}


def client(gateway: LocalGateway, *, provider: str | None = None, key: str | None = None) -> openai.OpenAI:
    """The official SDK pointed at the gateway: /v1, or /{provider}/v1 with a provider."""
    base = gateway.api_base if provider is None else f"{gateway.url}/{provider}/v1"
    return openai.OpenAI(base_url=base, api_key=key or gateway.master_key, max_retries=0, timeout=30)


def batch_jsonl(count: int, *, model: str = "gpt-4o-mini", endpoint: str = "/v1/chat/completions") -> bytes:
    lines = [
        {
            "custom_id": f"request-{i}",
            "method": "POST",
            "url": endpoint,
            "body": {"model": model, "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
        for i in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload_batch_file(
    sdk: openai.OpenAI, count: int = 2, *, name: str = "input.jsonl", **kwargs: Any
) -> openai.types.FileObject:
    return sdk.files.create(
        file=(name, io.BytesIO(batch_jsonl(count)), "application/jsonl"), purpose="batch", **kwargs
    )


def wait_for_batch(sdk: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = sdk.batches.retrieve(batch_id)
        if batch.status in TERMINAL_BATCH_STATUSES or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI envelope's inner object, asserting the envelope's shape on the way."""
    body = exc.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"], body
    return dict(body["error"])
