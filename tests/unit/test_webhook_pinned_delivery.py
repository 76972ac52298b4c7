"""A webhook URL is checked once per delivery and the request goes to the address checked
(DNS rebinding), and a URL urlsplit cannot read is the client's 400, not a 500."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway import resources
from gateway.settings import reset_settings
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks import delivery
from gateway.webhooks.destinations import UnsafeDestinationError, check_destination
from handlers import webhooks_create

from tests.integration.receiver import webhook_receiver
from tests.unit.conftest import call, event

pytestmark = pytest.mark.usefixtures("aws")

EVENT = {"id": "evt_1", "object": "event", "type": "batch.completed", "created_at": 1, "data": {"id": "b"}}
MALFORMED = ["https://[::1", "https://[example.com]/x", "https://hooks.example.com:99999/x", "https://a:b/x"]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_url_is_refused_naming_url(url: str) -> None:
    with pytest.raises(UnsafeDestinationError) as refused:
        check_destination(url, allow_loopback=False)
    assert refused.value.param == "url" and "malformed" in refused.value.message


@pytest.mark.parametrize("url", MALFORMED[:2])
def test_creating_an_endpoint_with_a_malformed_ipv6_url_is_a_400(url: str) -> None:
    body = {"url": url, "name": "n", "event_types": ["batch.completed"]}
    status, answer, _ = call(webhooks_create.handler, event("POST", "/v1/webhook_endpoints", body=body))
    assert status == 400, answer
    assert (answer["error"]["param"], answer["error"]["code"]) == ("url", "invalid_webhook_url")


class RebindingResolver:
    """Answers `first` for `name` the first time it is asked, then `later` (a DNS rebinding)."""

    def __init__(self, name: str, first: str, later: str) -> None:
        self.name, self.answers, self.later = name, [first], later
        self.asked = 0
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != self.name:
            return self._real(host, port, *args, **kwargs)
        self.asked += 1
        address = self.answers.pop(0) if self.answers else self.later
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]


def endpoint_record(url: str) -> ObjectRecord:
    record = ObjectRecord(
        id="we_rebind",
        kind="webhook_endpoint",
        owner="key_a",
        provider=NO_PROVIDER,
        created_at=1,
        object={"url": url, "event_types": ["batch.completed"]},
        state={"generation": 1},
    )
    IdMap().put(record, reverse=False)
    return record


@pytest.fixture
def local_mode() -> Iterator[None]:
    os.environ[resources.ENV_WEBHOOKS_ALLOW_LOOPBACK] = "true"
    reset_settings()
    yield
    os.environ.pop(resources.ENV_WEBHOOKS_ALLOW_LOOPBACK, None)
    reset_settings()


def test_a_public_name_that_rebinds_to_loopback_is_called_at_the_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = RebindingResolver("hooks.example.com", first="93.184.216.34", later="127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sent = delivery.send(
        endpoint_record("https://hooks.example.com/h?x=1"), EVENT, 1, transport=httpx.MockTransport(answer)
    )
    assert sent.success and sent.status_code == 204
    (request,) = seen
    assert (request.url.scheme, request.url.host, request.url.port) == ("https", "93.184.216.34", None)
    assert request.url.raw_path == b"/h?x=1"
    # The certificate is checked against the name (SNI), and the receiver sees its own name.
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["host"] == "hooks.example.com"
    assert resolver.asked == 1


def test_a_rebinding_after_the_check_does_not_move_a_real_connection(
    local_mode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locally, over a real socket: the check sees 127.0.0.1 (the receiver); a second lookup
    would answer 127.0.0.2, where nothing listens."""
    with webhook_receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
        monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver("hooks.test", "127.0.0.1", "127.0.0.2"))
        sent = delivery.send(endpoint_record(f"http://hooks.test:{port}/hooks"), EVENT, 1)
        assert (sent.status_code, sent.error) == (200, None)
        (received,) = receiver.deliveries
    assert received.path == "/hooks" and received.headers["host"] == f"hooks.test:{port}"
    assert received.headers["webhook-id"] == "evt_1"


def test_an_ipv6_address_is_bracketed_in_the_url_and_the_host_header() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    endpoint = endpoint_record("https://[2606:4700:4700::1111]:8443/h")
    delivery.send(endpoint, EVENT, 1, transport=httpx.MockTransport(answer))
    (request,) = seen
    assert (request.url.host, request.url.port) == ("2606:4700:4700::1111", 8443)
    assert request.headers["host"] == "[2606:4700:4700::1111]:8443"
