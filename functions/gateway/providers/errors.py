"""Turn a provider's error response into the gateway's typed errors."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.errors import (
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
)
from gateway.http import upstream_ids


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> UpstreamRequestError:
    """A 400 the adapter answers itself, as the provider would (before anything is sent)."""
    return UpstreamRequestError(400, message, error_type="invalid_request_error", param=param, code=code)


class QuotaRefused(UpstreamRequestError):
    """A batch create the provider refused for its quota, synchronously (Anthropic's 429
    `rate_limit_error`, Bedrock's ServiceQuotaExceededException, a 429 on create at OpenAI or
    Azure). The provider made nothing; the same create may succeed once its batches in progress
    end. Answered to a client exactly as the provider's error was before (status, envelope,
    Retry-After): only the plan of parts tells it apart, to wait and submit the part again."""

    @classmethod
    def of(cls, error: GatewayError) -> QuotaRefused:
        return cls(
            error.status_code,
            error.message,
            error_type=error.error_type,
            param=error.param,
            code=error.code,
            headers=dict(error.headers),
        )


def error_fields(response: httpx.Response, *, flat: bool = True) -> dict[str, Any]:
    """The `error` object of an error answer ({} when it has none); `flat`: a body that is
    itself the error (`{"message": ...}`, as Azure sometimes answers) counts too."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return error
    if flat and isinstance(payload, dict) and "message" in payload:
        return payload
    return {}


def upstream_error(response: httpx.Response, provider: str) -> GatewayError:
    fields = error_fields(response)
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
