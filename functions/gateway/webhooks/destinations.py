"""Where a webhook may be delivered: never into the gateway's own network (SSRF).

In AWS only `https` URLs whose host resolves to public addresses; checked when an endpoint
is registered and again at every delivery (a name can start resolving elsewhere). The local
server also allows `http` to loopback, so a developer can receive events on their machine.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from gateway.errors import InvalidRequestError

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class UnsafeDestinationError(InvalidRequestError):
    def __init__(self, message: str) -> None:
        super().__init__(message, param="url", code="invalid_webhook_url")


def check_url_shape(url: str, *, allow_loopback: bool) -> None:
    """What can be told without DNS: scheme, host, no credentials in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ({"https", "http"} if allow_loopback else {"https"}):
        raise UnsafeDestinationError("Webhook URLs must use https.")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeDestinationError("Webhook URLs need a host name and no user name or password.")
    if parts.hostname.lower() in _METADATA_HOSTS:
        raise UnsafeDestinationError(f"Webhook URL host '{parts.hostname}' is an instance metadata service.")
    if parts.scheme == "http" and not _all_loopback(parts.hostname):
        raise UnsafeDestinationError("Plain http is allowed only to this machine (loopback) in local mode.")


def check_destination(url: str, *, allow_loopback: bool) -> None:
    """The URL's shape and every address its host resolves to."""
    check_url_shape(url, allow_loopback=allow_loopback)
    host = urlsplit(url).hostname or ""
    for address in _addresses(host):
        if address.is_loopback and allow_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise UnsafeDestinationError(
                f"Webhook URL host '{host}' resolves to {address}, a private, loopback, link-local "
                "or otherwise non-public address."
            )


def _all_loopback(host: str) -> bool:
    try:
        return all(address.is_loopback for address in _addresses(host))
    except UnsafeDestinationError:
        return False


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UnsafeDestinationError(f"Webhook URL host '{host}' does not resolve.") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
