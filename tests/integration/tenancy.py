"""Helpers for the tenant suites: virtual keys through /key/*, SDK clients per key, batches.

Every caller creates its own objects; nothing here is shared between test modules.
"""

from __future__ import annotations

import importlib.util
import io
import json
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from openai.types import Batch

from devserver.server import LocalGateway

TERMINAL_BATCH_STATUSES = {"completed", "failed", "expired", "cancelled"}
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class VirtualKey:
    key: str
    key_id: str
    alias: str


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def unknown_id(prefix: str) -> str:
    """An id shaped like the gateway's own (gateway.ids), that nobody created."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def key_api(gateway: LocalGateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gateway.master_key}"}
    return httpx.request(method, gateway.url + path, headers=headers, timeout=30, **kwargs)


def generate_key(gateway: LocalGateway, alias_prefix: str = "tenant", **settings: Any) -> VirtualKey:
    alias = unique(alias_prefix)
    response = key_api(gateway, "POST", "/key/generate", json={"key_alias": alias, **settings})
    assert response.status_code == 200, response.text
    body = response.json()
    return VirtualKey(key=body["key"], key_id=body["key_id"], alias=alias)


def sdk(gateway: LocalGateway, key: str, *, provider: str | None = None) -> openai.OpenAI:
    base = gateway.api_base if provider is None else f"{gateway.url}/{provider}/v1"
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=30)


def batch_input(count: int = 2) -> bytes:
    lines = [
        {
            "custom_id": f"request-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
        for i in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload_input(client: openai.OpenAI, name: str = "input.jsonl", **kwargs: Any) -> openai.types.FileObject:
    return client.files.create(
        file=(name, io.BytesIO(batch_input()), "application/jsonl"), purpose="batch", **kwargs
    )


def wait_for_batch(client: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL_BATCH_STATUSES or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI envelope's inner object, asserting the envelope's shape on the way."""
    body = exc.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


def handlers_present(*names: str) -> bool:
    """Whether every named handler module exists (routes still being built answer 501)."""
    return all(importlib.util.find_spec(f"handlers.{name}") is not None for name in names)
