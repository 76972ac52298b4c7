"""OAuth 2.0 access tokens for a Google Cloud service account, from its JSON key.

The provider-keys secret holds the deployment's service-account JSON key. A token is the
answer to a JWT assertion signed with the key's private key (RS256), posted to the key's
`token_uri` as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest: claims `iss`
the account's email, `scope`, `aud` https://oauth2.googleapis.com/token, `iat`, `exp` at most an
hour later); it is used until five minutes before it expires, or until a 401.

The signature is the `rsa` library's (pure Python, with `pyasn1`: what google-auth itself signs
with when `cryptography` is absent); google-auth is not in the layer: with its dependencies it
would take the layer past its size budget (README, dependencies). Its verifier checks these
assertions in the tests. Neither the key nor a token is ever logged.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.errors import UpstreamError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# The assertion's audience, whatever `token_uri` it is posted to (the documented `aud` claim).
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_SECONDS = 3600
REFRESH_MARGIN_SECONDS = 300
KeySource = Callable[[bool], str | None]
_REQUIRED_FIELDS = ("type", "client_email", "private_key", "token_uri")
_PEM_PKCS8 = ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----")
_PEM_PKCS1 = ("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----")


class ServiceAccountTokens:
    """The current access token of one deployment's service account (thread-safe)."""

    def __init__(self, provider: str, key_source: KeySource, http: httpx.Client) -> None:
        self._provider = provider
        self._key_source = key_source
        self._http = http
        self._account: _Account | None = None
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token; `refresh`: a new one (the last was refused with 401), with the
        key read again (it may have been rotated)."""
        with self._lock:
            if self._account is None or refresh:
                self._account = _Account.parse(self._key_source(refresh), self._provider)
            # the token's lifetime on the monotonic clock: immune to the wall clock being set
            if refresh or self._token is None or time.monotonic() >= self._expires - REFRESH_MARGIN_SECONDS:
                self._token, lifetime = self._exchange(self._account)
                self._expires = time.monotonic() + lifetime
            return self._token

    def _exchange(self, account: _Account) -> tuple[str, float]:
        issued = int(datetime.now(UTC).timestamp())
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": account.assertion(issued)}
        try:
            answer = self._http.post(account.token_uri, data=form)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"provider '{self._provider}' could not be reached for a token") from exc
        try:
            body = answer.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if answer.status_code != 200 or not isinstance(token, str):
            reason = body.get("error") if isinstance(body, dict) else None
            raise UpstreamError(
                f"provider '{self._provider}' refused the service account's token request "
                f"(HTTP {answer.status_code}{f', {reason}' if isinstance(reason, str) else ''})",
                code="provider_access_denied",
            )
        lifetime = body.get("expires_in")
        return token, float(lifetime) if isinstance(lifetime, int | float) else float(ASSERTION_SECONDS)


class _Account:
    def __init__(self, email: str, key_id: str | None, private_key: Any, token_uri: str) -> None:
        self.email = email
        self.key_id = key_id
        self.private_key = private_key
        self.token_uri = token_uri

    @classmethod
    def parse(cls, raw: str | None, provider: str) -> _Account:
        info = parse_key(raw, provider)
        try:
            private_key = load_private_key(info["private_key"])
        except ValueError:
            raise UpstreamError(
                f"provider '{provider}' has a service-account key whose private_key cannot be read",
                code="provider_key_invalid",
            ) from None
        key_id = info.get("private_key_id")
        return cls(
            info["client_email"], key_id if isinstance(key_id, str) else None, private_key, info["token_uri"]
        )

    def assertion(self, now: int) -> str:
        import rsa

        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self.key_id:
            header["kid"] = self.key_id
        claims = {
            "iss": self.email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = rsa.sign(signing_input.encode(), self.private_key, "SHA-256")
        return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(pem: str) -> Any:
    """An `rsa.PrivateKey` from a PEM key: PKCS#8 (`BEGIN PRIVATE KEY`, what Google's JSON keys
    hold) or PKCS#1 (`BEGIN RSA PRIVATE KEY`). ValueError if it is neither."""
    import rsa
    from pyasn1.codec.der import decoder
    from pyasn1.error import PyAsn1Error

    text = pem.strip()
    try:
        if text.startswith(_PEM_PKCS1[0]):
            return rsa.PrivateKey.load_pkcs1(text.encode(), format="PEM")
        if not text.startswith(_PEM_PKCS8[0]) or not text.endswith(_PEM_PKCS8[1]):
            raise ValueError("not a PEM private key")
        der = base64.b64decode("".join(text[len(_PEM_PKCS8[0]) : -len(_PEM_PKCS8[1])].split()))
        # PrivateKeyInfo ::= SEQUENCE { version, privateKeyAlgorithm, privateKey OCTET STRING }
        # (RFC 5208); the OCTET STRING is the PKCS#1 RSAPrivateKey.
        info, _ = decoder.decode(der)
        return rsa.PrivateKey.load_pkcs1(bytes(info[2]), format="DER")
    except (PyAsn1Error, IndexError, TypeError, ValueError) as exc:
        raise ValueError("not a readable RSA private key") from exc


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
