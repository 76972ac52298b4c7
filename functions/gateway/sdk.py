"""The provider layer as a Python API, in the style of LiteLLM's SDK.

    from gateway.sdk import create_file, create_batch, retrieve_batch
    f = create_file(file=open("in.jsonl", "rb"), purpose="batch", custom_llm_provider="azure")

Calls go straight to the provider (no gateway, no id mapping), so ids are the
provider's own. Settings come from keyword arguments, else the environment variables
LiteLLM's users know: OPENAI_API_KEY, OPENAI_API_BASE, AZURE_API_KEY, AZURE_API_BASE,
AZURE_API_VERSION.
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from gateway.formats.ids import new_id
from gateway.models.batches import Batch
from gateway.models.common import ListPage
from gateway.models.files import FileDeleted, FileObject
from gateway.providers.config import DEFAULT_AZURE_API_VERSION, DEFAULT_OPENAI_API_BASE, ProviderDeployment
from gateway.providers.openai.client import ProviderClient

FileInput = str | Path | bytes | IO[bytes] | tuple[str, bytes | IO[bytes]]

_ENV = {
    "openai": ("OPENAI_API_KEY", "OPENAI_API_BASE", None),
    "azure": ("AZURE_API_KEY", "AZURE_API_BASE", "AZURE_API_VERSION"),
}


def _client(
    custom_llm_provider: str,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float = 600.0,
) -> ProviderClient:
    if custom_llm_provider not in _ENV:
        raise ValueError(f"custom_llm_provider must be one of {sorted(_ENV)}, not '{custom_llm_provider}'")
    key_env, base_env, version_env = _ENV[custom_llm_provider]
    key = api_key or os.environ.get(key_env)
    base = (
        api_base
        or os.environ.get(base_env)
        or (DEFAULT_OPENAI_API_BASE if custom_llm_provider == "openai" else None)
    )
    if not base:
        raise ValueError(f"set {base_env} or pass api_base for provider '{custom_llm_provider}'")
    version = api_version or (os.environ.get(version_env) if version_env else None)
    if custom_llm_provider == "azure":
        version = version or DEFAULT_AZURE_API_VERSION
    return _cached_client(custom_llm_provider, custom_llm_provider, base, version, key, timeout)


@lru_cache(maxsize=16)
def _cached_client(
    name: str, kind: str, base: str, version: str | None, key: str | None, timeout: float
) -> ProviderClient:
    deployment = ProviderDeployment(name=name, type=kind, api_base=base, api_version=version)  # type: ignore[arg-type]
    return ProviderClient(deployment, lambda _refresh: key, timeout)


def _file_parts(file: FileInput) -> tuple[str, bytes | IO[bytes]]:
    if isinstance(file, str | Path):
        path = Path(file)
        return path.name, path.read_bytes()
    if isinstance(file, tuple):
        return file
    if isinstance(file, bytes):
        return "upload.jsonl", file
    return Path(getattr(file, "name", "upload.jsonl")).name, file


# Files ------------------------------------------------------------------------------------
def create_file(
    file: FileInput,
    purpose: str,
    custom_llm_provider: str = "openai",
    expires_after: dict[str, Any] | None = None,
    **settings: Any,
) -> FileObject:
    filename, content = _file_parts(file)
    upstream = _client(custom_llm_provider, **settings).create_file(
        filename=filename, content=content, purpose=purpose, expires_after=expires_after
    )
    return FileObject.model_validate(upstream)


def retrieve_file(file_id: str, custom_llm_provider: str = "openai", **settings: Any) -> FileObject:
    return FileObject.model_validate(_client(custom_llm_provider, **settings).retrieve_file(file_id))


def list_files(
    custom_llm_provider: str = "openai",
    purpose: str | None = None,
    limit: int | None = None,
    after: str | None = None,
    order: str | None = None,
    **settings: Any,
) -> ListPage[FileObject]:
    page = _client(custom_llm_provider, **settings).list_files(
        purpose=purpose, limit=limit, after=after, order=order
    )
    return ListPage[FileObject].model_validate(page)


def delete_file(file_id: str, custom_llm_provider: str = "openai", **settings: Any) -> FileDeleted:
    return FileDeleted.model_validate(_client(custom_llm_provider, **settings).delete_file(file_id))


def file_content(file_id: str, custom_llm_provider: str = "openai", **settings: Any) -> bytes:
    return _client(custom_llm_provider, **settings).file_content(file_id)


# Batches ----------------------------------------------------------------------------------
def create_batch(
    input_file_id: str,
    endpoint: str,
    completion_window: str = "24h",
    metadata: dict[str, str] | None = None,
    custom_llm_provider: str = "openai",
    **settings: Any,
) -> Batch:
    body: dict[str, Any] = {
        "input_file_id": input_file_id,
        "endpoint": endpoint,
        "completion_window": completion_window,
    }
    if metadata is not None:
        body["metadata"] = metadata
    # no gateway record here: OpenAI and Azure take no gateway id, a fresh one names nothing else
    created = _client(custom_llm_provider, **settings).create_batch(body, gateway_id=new_id("batch"))
    return Batch.model_validate(created)


def retrieve_batch(batch_id: str, custom_llm_provider: str = "openai", **settings: Any) -> Batch:
    return Batch.model_validate(_client(custom_llm_provider, **settings).retrieve_batch(batch_id))


def list_batches(
    custom_llm_provider: str = "openai", after: str | None = None, limit: int | None = None, **settings: Any
) -> ListPage[Batch]:
    page = _client(custom_llm_provider, **settings).list_batches(after=after, limit=limit)
    return ListPage[Batch].model_validate(page)


def cancel_batch(batch_id: str, custom_llm_provider: str = "openai", **settings: Any) -> Batch:
    return Batch.model_validate(_client(custom_llm_provider, **settings).cancel_batch(batch_id))


# Async twins: the same calls on a worker thread -----------------------------------------
async def acreate_file(*args: Any, **kwargs: Any) -> FileObject:
    return await asyncio.to_thread(create_file, *args, **kwargs)


async def afile_content(*args: Any, **kwargs: Any) -> bytes:
    return await asyncio.to_thread(file_content, *args, **kwargs)


async def acreate_batch(*args: Any, **kwargs: Any) -> Batch:
    return await asyncio.to_thread(create_batch, *args, **kwargs)


async def aretrieve_batch(*args: Any, **kwargs: Any) -> Batch:
    return await asyncio.to_thread(retrieve_batch, *args, **kwargs)
