"""OAuth 2.0 access tokens for a Google Cloud service account, from its JSON key, by google-auth.

The provider-keys secret holds the deployment's service-account JSON key. google-auth's
`service_account.Credentials` signs the JWT assertion (RS256) and exchanges it at the key's
`token_uri` (https://developers.google.com/identity/protocols/oauth2/service-account#httprest);
its requests go through the gateway's own httpx client (`HttpxTransport`, google-auth's
documented transport interface), so the deployment's timeouts hold. A token is used while
google-auth calls it `valid` (until shortly before it expires), or until a 401.

In the layer google-auth signs with the pure-Python `rsa` library: the layer has no
`cryptography` (README, dependencies). Neither the key nor a token is ever logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from google.auth import exceptions as google_errors
from google.auth import transport

from gateway.errors import UpstreamError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Used when a token answer names no `expires_in` (Google's always does): its documented hour.
DEFAULT_TOKEN_SECONDS = 3600
KeySource = Callable[[bool], str | None]
_REQUIRED_FIELDS = ("type", "client_email", "private_key", "token_uri")


class ServiceAccountTokens:
    """The current access token of one deployment's service account (thread-safe)."""

    def __init__(self, provider: str, key_source: KeySource, http: httpx.Client) -> None:
        self._provider = provider
        self._key_source = key_source
        self._transport = HttpxTransport(http)
        self._credentials: Any = None
        self._lock = threading.Lock()

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token; `refresh`: a new one (the last was refused with 401), with the
        key read again (it may have been rotated)."""
        with self._lock:
            if self._credentials is None or refresh:
                self._credentials = credentials_from_key(self._key_source(refresh), self._provider)
            if refresh or not self._credentials.valid:
                self._refresh(self._credentials)
            return str(self._credentials.token)

    def _refresh(self, credentials: Any) -> None:
        try:
            credentials.refresh(self._transport)
        except google_errors.TransportError as exc:
            raise UpstreamError(f"provider '{self._provider}' could not be reached for a token") from exc
        except google_errors.RefreshError as exc:
            raise UpstreamError(
                f"provider '{self._provider}' refused the service account's token request{_reason(exc)}",
                code="provider_access_denied",
            ) from None
        except (TypeError, ValueError, KeyError):
            # google-auth reads a 200 answer that is not a JSON object, or has an unreadable
            # `expires_in`, with these
            raise UpstreamError(
                f"provider '{self._provider}' answered the token request with something unreadable"
            ) from None
        if credentials.expiry is None:
            credentials.expiry = _utcnow() + timedelta(seconds=DEFAULT_TOKEN_SECONDS)


def _reason(error: google_errors.RefreshError) -> str:
    """The token endpoint's OAuth `error` code (`invalid_grant`, ...): never the whole answer."""
    answer = error.args[1] if len(error.args) > 1 else None
    reason = answer.get("error") if isinstance(answer, Mapping) else None
    return f" ({reason})" if isinstance(reason, str) and reason.isascii() and len(reason) <= 64 else ""


def _utcnow() -> datetime:
    # the clock google-auth compares expiries with (naive UTC)
    from google.auth import _helpers

    return _helpers.utcnow()  # type: ignore[no-any-return]


def credentials_from_key(raw: str | None, provider: str) -> Any:
    """google-auth's service-account credentials (scope cloud-platform) from the JSON key."""
    from google.oauth2 import service_account
    from pyasn1.error import PyAsn1Error

    info = parse_key(raw, provider)
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
    except (ValueError, TypeError, IndexError, PyAsn1Error, google_errors.GoogleAuthError):
        raise UpstreamError(
            f"provider '{provider}' has a service-account key whose private_key cannot be read",
            code="provider_key_invalid",
        ) from None


def parse_key(raw: str | None, provider: str) -> dict[str, Any]:
    """The service-account JSON key held as the deployment's provider key."""
    try:
        info = json.loads(raw or "")
    except ValueError:
        info = None
    if not isinstance(info, dict) or any(not isinstance(info.get(name), str) for name in _REQUIRED_FIELDS):
        raise UpstreamError(
            f"provider '{provider}' needs a service-account JSON key as its key (fields "
            f"{', '.join(_REQUIRED_FIELDS)})",
            code="provider_key_invalid",
        )
    if info["type"] != "service_account":
        raise UpstreamError(
            f"provider '{provider}': the key's type is not service_account", code="provider_key_invalid"
        )
    return info


class HttpxTransport(transport.Request):  # type: ignore[misc]
    """google-auth's `google.auth.transport.Request` over the gateway's httpx client."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        try:
            answer = self._http.request(
                method,
                url,
                content=body,
                headers=dict(headers or {}),
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            # the request's URL is the key's token_uri, not a secret; the form is left out
            raise google_errors.TransportError(f"{type(exc).__name__} posting to the token endpoint") from exc
        return HttpxAnswer(answer)


class HttpxAnswer(transport.Response):  # type: ignore[misc]
    """google-auth's `google.auth.transport.Response` of one httpx response."""

    def __init__(self, answer: httpx.Response) -> None:
        self._answer = answer

    @property
    def status(self) -> int:
        return self._answer.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._answer.headers

    @property
    def data(self) -> bytes:
        return self._answer.content
