"""Named provider deployments (non-secret settings; keys live in Secrets Manager)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

DEFAULT_OPENAI_API_BASE = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
DEFAULT_ANTHROPIC_API_BASE = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_GEMINI_API_BASE = "https://generativelanguage.googleapis.com"
# Anthropic's and Bedrock's Claude requests require max_tokens; OpenAI's do not.
DEFAULT_MAX_TOKENS = 4096
ProviderType = Literal["openai", "azure", "anthropic", "bedrock", "gemini", "vertex"]
# Types without an OpenAI-style file store: the gateway keeps their files (providers.kept_files).
KEPT_FILE_TYPES = frozenset({"anthropic", "bedrock", "gemini", "vertex"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# Path segments the route table uses; a provider of that name would shadow a route.
RESERVED_NAMES = frozenset(
    {
        "v1",
        "files",
        "batches",
        "uploads",
        "key",
        "health",
        "spend",
        "webhook_endpoints",
        "webhook_event_types",
        "gateway",  # the provider of the objects the gateway serves itself
    }
)


class BatchCapsOverride(BaseModel):
    """A deployment's own batch caps and quotas, over its type's documented defaults
    (`caps.DOCUMENTED`): only the fields given change; `null` removes a quota."""

    model_config = ConfigDict(extra="forbid")

    max_requests: int | None = Field(default=None, gt=0)
    max_bytes: int | None = Field(default=None, gt=0)
    min_requests: int | None = Field(default=None, gt=0)
    enqueued_tokens: int | None = Field(default=None, gt=0)  # every model of the deployment
    enqueued_tokens_by_model: dict[str, PositiveInt] = {}  # model (or prefix) -> its own
    enqueued_requests: int | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _limits_required(self) -> BatchCapsOverride:
        for name in ("max_requests", "max_bytes"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null: every provider batch has one")
        if self.min_requests and self.max_requests and self.min_requests > self.max_requests:
            raise ValueError("min_requests is more than max_requests")
        return self


class ProviderDeployment(BaseModel):
    name: str
    type: ProviderType
    api_base: str = ""  # Bedrock's endpoint comes from its region
    api_version: str | None = None
    anthropic_version: str | None = None
    # max_tokens for a chat request that sets none (Anthropic and Bedrock require one).
    default_max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, gt=0)
    region: str | None = None
    # Azure deployment name -> the model it serves, so that prices and budgets know it.
    models: dict[str, str] = {}
    # Overrides of the provider type's documented batch caps (`caps.caps_for`).
    batch_caps: BatchCapsOverride | None = None
    # Vertex AI (`vertex`): the job's project and location, and the bucket its records and
    # predictions go through (`vertex.config.VertexSettings` checks them).
    project: str | None = None
    location: str | None = None
    gcs_bucket: str | None = None
    gcs_prefix: str = ""
    gcs_api_base: str = ""

    def base_model(self, model: str) -> str:
        return self.models.get(model, model)

    @property
    def keeps_files(self) -> bool:
        """Whether the gateway keeps this deployment's files (the provider has no file store)."""
        return self.type in KEPT_FILE_TYPES

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value) or value in RESERVED_NAMES:
            raise ValueError(f"invalid provider deployment name '{value}'")
        return value

    @field_validator("api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _vertex_settings(self) -> ProviderDeployment:
        if self.type == "vertex":
            from gateway.providers.vertex.config import check_deployment

            check_deployment(self)
        return self


def default_deployments() -> dict[str, dict[str, Any]]:
    return {"openai": {"type": "openai", "api_base": DEFAULT_OPENAI_API_BASE}}


def parse_deployments(raw: dict[str, dict[str, Any]]) -> dict[str, ProviderDeployment]:
    raw = raw or default_deployments()
    deployments = {}
    for name, spec in raw.items():
        spec = dict(spec)
        if spec.get("type") == "azure":
            spec.setdefault("api_version", DEFAULT_AZURE_API_VERSION)
        if spec.get("type") == "anthropic":
            spec.setdefault("api_base", DEFAULT_ANTHROPIC_API_BASE)
            spec.setdefault("anthropic_version", DEFAULT_ANTHROPIC_VERSION)
        if spec.get("type") == "gemini":
            spec.setdefault("api_base", DEFAULT_GEMINI_API_BASE)
        if spec.get("type") == "vertex":
            from gateway.providers.vertex.config import with_defaults

            spec = with_defaults(spec)
        deployments[name] = ProviderDeployment(name=name, **spec)
    return deployments
