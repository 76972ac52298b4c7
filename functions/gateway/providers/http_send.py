"""One HTTP request to a provider, sent and measured (`provider_call`): a timeout or a transport
failure becomes the gateway's upstream error, the answer's status the call's outcome. And the
httpx client, timeouts and key source every HTTP adapter (OpenAI, Anthropic, Gemini) shares."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import IO, Any

import httpx

from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.observability import logger
from gateway.observability.provider_calls import TIMEOUT, provider_call

KeySource = Callable[[bool], str | None]  # (refresh) -> key
_CONNECT_TIMEOUT_SECONDS = 5.0


def close_failed(response: httpx.Response, *, provider: str, path: str, stream: bool) -> None:
    """Reads in (when streamed) and closes an error answer, logged with its status and `path`;
    its body stays readable for the error it becomes."""
    if stream:
        response.read()
    response.close()
    logger.warning(
        "provider error", extra={"provider": provider, "status": response.status_code, "path": path}
    )


class Replayable:
    """A spooled request body httpx sends in chunks, from its start on every attempt (a retry
    after the key was read again sends it again)."""

    def __init__(self, spool: IO[bytes], size: int) -> None:
        self._spool = spool
        self.size = size

    def __iter__(self) -> Iterator[bytes]:
        self._spool.seek(0)
        while chunk := self._spool.read(1024 * 1024):
            yield chunk


def send_measured(
    http: httpx.Client, request: httpx.Request, *, provider: str, operation: str, stream: bool = False
) -> httpx.Response:
    with provider_call(provider, operation) as call:
        try:
            response = http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            call.failed(TIMEOUT)
            raise UpstreamTimeoutError(f"provider '{provider}' did not answer in time") from exc
        except httpx.TransportError as exc:
            raise UpstreamError(f"provider '{provider}' could not be reached") from exc
        call.answered(response.status_code)
        return response


def operation_name(method: str, path: str) -> str:
    """A call's name in a trace, without the ids of its path: "GET /batches"."""
    return f"{method} /{path.lstrip('/').split('/', 1)[0]}"


def http_client(timeout: float) -> httpx.Client:
    """A provider's HTTP client: `timeout` per request, a short connect, the shared TLS settings."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT_SECONDS), verify=_tls_context()
    )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The TLS settings every provider client shares: what httpx builds by default (certifi's CA
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR), built once. Loading the CA bundle costs tens of
    ms per client, once per deployment at every cold start otherwise."""
    return httpx.create_ssl_context()


def request_timeout(seconds: float | None) -> dict[str, Any]:
    """A per-request timeout (connect included), or nothing: the client's own. A create must end
    before API Gateway's limit; a list's refresh within what is left of its deadline."""
    if seconds is None:
        return {}
    return {"timeout": httpx.Timeout(seconds, connect=min(_CONNECT_TIMEOUT_SECONDS, seconds))}
