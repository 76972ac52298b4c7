"""Turn a provider's error response into the gateway's typed errors."""

from __future__ import annotations

from typing import Any

import httpx

from gateway import upstream_ids
from gateway.errors import (
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
)


def _error_fields(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return error
    if isinstance(payload, dict) and "message" in payload:  # Azure sometimes answers flat
        return payload
    return {}


def upstream_error(response: httpx.Response, provider: str) -> GatewayError:
    fields = _error_fields(response)
    message = str(fields.get("message") or f"provider '{provider}' answered HTTP {response.status_code}")
    message = upstream_ids.to_gateway_ids(message)
    param, code = fields.get("param"), fields.get("code")
    code = str(code) if code is not None else None
    status = response.status_code
    if status == 429:
        headers = {}
        if retry_after := response.headers.get("retry-after"):
            headers["Retry-After"] = retry_after
        return RateLimitError(message, param=param, code=code or "rate_limit_exceeded", headers=headers)
    if status == 401:
        return UpstreamError(
            f"provider '{provider}' rejected the gateway's credentials; ask the operator to check its key",
            code="upstream_authentication_failed",
        )
    if status >= 500:
        return UpstreamError(f"provider '{provider}' failed: {message}", code="upstream_error")
    return UpstreamRequestError(
        status,
        message,
        error_type=str(fields.get("type") or "invalid_request_error"),
        param=param,
        code=code,
    )


class QuotaRefused(UpstreamRequestError):
    """The provider refused a batch's create for its quota (enqueued tokens, concurrent jobs):
    a plan's part waits and is submitted again; a single batch answers its client as before."""
