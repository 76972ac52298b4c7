"""The configured provider deployments and one warm client per deployment."""

from __future__ import annotations

from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, Any, cast

from gateway.errors import InvalidRequestError
from gateway.runtime import secret_store
from gateway.runtime.settings import get_settings

if TYPE_CHECKING:
    from gateway.providers.api import ProviderApi

# Deployment type -> "module:class" of its adapter, imported with the first client of that type
# (httpx, boto3's Bedrock client...): every authenticated function validates provider names, but
# the key functions never call a provider.
ADAPTERS: dict[str, str] = {
    "openai": "gateway.providers.openai.client:ProviderClient",
    "azure": "gateway.providers.openai.client:ProviderClient",
    "anthropic": "gateway.providers.anthropic.client:AnthropicClient",
    "bedrock": "gateway.providers.bedrock.client:BedrockClient",
    "gemini": "gateway.providers.gemini.client:GeminiClient",
    "vertex": "gateway.providers.vertex.client:VertexClient",
}

_clients: dict[str, ProviderApi] = {}


def provider_names() -> list[str]:
    return list(get_settings().providers)


def require_known(name: str, *, param: str = "custom_llm_provider") -> str:
    if name not in get_settings().providers:
        known = ", ".join(provider_names())
        raise InvalidRequestError(
            f"Unknown provider '{name}'. Configured providers: {known}.", param=param, code="unknown_provider"
        )
    return name


def client_for(name: str) -> ProviderApi:
    client = _clients.get(name)
    if client is None:
        client = new_client(name, timeout=get_settings().upstream_timeout_seconds)
        _clients[name] = client
    return client


def new_client(name: str, *, timeout: float) -> ProviderApi:
    """A client of its own (the caller closes it), e.g. for a transfer's longer timeout."""
    deployment = get_settings().providers[require_known(name)]
    module, _, attribute = ADAPTERS[deployment.type].partition(":")
    adapter: Any = getattr(import_module(module), attribute)
    return cast("ProviderApi", adapter(deployment, partial(_key, name), timeout))


def _key(name: str, refresh: bool) -> str | None:
    return secret_store.provider_key(name, refresh=refresh)


def reset_clients() -> None:
    """For tests and the local server, after the settings change."""
    for client in _clients.values():
        client.close()
    _clients.clear()
