"""Virtual key lifecycle: generate, look up, update, delete. Master key only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from gateway.formats.ids import derived_id, new_id
from gateway.http import auth
from gateway.http.auth import Caller
from gateway.http.idempotency import KEY_LIFETIME_SECONDS
from gateway.models.keys import (
    BudgetFields,
    DeleteKeysRequest,
    GeneratedKey,
    GenerateKeyRequest,
    KeyInfo,
    UpdateKeyRequest,
)
from gateway.models.retry import RetryOptions
from gateway.providers import registry
from gateway.runtime import secret_store
from gateway.storage.budgets import Budget, BudgetStore
from gateway.storage.keys import KeyRecord, KeyStore, hash_key

KEY_PREFIX = "sk-gw-"
_DURATION = re.compile(r"^(\d{1,12})(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000}
MAX_DURATION_SECONDS = 100 * 365 * 86400
MAX_METADATA_BYTES = 16 * 1024  # DynamoDB items stop at 400 KB; keys stay small


def require_master(caller: Caller) -> None:
    if not caller.is_master:
        raise PermissionDeniedError("Key management needs the master key.", code="master_key_required")


def parse_duration(duration: str, *, param: str = "duration") -> int:
    match = _DURATION.match(duration.strip())
    if not match or int(match.group(1)) <= 0:
        raise InvalidRequestError(
            f"Invalid duration '{duration}'. Use a number and a unit: 30s, 10m, 12h, 30d, 2w or 1mo.",
            param=param,
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidRequestError(
            f"Invalid duration '{duration}': at most 100 years. Omit it for a key that never expires.",
            param=param,
        )
    return seconds


def _check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(metadata).encode()) > MAX_METADATA_BYTES:
        raise InvalidRequestError(
            f"metadata is too large: at most {MAX_METADATA_BYTES} bytes of JSON.", param="metadata"
        )
    return metadata


def _stored_retry(retry: RetryOptions | None) -> dict[str, Any] | None:
    """A key's default retry as kept; one that retries nothing is no default."""
    return retry.model_dump(mode="json") if retry is not None and retry.asks_for_retry else None


def _check_alias_free(store: KeyStore, alias: str | None, *, except_key_id: str | None = None) -> None:
    if alias and any(r.key_alias == alias and r.key_id != except_key_id for r in store.all()):
        raise InvalidRequestError(f"A key with alias '{alias}' exists already.", param="key_alias")


def _check_providers(providers: list[str] | None) -> list[str] | None:
    if providers is None:
        return None
    if not providers:
        raise InvalidRequestError(
            "providers must name at least one provider, or be omitted.", param="providers"
        )
    for name in providers:
        registry.require_known(name, param="providers")
    return sorted(set(providers))


def info(record: KeyRecord, budget: Budget | None = None) -> KeyInfo:
    expires = _iso(record.expires_at)
    budget = budget or BudgetStore().get(record.key_id) or Budget(key_id=record.key_id)
    budget = budget.as_of(int(time.time()))  # a period that ended reads as spent from zero
    return KeyInfo(
        key_id=record.key_id,
        token_id=record.key_id,
        key_alias=record.key_alias,
        key_name=record.key_hint,
        providers=record.providers,
        metadata=record.metadata,
        created_at=record.created_at,
        expires=expires,
        expires_at=record.expires_at,
        spend=float(budget.spend),
        holds=float(budget.holds),
        max_budget=float(budget.max_budget) if budget.max_budget is not None else None,
        budget_duration=budget.budget_duration_text,
        budget_reset_at=_iso(budget.reset_at),
        batch_retry=record.batch_retry,
    )


def _iso(timestamp: int | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _configure_budget(key_id: str, request: BudgetFields, *, updating: bool) -> Budget | None:
    """Writes the key's budget when the request names one (before the key item: a key never
    exists without the budget it was given)."""
    sent = request.model_fields_set & {"max_budget", "budget_duration"}
    if not sent or (not updating and request.max_budget is None and request.budget_duration is None):
        return None
    budgets = BudgetStore()
    current = budgets.get(key_id) if updating else None
    max_budget = request.max_budget if "max_budget" in sent else (current.max_budget if current else None)
    duration = (
        request.budget_duration
        if "budget_duration" in sent
        else (current.budget_duration_text if current else None)
    )
    seconds = parse_duration(duration, param="budget_duration") if duration else None
    return budgets.configure(
        key_id,
        Decimal(str(max_budget)) if max_budget is not None else None,
        seconds,
        duration_text=duration,
    )


def generate(
    request: GenerateKeyRequest, store: KeyStore | None = None, *, seed: str | None = None
) -> GeneratedKey:
    """A new key. Under an Idempotency-Key (`seed`) its id and the key itself derive from the
    seed, its creation time and the pepper: a retry writes the same key again, a replay shows
    it without the gateway storing it, and the same Idempotency-Key used after its 24 hours
    makes a new key (never one deleted meanwhile)."""
    store = store or KeyStore()
    key_id, now = new_id("key"), int(time.time())
    if seed is not None:
        key_id, now = _seeded_identity(store, seed, now)
    _check_alias_free(store, request.key_alias, except_key_id=key_id)
    plain = KEY_PREFIX + secrets.token_urlsafe(32) if seed is None else seeded_key(seed, now)
    budget = _configure_budget(key_id, request, updating=False)
    record = KeyRecord(
        key_hash=hash_key(plain, secret_store.key_pepper()),
        key_id=key_id,
        created_at=now,
        key_alias=request.key_alias,
        providers=_check_providers(request.providers),
        metadata=_check_metadata(request.metadata),
        expires_at=now + parse_duration(request.duration) if request.duration else None,
        key_hint=f"{plain[:6]}...{plain[-4:]}",
        batch_retry=_stored_retry(request.batch_retry),
    )
    store.put(record)
    return GeneratedKey(key=plain, **info(record, budget).model_dump())


def seeded_key(seed: str, created_at: int) -> str:
    """The key generated under an Idempotency-Key: unguessable without the pepper."""
    message = f"generate\0{seed}\0{created_at}".encode()
    digest = hmac.new(secret_store.key_pepper().encode(), message, hashlib.sha256).digest()
    return KEY_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _seeded_identity(store: KeyStore, seed: str, now: int) -> tuple[str, int]:
    """The id and creation time of the key generated under this seed: the stored key's if an
    earlier attempt stored it within the key's lifetime, else new ones."""
    key_id = derived_id("key", seed)
    earlier = next((r for r in store.all() if r.key_id == key_id), None)
    if earlier is None:
        return key_id, now
    if now - earlier.created_at < KEY_LIFETIME_SECONDS:
        return key_id, earlier.created_at
    return new_id("key"), now


def find(key_or_id: str, store: KeyStore | None = None, *, param: str = "key") -> KeyRecord:
    store = store or KeyStore()
    record: KeyRecord | None
    if key_or_id.startswith("key_"):
        record = next((r for r in store.all() if r.key_id == key_or_id), None)
    else:
        record = store.get(hash_key(key_or_id, secret_store.key_pepper()))
    if record is None:
        raise NotFoundError("No such key.", param=param)
    return record


def update(request: UpdateKeyRequest, store: KeyStore | None = None) -> KeyInfo:
    store = store or KeyStore()
    record = find(request.key, store)
    if request.key_alias is not None:
        _check_alias_free(store, request.key_alias, except_key_id=record.key_id)
        record.key_alias = request.key_alias
    if request.duration is not None:
        record.expires_at = int(time.time()) + parse_duration(request.duration)
    if request.providers is not None:
        record.providers = _check_providers(request.providers)
    if request.metadata is not None:
        record.metadata = _check_metadata(request.metadata)
    if "batch_retry" in request.model_fields_set:
        record.batch_retry = _stored_retry(request.batch_retry)
    _configure_budget(record.key_id, request, updating=True)
    if not store.replace(record):  # deleted since `find` read it: it stays deleted
        raise NotFoundError("No such key.", param="key")
    auth.remember_key(record.key_hash, record)  # in effect at once here, within 60 s elsewhere
    return info(record)


def delete(request: DeleteKeysRequest, store: KeyStore | None = None) -> list[str]:
    store = store or KeyStore()
    if not request.keys and not request.key_aliases:
        raise InvalidRequestError("Name the keys to delete in 'keys' or 'key_aliases'.", param="keys")
    targets = [find(key, store, param="keys") for key in request.keys]
    if request.key_aliases:
        by_alias = {r.key_alias: r for r in store.all() if r.key_alias}
        for alias in request.key_aliases:
            if alias not in by_alias:
                raise NotFoundError(f"No key with alias '{alias}'.", param="key_aliases")
            targets.append(by_alias[alias])
    for record in targets:
        store.delete(record)
        auth.remember_key(record.key_hash, None)  # 401 at once here, whatever DynamoDB replicas say
    return [record.key_id for record in targets]
