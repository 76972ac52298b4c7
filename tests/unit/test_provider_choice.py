"""Provider choice with Azure's signs: its path forms and its api-version query reach an Azure
deployment or get a 400 naming the base URL, never the OpenAI deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.errors import InvalidRequestError
from gateway.http import provider_choice
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings


@pytest.fixture(autouse=True)
def deployments(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(
        resources.ENV_PROVIDERS,
        json.dumps(
            {
                "openai": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"},
                "azure": {"type": "azure", "api_base": "http://127.0.0.1:9"},
                "azure-eu": {"type": "azure", "api_base": "http://127.0.0.1:9"},
            }
        ),
    )
    reset_settings()
    yield
    reset_settings()
    provider_choice.forget_azure_signs()  # no sign left for the next test


def proxy_event(
    resource: str, provider: str | None = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "resource": resource,
        "pathParameters": {"provider": provider} if provider else None,
        "queryStringParameters": query,
    }


@pytest.mark.parametrize(
    ("resource", "provider", "query"),
    [
        ("/{provider}/openai/files", "azure", {"api-version": "2024-10-21"}),
        ("/{provider}/openai/files", "azure", None),  # the form alone is Azure's sign
        ("/{provider}/openai/v1/batches/{batch_id}", "azure-eu", None),
        ("/{provider}/v1/files", "azure", {"api-version": "preview"}),
    ],
)
def test_azure_signs_addressing_an_azure_deployment_pass(
    resource: str, provider: str, query: dict[str, str] | None
) -> None:
    assert provider_choice.check_azure_signs(proxy_event(resource, provider, query)) is True
    provider_choice.require_azure_owner("azure", "file-1")  # an Azure-owned id is fine


@pytest.mark.parametrize(
    ("resource", "provider", "query", "param"),
    [
        ("/{provider}/openai/files", "openai", {"api-version": "2024-10-21"}, None),
        ("/{provider}/openai/v1/files", "openai", None, None),
        ("/{provider}/v1/batches", "openai", {"api-version": "2024-10-21"}, "api-version"),
        ("/v1/files", None, {"api-version": "2024-10-21"}, "api-version"),
        ("/files/{file_id}", None, {"api-version": "v1"}, "api-version"),
    ],
)
def test_azure_signs_elsewhere_are_a_400_naming_every_azure_base_url(
    resource: str, provider: str | None, query: dict[str, str] | None, param: str | None
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        provider_choice.check_azure_signs(proxy_event(resource, provider, query))
    assert caught.value.code == "wrong_base_url" and caught.value.param == param
    assert "<gateway>/azure or <gateway>/azure-eu" in caught.value.message


def test_an_id_of_the_openai_deployment_is_refused_only_with_azure_signs() -> None:
    provider_choice.check_azure_signs(proxy_event("/{provider}/openai/files/{file_id}", "azure"))
    with pytest.raises(InvalidRequestError) as caught:
        provider_choice.require_azure_owner("openai", "file-abc")
    assert "file-abc" in caught.value.message and "<gateway>/openai/v1" in caught.value.message

    provider_choice.forget_azure_signs()  # the request ends
    assert provider_choice.check_azure_signs(proxy_event("/{provider}/v1/files/{file_id}", "azure")) is False
    provider_choice.require_azure_owner("openai", "file-abc")  # the OpenAI form: the owner wins


def test_without_azure_signs_nothing_changes() -> None:
    for resource, provider in (("/v1/files", None), ("/{provider}/v1/files", "openai"), ("/files", None)):
        assert provider_choice.check_azure_signs(proxy_event(resource, provider)) is False


def test_an_unknown_deployment_in_azure_form_is_left_to_the_404() -> None:
    assert provider_choice.check_azure_signs(proxy_event("/{provider}/openai/files", "nope")) is True
