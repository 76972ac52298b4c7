"""Helpers for the tenant suites: virtual keys through /key/*, SDK clients per key, batches.

Every caller creates its own objects; nothing here is shared between test modules.
"""

from __future__ import annotations

import io
import secrets
import string
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class VirtualKey:
    key: str
    key_id: str
    alias: str


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def unknown_id(prefix: str) -> str:
    """An id shaped like the gateway's own (gateway.formats.ids), that nobody created."""
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


def upload_input(client: openai.OpenAI, name: str = "input.jsonl", **kwargs: Any) -> openai.types.FileObject:
    return client.files.create(
        file=(name, io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch", **kwargs
    )
