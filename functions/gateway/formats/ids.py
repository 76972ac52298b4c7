"""The gateway's own opaque ids, shaped like OpenAI's."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# Far above any id the gateway or a provider hands out, far below DynamoDB's 2,048-byte
# partition key limit: a longer id is unknown without asking DynamoDB (which would refuse it).
MAX_ID_LENGTH = 256
_PREFIX = {
    "file": "file-",
    "batch": "batch_",
    "upload": "upload_",
    "part": "part_",
    "key": "key_",
    "webhook_endpoint": "we_",
    "webhook_delivery": "whdl_",
}
_LENGTH = 24


def new_id(kind: str) -> str:
    return _PREFIX[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def derived_id(kind: str, seed: str) -> str:
    """The same id for the same seed (a caller's Idempotency-Key): a retried create finds the
    record its first attempt wrote. SHA-256 keeps ids of different seeds apart."""
    number = int.from_bytes(hashlib.sha256(f"{kind}\0{seed}".encode()).digest(), "big")
    chars = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return _PREFIX[kind] + "".join(chars)


def storable_id(value: str) -> bool:
    """Whether `value` can be a table key at all (an id the gateway may have stored)."""
    return 0 < len(value.encode("utf-8", errors="surrogatepass")) <= MAX_ID_LENGTH


def shown_id(value: str) -> str:
    """An id as an error message may quote it."""
    return value if len(value) <= 64 else value[:64] + "..."
