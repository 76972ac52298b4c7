"""Settings read from the function's environment, once per cold start."""

from __future__ import annotations

import json
import os
from functools import lru_cache

from pydantic import BaseModel, Field

from gateway.providers.config import ProviderDeployment, parse_deployments
from gateway.runtime import resources


class Settings(BaseModel):
    table_name: str
    bucket_name: str
    master_key_secret_id: str
    provider_keys_secret_id: str
    key_pepper_secret_id: str
    providers: dict[str, ProviderDeployment]
    default_provider: str = "openai"
    secrets_ttl_seconds: int = Field(default=300, ge=0)
    upstream_timeout_seconds: float = Field(default=25.0, gt=0)
    # OpenAI takes up to 512 MB in one POST /files and 64 MB per Uploads API part.
    transfer_single_request_max_bytes: int = Field(default=512 * 1000 * 1000, gt=0)
    transfer_part_bytes: int = Field(default=64 * 1000 * 1000, gt=0)
    # A large upload may take the provider a while: longer than an API request may wait.
    transfer_timeout_seconds: float = Field(default=300.0, gt=0)
    # A budget's hold counts this many output tokens for a request that sets no max_tokens.
    default_output_tokens_per_request: int = Field(default=4096, gt=0)
    # Webhooks: plain http to loopback is for the local server only.
    webhooks_allow_loopback: bool = False
    # With it, one more address treated as loopback (make localstack-test on Docker's bridge).
    webhooks_test_host: str | None = None
    # Seconds between delivery attempts; the last gap repeats until webhook_retry_hours pass.
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000)
    webhook_retry_hours: float = Field(default=72.0, gt=0)
    # A transfer not done by then is over: Lambda's async retries (ASYNC_FUNCTIONS'
    # max_event_age_seconds, then each attempt's 15 min) end well before it.
    transfer_deadline_seconds: int = Field(default=3 * 3600, gt=0)
    # batches.list refreshes unfinished batches upstream until then, then serves the stored
    # snapshots: well inside API Gateway's 29 s.
    list_refresh_deadline_seconds: float = Field(default=20.0, gt=0)
    # The most input bytes a batches.create translates and sends to a provider itself (Anthropic,
    # Gemini, Vertex, Bedrock), for every such type; None: each type's measured figure
    # (service.plan.sync_send). A larger input is run by the watcher as a plan.
    sync_create_max_bytes: int | None = Field(default=None, ge=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get(resources.ENV_TABLE_NAME, resources.DEFAULT_TABLE_NAME),
        bucket_name=env.get(resources.ENV_BUCKET_NAME, resources.DEFAULT_BUCKET_NAME),
        master_key_secret_id=env.get(resources.ENV_MASTER_KEY_SECRET, resources.DEFAULT_MASTER_KEY_SECRET),
        provider_keys_secret_id=env.get(
            resources.ENV_PROVIDER_KEYS_SECRET, resources.DEFAULT_PROVIDER_KEYS_SECRET
        ),
        key_pepper_secret_id=env.get(resources.ENV_KEY_PEPPER_SECRET, resources.DEFAULT_KEY_PEPPER_SECRET),
        providers=parse_deployments(json.loads(env.get(resources.ENV_PROVIDERS) or "{}")),
        default_provider=env.get(resources.ENV_DEFAULT_PROVIDER, "openai"),
        secrets_ttl_seconds=int(env.get(resources.ENV_SECRETS_TTL, "300")),
        upstream_timeout_seconds=float(env.get(resources.ENV_UPSTREAM_TIMEOUT, "25")),
        webhooks_allow_loopback=env.get(resources.ENV_WEBHOOKS_ALLOW_LOOPBACK, "").lower() == "true",
        webhooks_test_host=env.get(resources.ENV_WEBHOOKS_TEST_HOST) or None,
        **(
            {"webhook_retry_schedule": tuple(float(s) for s in schedule.split(","))}
            if (schedule := env.get(resources.ENV_WEBHOOK_RETRY_SCHEDULE))
            else {}
        ),
        **{
            field: env[name]
            for field, name in (
                ("transfer_single_request_max_bytes", resources.ENV_TRANSFER_SINGLE_REQUEST_MAX_BYTES),
                ("transfer_part_bytes", resources.ENV_TRANSFER_PART_BYTES),
                ("transfer_timeout_seconds", resources.ENV_TRANSFER_TIMEOUT),
                ("default_output_tokens_per_request", resources.ENV_DEFAULT_OUTPUT_TOKENS),
                ("sync_create_max_bytes", resources.ENV_SYNC_CREATE_MAX_BYTES),
            )
            if env.get(name)
        },
    )


def reset_settings() -> None:
    """For tests and the local server, after changing the environment."""
    get_settings.cache_clear()
