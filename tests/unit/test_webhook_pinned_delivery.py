"""A webhook URL is checked once per delivery and the request goes to the address checked
(DNS rebinding), and a URL urlsplit cannot read is the client's 400, not a 500."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks import delivery
from gateway.webhooks.destinations import UnsafeDestinationError, check_destination, pinned_destination
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


def self_signed(directory: Any, name: str) -> tuple[str, str]:
    """A certificate for `name` (its own trust anchor) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_receiver(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """An https receiver on 127.0.0.1 with a certificate for `hooks.test` that the delivery's
    client trusts (SSL_CERT_FILE); yields its port and the SNI names it was greeted with."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert, key = self_signed(tmp_path, "hooks.test")
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    greeted: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _socket, name, _context: greeted.append(str(name)) or None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], greeted
    finally:
        server.shutdown()
        server.server_close()


def test_tls_to_the_pinned_address_speaks_and_verifies_the_name(
    local_mode: None, tls_receiver: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, greeted = tls_receiver
    monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver("hooks.test", "127.0.0.1", "127.0.0.2"))
    sent = delivery.send(endpoint_record(f"https://hooks.test:{port}/h"), EVENT, 1)
    assert (sent.status_code, sent.error) == (200, None)
    assert greeted == ["hooks.test"]


def test_a_certificate_for_another_name_is_refused(
    local_mode: None, tls_receiver: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address is pinned, not trusted: the certificate must still be the URL host's."""
    port, _ = tls_receiver
    monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver("other.test", "127.0.0.1", "127.0.0.1"))
    sent = delivery.send(endpoint_record(f"https://other.test:{port}/h"), EVENT, 1)
    assert sent.status_code is None and sent.error is not None and "ConnectError" in sent.error


def test_a_dual_stack_name_is_pinned_to_its_ipv4_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def dual_stack(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("2606:4700:4700::1111", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("93.184.216.34", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", dual_stack)
    pinned = pinned_destination("https://hooks.example.com/h", allow_loopback=False)
    assert (str(pinned.address), pinned.host_header) == ("93.184.216.34", "hooks.example.com")
