"""How each provider type spells URLs, auth and status codes."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.providers.config import ProviderDeployment


@dataclass(frozen=True)
class Dialect:
    deployment: ProviderDeployment

    def url(self, path: str) -> str:
        """`path` is the OpenAI path below /v1, e.g. "/files/abc/content"."""
        raise NotImplementedError

    def params(self) -> dict[str, str]:
        return {}

    def auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError


class OpenAIDialect(Dialect):
    def url(self, path: str) -> str:
        return f"{self.deployment.api_base}{path}"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


class AzureDialect(Dialect):
    def url(self, path: str) -> str:
        return f"{self.deployment.api_base}/openai{path}"

    def params(self) -> dict[str, str]:
        return {"api-version": self.deployment.api_version or ""}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"api-key": key}


def dialect_for(deployment: ProviderDeployment) -> Dialect:
    return {"openai": OpenAIDialect, "azure": AzureDialect}[deployment.type](deployment)
