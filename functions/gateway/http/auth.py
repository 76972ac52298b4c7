"""Who is calling: the master key (Secrets Manager) or a virtual key (DynamoDB).

Virtual key lookups are cached in the warm function for at most KEY_CACHE_SECONDS, so a
deleted key stops working everywhere within that time (at once in the deleting function,
which caches the deletion itself). Unknown keys are cached too, so a client retrying a bad
key costs one DynamoDB read a minute; the cache holds at most MAX_CACHED_KEYS entries.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.models.retry import RetryOptions
from gateway.runtime import secret_store
from gateway.storage.keys import KeyRecord, KeyStore, hash_key

MASTER_KEY_ID = "master"
KEY_CACHE_SECONDS = 60.0
MAX_CACHED_KEYS = 10_000

_key_cache: dict[str, tuple[float, KeyRecord | None]] = {}
_cache_lock = threading.Lock()  # the local server runs handlers in threads; Lambda does not


@dataclass(frozen=True)
class Caller:
    key_id: str
    is_master: bool = False
    providers: frozenset[str] | None = None  # None: every provider
    # the key's default `retry` of its batches' lines (a create's own `retry` wins)
    batch_retry: RetryOptions | None = field(default=None, hash=False, compare=False)

    @property
    def owner_scope(self) -> str | None:
        """The owner whose objects this caller sees; None means everyone's (master key)."""
        return None if self.is_master else self.key_id

    def can_see(self, owner: str) -> bool:
        return self.is_master or owner == self.key_id

    def require_provider(self, provider: str) -> None:
        if self.providers is not None and provider not in self.providers:
            raise PermissionDeniedError(
                f"This key may not use provider '{provider}'. Allowed: {', '.join(sorted(self.providers))}.",
                param="custom_llm_provider",
            )


MASTER = Caller(key_id=MASTER_KEY_ID, is_master=True)


def presented_key(headers: Mapping[str, str]) -> str | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = lowered.get("api-key", "").strip()
    return api_key or None


def authenticate(headers: Mapping[str, str]) -> Caller:
    key = presented_key(headers)
    if not key:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'api-key: <key>'.",
            code="missing_api_key",
        )
    if hmac.compare_digest(key.encode(), secret_store.master_key().encode()):
        return MASTER
    record = lookup_virtual_key(key)
    if record is None or record.expired():
        raise AuthenticationError("Incorrect API key provided.")
    providers = frozenset(record.providers) if record.providers is not None else None
    retry = RetryOptions.model_validate(record.batch_retry) if record.batch_retry is not None else None
    return Caller(key_id=record.key_id, providers=providers, batch_retry=retry)


def lookup_virtual_key(plain_key: str) -> KeyRecord | None:
    key_hash = hash_key(plain_key, secret_store.key_pepper())
    now = time.monotonic()
    cached = _key_cache.get(key_hash)
    if cached and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1]
    record = KeyStore().get(key_hash)
    remember_key(key_hash, record, now=now)
    return record


def remember_key(key_hash: str, record: KeyRecord | None, *, now: float | None = None) -> None:
    """Cache what a key is now: the updated record, or None for a deleted key."""
    now = time.monotonic() if now is None else now
    with _cache_lock:
        _key_cache.pop(key_hash, None)  # re-inserted last: the dict's order is oldest first
        if len(_key_cache) >= MAX_CACHED_KEYS:
            _prune(now)
        _key_cache[key_hash] = (now, record)


def _prune(now: float) -> None:
    """Drop the oldest entries: every stale one, then as many as it takes to make room."""
    while _key_cache:
        oldest = next(iter(_key_cache))
        if now - _key_cache[oldest][0] < KEY_CACHE_SECONDS and len(_key_cache) < MAX_CACHED_KEYS:
            return
        _key_cache.pop(oldest, None)


def clear_key_cache() -> None:
    _key_cache.clear()
