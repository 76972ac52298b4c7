"""The provider client against a fake transport: URLs, auth headers, error mapping."""

from __future__ import annotations

import httpx
import pytest
from gateway.errors import RateLimitError, UpstreamError, UpstreamRequestError, UpstreamTimeoutError
from gateway.providers.client import ProviderClient
from gateway.providers.config import ProviderDeployment


def _client(kind: str, handler: httpx.MockTransport, keys: list[str]) -> ProviderClient:
    base = "https://api.example/v1" if kind == "openai" else "https://res.example"
    deployment = ProviderDeployment(name=kind, type=kind, api_base=base, api_version="2025-04-01-preview")  # type: ignore[arg-type]
    calls = iter(keys)
    client = ProviderClient(deployment, lambda refresh: next(calls), timeout=5)
    client._http = httpx.Client(transport=handler)
    return client


def test_openai_and_azure_urls_and_auth() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "batch_up", "status": "validating"})

    _client("openai", httpx.MockTransport(answer), ["sk-o"]).retrieve_batch("b1")
    _client("azure", httpx.MockTransport(answer), ["az"]).retrieve_batch("b1")
    assert str(seen[0].url) == "https://api.example/v1/batches/b1"
    assert seen[0].headers["authorization"] == "Bearer sk-o"
    assert str(seen[1].url) == "https://res.example/openai/batches/b1?api-version=2025-04-01-preview"
    assert seen[1].headers["api-key"] == "az" and "authorization" not in seen[1].headers


def test_401_rereads_the_key_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer new":
            return httpx.Response(200, json={"id": "f"})
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    assert _client("openai", httpx.MockTransport(answer), ["old", "new"]).retrieve_file("f") == {"id": "f"}
    with pytest.raises(UpstreamError) as caught:
        _client("openai", httpx.MockTransport(answer), ["old", "older"]).retrieve_file("f")
    assert caught.value.code == "upstream_authentication_failed" and "old" not in caught.value.message


def test_error_mapping() -> None:
    def rate_limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow down"}})

    with pytest.raises(RateLimitError) as limited:
        _client("openai", httpx.MockTransport(rate_limited), ["k"]).retrieve_file("f")
    assert limited.value.status_code == 429 and limited.value.headers == {"Retry-After": "7"}

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="upstream down")

    with pytest.raises(UpstreamError) as failed:
        _client("openai", httpx.MockTransport(broken), ["k"]).retrieve_file("f")
    assert failed.value.status_code == 502

    def conflict(request: httpx.Request) -> httpx.Response:
        body = {
            "error": {"message": "cannot cancel", "type": "invalid_request_error", "param": None, "code": "x"}
        }
        return httpx.Response(409, json=body)

    with pytest.raises(UpstreamRequestError) as passed:
        _client("openai", httpx.MockTransport(conflict), ["k"]).cancel_batch("b")
    assert passed.value.status_code == 409 and passed.value.envelope()["error"]["message"] == "cannot cancel"

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("late", request=request)

    with pytest.raises(UpstreamTimeoutError) as timed_out:
        _client("openai", httpx.MockTransport(slow), ["k"]).retrieve_file("f")
    assert timed_out.value.status_code == 504
