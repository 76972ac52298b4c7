"""Which provider deployment a request addresses: decided here and nowhere else.

Order for a new object or a list filter: path prefix (/{provider}/v1/...), header
`custom-llm-provider`, a `custom_llm_provider` body or form field, query `provider`, query
`custom_llm_provider` (what LiteLLM's proxy reads on GET calls, sent with `extra_query`).
Calls on an existing id ignore all of these: the id's owner provider wins.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.providers import registry
from gateway.routes import PROVIDER_PATH_PARAM

PROVIDER_HEADER = "custom-llm-provider"
PROVIDER_FIELD = "custom_llm_provider"
PROVIDER_QUERY = "provider"
PROVIDER_QUERY_ALIAS = PROVIDER_FIELD


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
