"""Key management wire objects, shaped like LiteLLM's /key/* for the fields they share."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.models.common import GatewayModel


class GenerateKeyRequest(GatewayModel):
    key_alias: str | None = Field(default=None, max_length=128)
    duration: str | None = None  # "30s", "10m", "12h", "30d", "2w"; None: never expires
    providers: list[str] | None = None  # None: every provider
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpdateKeyRequest(GatewayModel):
    key: str  # the plain key or its key id
    key_alias: str | None = Field(default=None, max_length=128)
    duration: str | None = None
    providers: list[str] | None = None
    metadata: dict[str, Any] | None = None


class DeleteKeysRequest(GatewayModel):
    keys: list[str] = Field(default_factory=list)  # plain keys or key ids
    key_aliases: list[str] = Field(default_factory=list)


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
