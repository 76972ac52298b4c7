"""One HTTP request to a provider, sent and measured (`provider_call`): a timeout or a transport
failure becomes the gateway's upstream error, the answer's status the call's outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import httpx

from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.observability import logger
from gateway.observability.provider_calls import TIMEOUT, provider_call


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
