"""Where a webhook may be delivered: never into the gateway's own network (SSRF).

In AWS only `https` URLs whose host resolves to public addresses; checked when an endpoint
is registered and again at every delivery (a name can start resolving elsewhere). A delivery
connects to the address this check approved (`pinned_destination`), never resolving the name a
second time: a name that answers a public address to the check and a private one to the
connection (DNS rebinding) still reaches only the checked address. The local server also allows
`http` to loopback, so a developer can receive events on their machine.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from gateway.errors import InvalidRequestError

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_DEFAULT_PORTS = {"https": 443, "http": 80}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestinationError(InvalidRequestError):
    def __init__(self, message: str) -> None:
        super().__init__(message, param="url", code="invalid_webhook_url")


@dataclass(frozen=True)
class PinnedDestination:
    """A checked URL and the one address a delivery connects to."""

    url: str
    scheme: str
    host: str  # the name: TLS SNI, certificate check and the Host header
    port: int
    address: Address

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def check_destination(url: str, *, allow_loopback: bool, test_host: str | None = None) -> None:
    """The URL's shape and every address its host resolves to."""
    pinned_destination(url, allow_loopback=allow_loopback, test_host=test_host)


def pinned_destination(url: str, *, allow_loopback: bool, test_host: str | None = None) -> PinnedDestination:
    """`check_destination`, answering the first checked address for the connection: the host
    is resolved once, and what was checked is what is connected to."""
    parts = _split(url)
    if parts.scheme not in ({"https", "http"} if allow_loopback else {"https"}):
        raise UnsafeDestinationError("Webhook URLs must use https.")
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise UnsafeDestinationError("Webhook URLs need a host name and no user name or password.")
    if host.lower() in _METADATA_HOSTS:
        raise UnsafeDestinationError(f"Webhook URL host '{host}' is an instance metadata service.")
    addresses = _addresses(host)
    # test_host: this machine on Docker's bridge, for a test deployment only (allow_loopback).
    local = [
        a.is_loopback or (allow_loopback and test_host is not None and str(a) == test_host) for a in addresses
    ]
    if parts.scheme == "http" and not all(local):
        raise UnsafeDestinationError("Plain http is allowed only to this machine (loopback) in local mode.")
    for address, is_local in zip(addresses, local, strict=True):
        if is_local and allow_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise UnsafeDestinationError(
                f"Webhook URL host '{host}' resolves to {address}, a private, loopback, link-local "
                "or otherwise non-public address."
            )
    return PinnedDestination(
        url=url,
        scheme=parts.scheme,
        host=host,
        port=parts.port or _DEFAULT_PORTS[parts.scheme],
        # IPv4 first: a Lambda function outside a VPC has no IPv6 route, and a connection to a
        # pinned address does not fall back to the name's other addresses.
        address=next((address for address in addresses if address.version == 4), addresses[0]),
    )


def _split(url: str) -> SplitResult:
    """urlsplit, with what it refuses (an unclosed or non-address `[...]` host, a port that is
    no number or out of range) as the client's error, not the gateway's."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates it
    except ValueError as exc:
        raise UnsafeDestinationError(f"Webhook URL '{url[:200]}' is malformed: {exc}.") from exc
    return parts


def _addresses(host: str) -> list[Address]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UnsafeDestinationError(f"Webhook URL host '{host}' does not resolve.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnsafeDestinationError(f"Webhook URL host '{host}' does not resolve.")
    return addresses
