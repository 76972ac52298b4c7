"""Google's OAuth 2.0 token endpoint for service accounts, and the bearer check of the Google forms.

A service account's JSON key (`service_account_key`) carries a private key the simulator made and
a `token_uri` pointing here. A client signs a JWT with it (RS256; `iss` the account's email,
`scope`, `aud` Google's token endpoint, `iat`, `exp` at most an hour later) and posts it as
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`
(https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests);
the answer is `{"access_token", "expires_in", "token_type": "Bearer"}`, or 400
`{"error": "invalid_grant", "error_description"}`. Tokens and assertions follow the wall clock
(a client signs with its own), not the jobs' clock.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Bound at import: a test that moves time.time forward moves the jobs, not the tokens.
_wall_clock = time.time
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_SECONDS = 3600
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300
# The assertion's audience is Google's token endpoint whatever URI it is posted to (the docs'
# `aud` claim: "this value is always https://oauth2.googleapis.com/token").
AUDIENCE = "https://oauth2.googleapis.com/token"
SERVICE_ACCOUNT_EMAIL = "openai-gateway@sim-project.iam.gserviceaccount.com"


class GoogleAuthError(Exception):
    """An OAuth error (token endpoint) or a Google API 401 (`api`)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.status = status
        self.body = body


def unauthenticated(message: str) -> GoogleAuthError:
    return GoogleAuthError(401, {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}})


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GoogleTokens:
    """One service account (its key made at start) and the access tokens issued for it."""

    def __init__(self, email: str = SERVICE_ACCOUNT_EMAIL) -> None:
        self.email = email
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = secrets.token_hex(20)
        self._tokens: dict[str, float] = {}  # access token -> when it expires (wall clock)
        self._lock = threading.Lock()
        self.issued = 0

    def service_account_key(self, token_uri: str, project_id: str = "sim-project") -> dict[str, Any]:
        """The JSON key a Google Cloud console would download for this account."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": self._key_id,
            "private_key": pem,
            "client_email": self.email,
            "client_id": "100000000000000000000",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        }

    def exchange(self, form_body: bytes) -> dict[str, Any]:
        form = dict(parse_qsl(form_body.decode("utf-8", "replace")))
        if form.get("grant_type") != JWT_BEARER:
            raise _grant_error("unsupported_grant_type", "Invalid grant_type.")
        claims = self._verified_claims(form.get("assertion") or "")
        now = _wall_clock()
        if claims.get("iss") != self.email:
            raise _grant_error("invalid_grant", "Invalid JWT: unknown issuer.")
        if claims.get("aud") != AUDIENCE:
            raise _grant_error("invalid_grant", f"Invalid JWT: the audience must be {AUDIENCE}.")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise _grant_error("invalid_grant", "Invalid JWT: iat and exp are required.")
        if expires - issued > MAX_ASSERTION_SECONDS or expires < now - CLOCK_SKEW_SECONDS:
            raise _grant_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)."
            )
        if issued > now + CLOCK_SKEW_SECONDS:
            raise _grant_error("invalid_grant", "Invalid JWT: iat is in the future.")
        if CLOUD_PLATFORM not in str(claims.get("scope") or "").split():
            raise _grant_error("invalid_scope", "The cloud-platform scope is required.")
        token = "ya29.sim-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = now + TOKEN_SECONDS
            self.issued += 1
        return {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}

    def check(self, authorization: str | None) -> None:
        """A Google API request's `Authorization: Bearer <token>`, else 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated(
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential."
            )
        with self._lock:
            expires = self._tokens.get(token.strip())
        if expires is None or expires < _wall_clock():
            raise unauthenticated("Request had invalid authentication credentials.")

    def revoke_all(self) -> None:
        """Every token issued so far stops working (a client must fetch a new one)."""
        with self._lock:
            self._tokens.clear()

    def _verified_claims(self, assertion: str) -> dict[str, Any]:
        parts = assertion.split(".")
        if len(parts) != 3:
            raise _grant_error("invalid_grant", "Invalid JWT: not a signed JWT.")
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except ValueError:
            raise _grant_error("invalid_grant", "Invalid JWT: cannot be decoded.") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise _grant_error("invalid_grant", "Invalid JWT: RS256 expected.")
        try:
            self._key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise _grant_error("invalid_grant", "Invalid JWT Signature.") from None
        return claims


def _grant_error(error: str, description: str) -> GoogleAuthError:
    return GoogleAuthError(400, {"error": error, "error_description": description})
