"""Secrets Manager reads through Powertools Parameters, with a TTL cache.

Values are never logged. `refresh=True` bypasses the cache (after an upstream 401).
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.utilities import parameters

from gateway.settings import get_settings


def master_key(refresh: bool = False) -> str:
    settings = get_settings()
    value = parameters.get_secret(
        settings.master_key_secret_id, max_age=settings.secrets_ttl_seconds, force_fetch=refresh
    )
    return cast(str, value).strip()


def provider_key(deployment: str, refresh: bool = False) -> str | None:
    settings = get_settings()
    keys = cast(
        dict[str, Any],
        parameters.get_secret(
            settings.provider_keys_secret_id,
            transform="json",
            max_age=settings.secrets_ttl_seconds,
            force_fetch=refresh,
        ),
    )
    value = (keys or {}).get(deployment)
    return str(value) if value else None


def key_pepper() -> str:
    settings = get_settings()
    value = parameters.get_secret(settings.key_pepper_secret_id, max_age=settings.secrets_ttl_seconds)
    return cast(str, value).strip()
