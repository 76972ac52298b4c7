"""The configured provider deployments and one warm client per deployment."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from gateway import secret_store
from gateway.errors import InvalidRequestError
from gateway.settings import get_settings

if TYPE_CHECKING:
    from gateway.providers.client import ProviderClient

_clients: dict[str, ProviderClient] = {}


def provider_names() -> list[str]:
    return list(get_settings().providers)


def require_known(name: str, *, param: str = "custom_llm_provider") -> str:
    if name not in get_settings().providers:
        known = ", ".join(provider_names())
        raise InvalidRequestError(
            f"Unknown provider '{name}'. Configured providers: {known}.", param=param, code="unknown_provider"
        )
    return name


def client_for(name: str) -> ProviderClient:
    client = _clients.get(name)
    if client is None:
        # httpx with the first client, not with this module: every authenticated function
        # validates provider names, but the key functions never call a provider.
        from gateway.providers.client import ProviderClient

        settings = get_settings()
        deployment = settings.providers[require_known(name)]
        key_source = partial(_key, name)
        client = ProviderClient(deployment, key_source, settings.upstream_timeout_seconds)
        _clients[name] = client
    return client


def _key(name: str, refresh: bool) -> str | None:
    return secret_store.provider_key(name, refresh=refresh)


def reset_clients() -> None:
    """For tests and the local server, after the settings change."""
    for client in _clients.values():
        client.close()
    _clients.clear()
