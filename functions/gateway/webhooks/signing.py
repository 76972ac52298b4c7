"""Standard Webhooks signatures, as OpenAI sends them and `client.webhooks.unwrap` checks them.

No signing secret is stored: each is derived from the key pepper (Secrets Manager), the
endpoint id and the endpoint's secret generation, so a rotation is a counter bump and a
table leak reveals nothing that signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
_DOMAIN = "webhook-signing-secret"


def signing_secret(root: str, endpoint_id: str, generation: int) -> str:
    digest = hmac.new(
        root.encode(), f"{_DOMAIN}#{endpoint_id}#{generation}".encode(), hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()


def secret_hint(secret: str) -> str:
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>`, keyed by the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The delivery's headers; several secrets (a rotation's grace period) sign side by side."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret, webhook_id, timestamp, body) for secret in secrets),
    }
