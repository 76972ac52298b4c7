"""Key management wire objects, shaped like LiteLLM's /key/* for the fields they share."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from gateway.models.common import GatewayModel
from gateway.models.retry import RetryOptions

# A number and a unit, each unit's digits capped so that every match is under 100 years
# (what an ISO date can hold comfortably): 999999999s, 9999999m, 99999h, 9999d, 999w, 999mo.
DURATION_PATTERN = (
    r"^([1-9][0-9]{0,8}s|[1-9][0-9]{0,6}m|[1-9][0-9]{0,4}h"
    r"|[1-9][0-9]{0,3}d|[1-9][0-9]{0,2}w|[1-9][0-9]{0,2}mo)$"
)
# DynamoDB nests maps at most 32 levels and keeps items under 400 KB; key records stay small.
MAX_METADATA_DEPTH = 8
MAX_METADATA_BYTES = 16 * 1024


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"metadata may nest at most {MAX_METADATA_DEPTH} levels deep")
    if len(json.dumps(value).encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is too large: at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


def _duration(value: str) -> str:
    if not re.match(DURATION_PATTERN, value):
        raise ValueError(
            f"Invalid duration '{value[:40]}'. Use a number and a unit: 30s, 10m, 12h, 30d, 2w or 1mo "
            "(under 100 years; omit it for a key that never expires)"
        )
    return value


Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(json_schema_extra={"pattern": DURATION_PATTERN}, description="30s, 10m, 12h, 30d, 2w or 1mo"),
]
ProviderName = Annotated[str, Field(min_length=1, max_length=64)]
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_metadata)]


# The largest budget a key may hold, in USD: far above any real budget, and small enough that
# every amount the budget item keeps (to the micro-dollar) stays a plain DynamoDB number.
MAX_BUDGET_USD = 1_000_000_000


class BudgetFields(GatewayModel):
    """LiteLLM's key budget: at most max_budget USD, spent again from zero every budget_duration.
    Kept to the micro-dollar (a finer fraction is dropped)."""

    max_budget: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    budget_duration: Duration | None = None  # None: the budget never resets


class GenerateKeyRequest(BudgetFields):
    key_alias: str | None = Field(default=None, min_length=1, max_length=128)
    duration: Duration | None = None  # None: never expires
    providers: list[ProviderName] | None = Field(default=None, min_length=1)  # None: every provider
    metadata: Metadata = Field(default_factory=dict)
    # the `retry` this key's batches take when their create sends none (the gateway's own)
    batch_retry: RetryOptions | None = None


class UpdateKeyRequest(BudgetFields):
    """Budget fields and `batch_retry` change only when sent; `"max_budget": null` lifts the
    budget, `"batch_retry": null` the key's default retry."""

    key: str = Field(min_length=1, max_length=1024)  # the plain key or its key id
    key_alias: str | None = Field(default=None, min_length=1, max_length=128)
    duration: Duration | None = None
    providers: list[ProviderName] | None = Field(default=None, min_length=1)
    metadata: Metadata | None = None
    batch_retry: RetryOptions | None = None


class DeleteKeysRequest(GatewayModel):
    """Names at least one key, in `keys` (plain keys or key ids) or `key_aliases`."""

    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"required": ["keys"], "properties": {"keys": {"minItems": 1}}},
                {"required": ["key_aliases"], "properties": {"key_aliases": {"minItems": 1}}},
            ]
        }
    }

    key_aliases: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    # validated after key_aliases, and even when absent: the error names `keys`
    keys: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, validate_default=True
    )

    @field_validator("keys")
    @classmethod
    def _names_a_key(cls, keys: list[str], info: ValidationInfo) -> list[str]:
        if not keys and not info.data.get("key_aliases"):
            raise ValueError("name the keys to delete in 'keys' or 'key_aliases'")
        return keys


class KeyInfo(GatewayModel):
    key_id: str
    token_id: str  # LiteLLM's name for the same id
    key_alias: str | None
    key_name: str  # a hint such as "sk-...a1b2", never the key
    providers: list[str] | None
    metadata: dict[str, Any]
    created_at: int
    expires: str | None  # ISO 8601, like LiteLLM
    expires_at: int | None
    spend: float = 0.0  # USD booked by settled batches in this budget period
    holds: float = 0.0  # USD held for batches still running
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: str | None = None  # ISO 8601
    batch_retry: RetryOptions | None = None  # the key's default `retry` of its batches' lines


class GeneratedKey(KeyInfo):
    key: str  # shown once, here only


class KeyInfoResponse(GatewayModel):
    key: str
    info: KeyInfo


class KeyListResponse(GatewayModel):
    keys: list[str | KeyInfo]
    total_count: int
    current_page: int
    total_pages: int


class DeletedKeysResponse(GatewayModel):
    deleted_keys: list[str]
