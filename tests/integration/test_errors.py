"""Every error status of the gateway, as the official SDK (and curl) sees it."""

from __future__ import annotations

import httpx
import openai
import pytest

from devserver.server import SIM_AZURE_KEY, SIM_OPENAI_KEY, LocalGateway
from tests.integration.helpers import client, error_of, upload_batch_file


@pytest.fixture
def simulator(local_gateway: LocalGateway):  # type: ignore[no-untyped-def]
    assert local_gateway.simulator is not None
    yield local_gateway.simulator
    local_gateway.simulator.clear_faults()


def test_health_needs_no_key(local_gateway: LocalGateway) -> None:
    response = httpx.get(f"{local_gateway.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
        ({"Authorization": "Basic c2stMTIzNA=="}, "missing_api_key"),  # only Bearer carries a key
        ({"api-key": "x"}, "invalid_api_key"),
    ],
)
def test_missing_or_wrong_key_is_a_401(
    local_gateway: LocalGateway, headers: dict[str, str], code: str
) -> None:
    response = httpx.get(f"{local_gateway.api_base}/files", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, None)
    assert response.headers["x-request-id"]


def test_api_key_header_is_accepted(local_gateway: LocalGateway) -> None:
    response = httpx.get(f"{local_gateway.api_base}/files", headers={"api-key": local_gateway.master_key})
    assert response.status_code == 200


def test_wrong_key_through_the_sdk(local_gateway: LocalGateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(local_gateway, key="sk-not-a-key").files.list()
    error = error_of(caught.value)
    assert (error["code"], error["param"], error["message"]) == (
        "invalid_api_key",
        None,
        "Incorrect API key provided.",
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/nothing", "Unknown request URL: GET /v1/nothing."),
        ("/v1/files/a/b/c", "Unknown request URL: GET /v1/files/a/b/c."),
        ("/nowhere/v1/files", "Unknown provider 'nowhere' in the URL. Configured providers: {configured}."),
    ],
)
def test_unknown_route_is_a_404_envelope(local_gateway: LocalGateway, path: str, message: str) -> None:
    response = httpx.get(
        local_gateway.url + path, headers={"Authorization": f"Bearer {local_gateway.master_key}"}
    )
    assert response.status_code == 404
    error = response.json()["error"]
    expected = message.format(configured=", ".join(local_gateway.providers))
    assert (error["code"], error["param"], error["message"]) == ("unknown_url", None, expected)
    assert response.headers["x-request-id"]


def test_wrong_method_is_a_405_envelope(local_gateway: LocalGateway) -> None:
    response = httpx.put(
        f"{local_gateway.api_base}/files", headers={"Authorization": f"Bearer {local_gateway.master_key}"}
    )
    assert response.status_code == 405
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("method_not_allowed", None)
    assert error["message"] == "Method PUT is not allowed for /v1/files. Allowed: GET, POST."
    assert response.headers["allow"] == "GET, POST"


def test_body_over_api_gateway_limit_is_a_413(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.files.create(file=("big.jsonl", b"x" * (10 * 1024 * 1024 + 1)), purpose="batch")
    assert caught.value.status_code == 413
    error = error_of(caught.value)
    assert (error["code"], error["param"], error["type"]) == (
        "request_too_large",
        None,
        "invalid_request_error",
    )
    assert "Uploads API" in error["message"]


def test_bad_query_is_a_400_naming_the_param(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.files.list(limit=0)
    assert error_of(caught.value)["param"] == "limit"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.batches.list(limit=101)
    assert error_of(caught.value)["param"] == "limit"


def test_unknown_provider_is_named(local_gateway: LocalGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        upload_batch_file(client(local_gateway), extra_headers={"custom-llm-provider": "cohere"})
    error = error_of(caught.value)
    assert (error["param"], error["code"]) == ("custom-llm-provider", "unknown_provider")
    configured = ", ".join(local_gateway.providers)
    assert error["message"] == f"Unknown provider 'cohere'. Configured providers: {configured}."


def test_upstream_429_passes_through_with_retry_after(local_gateway: LocalGateway, simulator) -> None:  # type: ignore[no-untyped-def]
    simulator.add_fault(status=429, retry_after=7, path_contains="/files", method="POST")
    with pytest.raises(openai.RateLimitError) as caught:
        upload_batch_file(client(local_gateway))
    assert caught.value.response.headers["retry-after"] == "7"
    error = error_of(caught.value)
    assert (error["type"], error["code"], error["param"]) == ("rate_limit_error", "rate_limit_exceeded", None)


def test_upstream_5xx_is_a_502(local_gateway: LocalGateway, simulator) -> None:  # type: ignore[no-untyped-def]
    sdk = client(local_gateway)
    file_id = upload_batch_file(sdk).id
    simulator.add_fault(status=500, path_contains="/batches", method="POST")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert caught.value.status_code == 502
    error = error_of(caught.value)
    assert (error["type"], error["code"], error["param"]) == ("api_error", "upstream_error", None)
    assert error["message"].startswith("provider 'openai' failed: ")
    assert caught.value.response.headers["x-request-id"]


def test_upstream_timeout_is_a_504(local_gateway: LocalGateway, simulator) -> None:  # type: ignore[no-untyped-def]
    sdk = client(local_gateway)
    file_id = upload_batch_file(sdk).id
    simulator.add_fault(delay_seconds=3, path_contains="/files/", method="GET")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.files.retrieve(file_id)
    assert caught.value.status_code == 504
    error = error_of(caught.value)
    assert (error["type"], error["code"], error["param"]) == ("api_error", "upstream_timeout", None)
    assert error["message"] == "provider 'openai' did not answer in time"


def test_no_provider_key_in_any_response(local_gateway: LocalGateway, simulator) -> None:  # type: ignore[no-untyped-def]
    # The simulator rejects the gateway's key once: the gateway re-reads its key and retries.
    sdk = client(local_gateway)
    simulator.add_fault(status=401, path_contains="/files", method="GET")
    file_id = upload_batch_file(sdk).id
    response = sdk.files.with_raw_response.retrieve(file_id)
    assert response.status_code == 200
    for secret in (SIM_OPENAI_KEY, SIM_AZURE_KEY):
        assert secret not in response.text
        assert secret not in str(response.headers)


def test_every_response_has_a_request_id(local_gateway: LocalGateway) -> None:
    headers = {"Authorization": f"Bearer {local_gateway.master_key}"}
    for method, path in (
        ("GET", "/v1/files"),
        ("GET", "/v1/files/file-x"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/zzz"),
        ("DELETE", "/v1/batches"),
    ):
        response = httpx.request(method, local_gateway.url + path, headers=headers, json={})
        assert response.headers.get("x-request-id"), (method, path, response.status_code)
