"""Which provider deployment a request addresses: decided here and nowhere else.

Order for a new object or a list filter: path prefix (/{provider}/v1/...), header
`custom-llm-provider`, a `custom_llm_provider` body or form field, query `provider`, query
`custom_llm_provider` (what LiteLLM's proxy reads on GET calls, sent with `extra_query`).
Calls on an existing id ignore all of these: the id's owner provider wins.

Azure's signs (its path forms /{provider}/openai/... and /{provider}/openai/v1/..., or an
`api-version` query) are never served by a non-Azure deployment: `check_azure_signs` answers
400 naming the base URL to use, on any path, and an id owned by a non-Azure deployment is
refused the same way when a request carrying those signs touches it (`require_azure_owner`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.providers import registry
from gateway.routes import PROVIDER_PATH_PARAM, azure_form
from gateway.runtime.settings import get_settings

PROVIDER_HEADER = "custom-llm-provider"
PROVIDER_FIELD = "custom_llm_provider"
PROVIDER_QUERY = "provider"
PROVIDER_QUERY_ALIAS = PROVIDER_FIELD
AZURE_VERSION_QUERY = "api-version"
WRONG_BASE_URL = "wrong_base_url"

# Whether the request being handled carries Azure's signs; set per request by the resolver.
_azure_signed: ContextVar[bool] = ContextVar("azure_signed", default=False)


def requested_provider(
    *,
    path_parameters: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    query: Mapping[str, str] | None,
    body_field: str | None = None,
) -> str | None:
    """The provider the client named, validated, or None when it named none."""
    from_path = (path_parameters or {}).get(PROVIDER_PATH_PARAM)
    if from_path:
        if from_path not in registry.provider_names():
            raise NotFoundError(
                f"Unknown provider '{from_path}' in the URL. Configured providers: "
                f"{', '.join(registry.provider_names())}.",
                code="unknown_url",
            )
        return from_path
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    for value, param in (
        (lowered.get(PROVIDER_HEADER), PROVIDER_HEADER),
        (body_field, PROVIDER_FIELD),
        ((query or {}).get(PROVIDER_QUERY), PROVIDER_QUERY),
        ((query or {}).get(PROVIDER_QUERY_ALIAS), PROVIDER_QUERY_ALIAS),
    ):
        if value is not None:
            if not value.strip():
                raise InvalidRequestError("The provider name must not be empty.", param=param)
            return registry.require_known(value.strip(), param=param)
    return None


def check_azure_signs(event: Mapping[str, Any]) -> bool:
    """Whether a proxy event carries Azure's signs; 400 when they address no Azure deployment.

    Remembered until `forget_azure_signs` (the resolver calls it when the request ends), for
    `require_azure_owner`."""
    query = event.get("queryStringParameters") or {}
    path_form = azure_form(event.get("resource")) is not None
    if not (path_form or AZURE_VERSION_QUERY in query):
        return False
    provider = (event.get("pathParameters") or {}).get(PROVIDER_PATH_PARAM)
    known = provider is not None and provider in registry.provider_names()
    # An unknown provider in the URL is left to requested_provider's 404.
    if provider is None or (known and _type_of(provider) != "azure"):
        sign = "Azure's path form /openai/..." if path_form else f"The '{AZURE_VERSION_QUERY}' query"
        where = f"'{provider}' is not an Azure deployment" if provider else "the URL names no deployment"
        raise InvalidRequestError(
            f"{sign} is Azure OpenAI's wire format, but {where}. {_azure_base_urls()}",
            param=AZURE_VERSION_QUERY if not path_form else None,
            code=WRONG_BASE_URL,
        )
    _azure_signed.set(True)
    return True


def forget_azure_signs() -> None:
    _azure_signed.set(False)


def require_azure_owner(provider: str, object_id: str) -> None:
    """A request with Azure's signs may touch only objects of Azure deployments."""
    if _azure_signed.get() and _type_of(provider) != "azure":
        raise InvalidRequestError(
            f"{object_id} belongs to provider '{provider}', which is not an Azure deployment, and this "
            f"request uses Azure OpenAI's wire format. Call it with the openai SDK on base URL "
            f"<gateway>/{provider}/v1 (or <gateway>/v1).",
            code=WRONG_BASE_URL,
        )


def _type_of(provider: str) -> str | None:
    """The deployment's type; None for a name no longer configured (an old object's owner)."""
    deployment = get_settings().providers.get(provider)
    return deployment.type if deployment is not None else None


def _azure_base_urls() -> str:
    azure = [name for name, spec in get_settings().providers.items() if spec.type == "azure"]
    if not azure:
        return "No Azure deployment is configured: use the openai SDK on base URL <gateway>/v1."
    endpoints = " or ".join(f"<gateway>/{name}" for name in azure)
    return (
        f"Use azure_endpoint={endpoints} (AzureOpenAI; LiteLLM api_base with custom_llm_provider='azure'), "
        "or the openai SDK on <gateway>/v1 without api-version."
    )
