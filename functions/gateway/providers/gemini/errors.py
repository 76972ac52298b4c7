"""Google's error answers (`{"error": {"code", "message", "status", "details"}}`) as the gateway's
errors, and the one that says the API key was refused (https://ai.google.dev/gemini-api/docs/troubleshooting)."""

from __future__ import annotations

import httpx

from gateway.errors import GatewayError, RateLimitError, UpstreamError, UpstreamRequestError
from gateway.providers.errors import error_fields

_KEY_REJECTED = "API_KEY_INVALID"


def key_rejected(response: httpx.Response) -> bool:
    """Google answers a wrong key 400 INVALID_ARGUMENT with reason API_KEY_INVALID, no key 403."""
    if response.status_code not in (400, 401, 403):
        return False
    if response.status_code == 401:
        return True
    response.read()
    fields = error_fields(response, flat=False)
    reasons = {str(d.get("reason")) for d in fields.get("details") or () if isinstance(d, dict)}
    message = str(fields.get("message") or "")
    return _KEY_REJECTED in reasons or "API key" in message or "unregistered callers" in message


def gemini_error(response: httpx.Response, provider: str) -> GatewayError:
    """The gateway's error for a Google error answer (`{"error": {code, message, status}}`)."""
    fields = error_fields(response, flat=False)
    message = str(fields.get("message") or f"provider '{provider}' answered HTTP {response.status_code}")
    status_name = str(fields.get("status") or "")
    status = response.status_code
    if key_rejected(response):
        return UpstreamError(
            f"provider '{provider}' rejected the gateway's credentials; ask the operator to check its key",
            code="upstream_authentication_failed",
        )
    if status == 429:
        headers = {"Retry-After": value} if (value := response.headers.get("retry-after")) else {}
        return RateLimitError(message, code="rate_limit_exceeded", headers=headers)
    if status >= 500:
        return UpstreamError(f"provider '{provider}' failed: {message}", code="upstream_error")
    if status in (403, 404):  # Google answers a file that is gone 403
        return UpstreamRequestError(404, message, error_type="invalid_request_error", code="not_found")
    return UpstreamRequestError(
        status, message, error_type="invalid_request_error", code=status_name.lower() or None
    )
