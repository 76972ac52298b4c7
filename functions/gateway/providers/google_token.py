"""OAuth 2.0 access tokens for a Google Cloud service account, from its JSON key.

The provider-keys secret holds the deployment's service-account JSON key; google-auth signs the
JWT assertion with its private key and exchanges it at the key's `token_uri`
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest) for a token
of the `cloud-platform` scope, refreshed shortly before it expires. The exchange goes through
httpx (`HttpxRequest`), not google-auth's `requests` transport: the layer ships no `requests`.
Neither the key nor a token is ever logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from gateway.errors import UpstreamError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
KeySource = Callable[[bool], str | None]
_REQUIRED_FIELDS = ("type", "client_email", "private_key", "token_uri")


class _Response:
    """google.auth.transport.Response over an httpx answer."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.data = response.content


class HttpxRequest:
    """google.auth.transport.Request (a callable sending one HTTP request) over httpx."""

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
    ) -> _Response:
        from google.auth import exceptions

        try:
            answer = self._http.request(
                method, url, content=body, headers=dict(headers or {}), timeout=timeout or 30.0
            )
        except httpx.HTTPError as exc:
            raise exceptions.TransportError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        return _Response(answer)


class ServiceAccountTokens:
    """The current access token of one deployment's service account (thread-safe)."""

    def __init__(self, provider: str, key_source: KeySource, http: httpx.Client) -> None:
        self._provider = provider
        self._key_source = key_source
        self._request = HttpxRequest(http)
        self._credentials: Any = None
        self._lock = threading.Lock()

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token; `refresh`: a new one (the last was refused with 401)."""
        with self._lock:
            if self._credentials is None or refresh:
                self._credentials = self._load(refresh=refresh)
            credentials = self._credentials
            if refresh or not credentials.valid:
                self._refresh(credentials)
            return str(credentials.token)

    def _load(self, *, refresh: bool) -> Any:
        from google.oauth2 import service_account

        info = parse_key(self._key_source(refresh), self._provider)
        try:
            return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        except (ValueError, TypeError) as exc:  # a private key google-auth cannot read
            raise UpstreamError(
                f"provider '{self._provider}' has a service-account key that cannot be used: "
                f"{type(exc).__name__}",
                code="provider_key_invalid",
            ) from None

    def _refresh(self, credentials: Any) -> None:
        from google.auth import exceptions

        try:
            credentials.refresh(self._request)
        except exceptions.RefreshError as exc:  # the token endpoint refused the key
            raise UpstreamError(
                f"provider '{self._provider}' refused the service account's token request",
                code="provider_access_denied",
            ) from exc
        except exceptions.TransportError as exc:
            raise UpstreamError(f"provider '{self._provider}' could not be reached for a token") from exc


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
