"""Where webhooks may go (SSRF rules), and signatures the openai SDK verifies."""

from __future__ import annotations

import json
import time

import openai
import pytest
from gateway.webhooks.destinations import UnsafeDestinationError, check_destination
from gateway.webhooks.signing import signed_headers, signing_secret


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.9/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "http://8.8.8.8/hook",  # plain http anywhere in AWS
        "https://metadata.google.internal/x",
        "https://user:secret@8.8.8.8/hook",
        "https:///no-host",
    ],
)
def test_in_aws_only_public_https_destinations_pass(url: str) -> None:
    with pytest.raises(UnsafeDestinationError) as refused:
        check_destination(url, allow_loopback=False)
    assert refused.value.param == "url" and refused.value.status_code == 400


def test_a_public_https_address_passes_without_dns() -> None:
    check_destination("https://8.8.8.8/hook", allow_loopback=False)


def test_locally_loopback_http_passes_but_private_addresses_still_do_not() -> None:
    check_destination("http://127.0.0.1:9000/hook", allow_loopback=True)
    check_destination("http://localhost:9000/hook", allow_loopback=True)
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://192.168.0.4/hook", allow_loopback=True)
    with pytest.raises(UnsafeDestinationError):
        check_destination("https://10.0.0.1/hook", allow_loopback=True)


def test_signatures_verify_with_the_openai_sdk_for_each_secret() -> None:
    old, new = signing_secret("pepper", "we_1", 1), signing_secret("pepper", "we_1", 2)
    assert old != new and signing_secret("pepper", "we_2", 1) != old
    body = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "batch.completed",
            "created_at": 1,
            "data": {"id": "batch_1"},
        }
    )
    headers = signed_headers([new, old], "evt_1", int(time.time()), body.encode())
    for secret in (old, new):
        event = openai.OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(body, headers)
        assert event.type == "batch.completed"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x", webhook_secret=signing_secret("pepper", "we_1", 3)).webhooks.unwrap(
            body, headers
        )
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x", webhook_secret=new).webhooks.unwrap(
            body.replace("batch_1", "batch_2"), headers
        )


def test_the_test_host_passes_like_loopback_only_in_a_test_deployment() -> None:
    """make localstack-test on Docker: the receiver on this machine's Docker bridge address."""
    check_destination("http://172.17.0.1:9000/hook", allow_loopback=True, test_host="172.17.0.1")
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://172.17.0.1:9000/hook", allow_loopback=False, test_host="172.17.0.1")
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://172.17.0.2:9000/hook", allow_loopback=True, test_host="172.17.0.1")


def test_the_functions_read_the_test_host_from_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """infra/functions.py sets it only beside GATEWAY_WEBHOOKS_ALLOW_LOOPBACK (test_endpoint_host)."""
    from gateway.runtime import resources
    from gateway.runtime.settings import get_settings

    monkeypatch.setenv(resources.ENV_WEBHOOKS_ALLOW_LOOPBACK, "true")
    monkeypatch.setenv(resources.ENV_WEBHOOKS_TEST_HOST, "172.17.0.1")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.webhooks_allow_loopback and settings.webhooks_test_host == "172.17.0.1"
        monkeypatch.delenv(resources.ENV_WEBHOOKS_TEST_HOST)
        get_settings.cache_clear()
        assert get_settings().webhooks_test_host is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
