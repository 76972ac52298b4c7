"""Secrets Manager reads through Powertools Parameters, with a TTL cache.

Values are never logged. `refresh=True` bypasses the cache (after an upstream 401).
"""

from __future__ import annotations

from typing import Any, Literal, cast

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from gateway.runtime.settings import get_settings


def secrets_provider() -> parameters.SecretsProvider:
    """Powertools' default Secrets Manager provider (the one `parameters.get_secret` uses, with
    its TTL cache), installed with a client of boto3's default session, which the DynamoDB,
    S3 and Lambda clients share. Left to itself, Powertools would open a session of its own:
    a second botocore session loads the endpoint data and service lists again, tens of ms
    of every cold start. `parameters.clear_caches()` drops it; the next read installs a new one."""
    provider = DEFAULT_PROVIDERS.get("secrets")
    if provider is None:
        provider = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
        DEFAULT_PROVIDERS["secrets"] = provider
    return cast(parameters.SecretsProvider, provider)


def master_key(refresh: bool = False) -> str:
    return cast(str, _read(get_settings().master_key_secret_id, refresh=refresh)).strip()


def provider_key(deployment: str, refresh: bool = False) -> str | None:
    secret_id = get_settings().provider_keys_secret_id
    keys = cast(dict[str, Any], _read(secret_id, refresh=refresh, transform="json"))
    value = (keys or {}).get(deployment)
    return str(value) if value else None


def key_pepper() -> str:
    return cast(str, _read(get_settings().key_pepper_secret_id)).strip()


def _read(secret_id: str, *, refresh: bool = False, transform: Literal["json"] | None = None) -> Any:
    """One secret through Powertools' TTL cache; `refresh` skips the cache."""
    secrets_provider()
    return parameters.get_secret(
        secret_id, transform=transform, max_age=get_settings().secrets_ttl_seconds, force_fetch=refresh
    )
