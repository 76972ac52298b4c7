"""Typed gateway errors and the OpenAI error envelope they turn into.

Code anywhere raises one of these; the resolver's exception handlers (gateway.http)
are the one place that turns them into HTTP responses.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return error_envelope(self.message, self.error_type, self.param, self.code)

    def response_headers(self) -> dict[str, str]:
        return {**retry_headers(self.status_code, self.code), **self.headers}


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "provider_not_allowed"


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowedError(GatewayError):
    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class ConflictError(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status_code = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class RateLimitError(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "api_error"
    default_code = "upstream_error"


class UpstreamTimeoutError(GatewayError):
    status_code = 504
    error_type = "api_error"
    default_code = "upstream_timeout"


class ServiceUnavailableError(GatewayError):
    """A step the gateway depends on (not the provider) failed; the client may retry."""

    status_code = 503
    error_type = "api_error"
    default_code = "service_unavailable"


class InternalError(GatewayError):
    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"


SHOULD_RETRY_HEADER = "x-should-retry"
# The openai SDK retries every 409 (as a lock timeout) unless `x-should-retry: false` says not
# to. A 409 is final (cancelling a finished batch, completing a cancelled upload: no retry can
# change the state it conflicts with) unless its code names work still in progress that a
# retry may find done: today a file still on its way to the provider (`file_not_ready`). A new
# retryable conflict (say, a request with the same idempotency key still running) adds its code.
RETRYABLE_CONFLICT_CODES = frozenset({"file_not_ready"})


def retry_headers(status_code: int, code: str | None) -> dict[str, str]:
    """The `x-should-retry` verdict of an error response, decided here for every 409."""
    if status_code != 409:
        return {}
    return {SHOULD_RETRY_HEADER: "true" if code in RETRYABLE_CONFLICT_CODES else "false"}


def error_envelope(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class UpstreamRequestError(GatewayError):
    """A provider's own 4xx, passed through with its status and envelope fields."""

    def __init__(self, status_code: int, message: str, *, error_type: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status_code = status_code
        self.error_type = error_type
