"""Named provider deployments (non-secret settings; keys live in Secrets Manager)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, field_validator

DEFAULT_OPENAI_API_BASE = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
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


class ProviderDeployment(BaseModel):
    name: str
    type: Literal["openai", "azure"]
    api_base: str
    api_version: str | None = None
    # Azure deployment name -> the model it serves, so that prices and budgets know it.
    models: dict[str, str] = {}

    def base_model(self, model: str) -> str:
        return self.models.get(model, model)

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


def default_deployments() -> dict[str, dict[str, Any]]:
    return {"openai": {"type": "openai", "api_base": DEFAULT_OPENAI_API_BASE}}


def parse_deployments(raw: dict[str, dict[str, Any]]) -> dict[str, ProviderDeployment]:
    raw = raw or default_deployments()
    deployments = {}
    for name, spec in raw.items():
        spec = dict(spec)
        if spec.get("type") == "azure":
            spec.setdefault("api_version", DEFAULT_AZURE_API_VERSION)
        deployments[name] = ProviderDeployment(name=name, **spec)
    return deployments
