"""Key management wire objects, shaped like LiteLLM's /key/* for the fields they share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BudgetFields(BaseModel):
    """LiteLLM's key budget: at most max_budget USD, spent again from zero every budget_duration."""

    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: str | None = None  # "30d", "1h", ...; None: the budget never resets


class GenerateKeyRequest(BudgetFields):
    key_alias: str | None = Field(default=None, max_length=128)
    duration: str | None = None  # "30s", "10m", "12h", "30d", "2w"; None: never expires
    providers: list[str] | None = None  # None: every provider
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpdateKeyRequest(BudgetFields):
    """Budget fields change only when sent; `"max_budget": null` lifts the budget."""

    key: str  # the plain key or its key id
    key_alias: str | None = Field(default=None, max_length=128)
    duration: str | None = None
    providers: list[str] | None = None
    metadata: dict[str, Any] | None = None


class DeleteKeysRequest(BaseModel):
    keys: list[str] = Field(default_factory=list)  # plain keys or key ids
    key_aliases: list[str] = Field(default_factory=list)


class KeyInfo(BaseModel):
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


class GeneratedKey(KeyInfo):
    key: str  # shown once, here only


class KeyInfoResponse(BaseModel):
    key: str
    info: KeyInfo


class KeyListResponse(BaseModel):
    keys: list[str | KeyInfo]
    total_count: int
    current_page: int
    total_pages: int


class DeletedKeysResponse(BaseModel):
    deleted_keys: list[str]
