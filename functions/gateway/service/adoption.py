"""Finding the upstream object a create left behind: the provider accepted it, the gateway never
heard (a timeout after accept, a failed write). A retried create, a retrieve or the watcher then
adopts it instead of creating a second one.

Only what the gateway can prove is its own is adopted, and never an object another gateway id
has claimed. Batches carry the gateway's id in their `metadata` (BATCH_TAG, a key clients may not
send) when the caller left room for it; an untagged batch (16 pairs of the caller's) is matched by
what the create sent, its input file the caller's own. Files are uploaded under a name that
starts with the gateway's file id (`upstream_filename`; the client sees its own name), and only
that name is adopted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from gateway.errors import (
    ConflictError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamTimeoutError,
)
from gateway.models.batches import GATEWAY_BATCH_TAG
from gateway.observability import logger
from gateway.providers.registry import client_for
from gateway.routes import API_GATEWAY_TIMEOUT_SECONDS
from gateway.runtime.settings import get_settings
from gateway.storage import pending
from gateway.storage.id_map import IdMap, ObjectRecord

BATCH_TAG = GATEWAY_BATCH_TAG  # reserved: a client's metadata may not hold it (models.batches)
MAX_METADATA_PAIRS = 16  # OpenAI's limit on a batch's metadata
# Clocks of the gateway and the provider may differ this much; an upstream object created
# this long before the attempt still counts as the attempt's.
CLOCK_SKEW_SECONDS = 120
# A pending record whose provider object is still not found this long after the last attempt
# is given up: no in-flight create can still be running (the provider call ends within the
# API's 29 s), and the provider's lists have long shown what it accepted.
ABANDON_AFTER_SECONDS = 600
# A create's provider call must end while the client still waits for the gateway's answer: API
# Gateway gives up at 29 s. httpx's timeouts are per phase (connect up to 5 s, then each read
# or write), so the call's own timeout leaves room for the connect and the gateway's writes.
API_DEADLINE_SECONDS = API_GATEWAY_TIMEOUT_SECONDS
_CONNECT_AND_WRITES_SECONDS = 7
# After a create timed out, the provider may still be making the object: for this long a retry
# that does not find it yet is asked to come back (409, retryable) rather than make another.
SETTLE_SECONDS = 30
_MAX_PAGES = 5
_PAGE_LIMIT = 100


def create_timeout() -> float:
    """The timeout of a create's provider call: the configured one, capped under API Gateway's."""
    cap = API_DEADLINE_SECONDS - _CONNECT_AND_WRITES_SECONDS
    return max(1.0, min(get_settings().upstream_timeout_seconds, cap))


def request_hash(payload: dict[str, Any]) -> str:
    """A stable hash of a create's request, kept in the record: a retry with the same
    Idempotency-Key and a different request is refused even after the key's own record is gone."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def tag_batch_body(body: dict[str, Any], gateway_id: str) -> bool:
    """Add the gateway id to the upstream create's metadata if the caller left room. The tag is
    only ever the gateway's: a caller's own BATCH_TAG is refused at validation, and dropped here."""
    metadata = {key: value for key, value in (body.get("metadata") or {}).items() if key != BATCH_TAG}
    if len(metadata) >= MAX_METADATA_PAIRS:
        return False
    body["metadata"] = {**metadata, BATCH_TAG: gateway_id}
    return True


def upstream_filename(gateway_id: str, filename: str) -> str:
    """The name a file is uploaded under: the gateway's own file id, then the client's name (its
    extension kept, which providers check). Adoption matches this name only, so it never takes
    another create's file, whatever its name and size; `client_filename` undoes it."""
    return f"{gateway_id}.{filename}"


def client_filename(gateway_id: str, filename: str) -> str:
    """The client's own name of a file the gateway uploaded as `upstream_filename`."""
    return filename.removeprefix(f"{gateway_id}.")


def untagged(upstream: dict[str, Any], gateway_id: str) -> dict[str, Any]:
    """The provider's batch without the gateway's tag: the client sees its own metadata."""
    metadata = upstream.get("metadata")
    if not isinstance(metadata, dict) or metadata.get(BATCH_TAG) != gateway_id:
        return upstream
    rest = {key: value for key, value in metadata.items() if key != BATCH_TAG}
    return {**upstream, "metadata": rest or None}


def attempted_at(record: ObjectRecord) -> int:
    return int(pending.pending_state(record).get("attempted_at") or record.created_at)


def note_timeout(record: ObjectRecord) -> None:
    """Remember that the provider call timed out (best effort: a retry then waits for it)."""
    record.state = {
        **record.state,
        pending.PENDING: {**pending.pending_state(record), "timed_out_at": int(time.time())},
    }
    try:
        pending.settle(record, expected_status=str(record.status))
    except Exception:
        logger.warning("could not note the timed-out create", extra={"id": record.id})


def wait_for_provider(record: ObjectRecord) -> None:
    """Raise a retryable 409 while a timed-out attempt may still be completing at the provider."""
    timed_out_at = pending.pending_state(record).get("timed_out_at")
    left = int(timed_out_at or 0) + SETTLE_SECONDS - int(time.time())
    if timed_out_at and left > 0:
        raise ConflictError(
            f"The provider has not confirmed the first attempt of this request yet; retry in {left} s.",
            code="create_not_confirmed",
            headers={"x-should-retry": "true", "Retry-After": str(left)},
        )


def given_up(record: ObjectRecord) -> bool:
    return time.time() - attempted_at(record) >= ABANDON_AFTER_SECONDS


def find_upstream_batch(id_map: IdMap, record: ObjectRecord) -> dict[str, Any] | None:
    state = pending.pending_state(record)
    body: dict[str, Any] = state.get("body") or {}
    since = attempted_at(record) - CLOCK_SKEW_SECONDS
    for upstream in _recent(lambda **q: client_for(record.provider).list_batches(**q), since):
        metadata = upstream.get("metadata") or {}
        if state.get("tagged"):
            mine = metadata.get(BATCH_TAG) == record.id
        else:
            mine = (
                upstream.get("input_file_id") == body.get("input_file_id")
                and upstream.get("endpoint") == body.get("endpoint")
                and metadata == (body.get("metadata") or {})
            )
        # a tag is evidence, not proof (a batch made before clients were refused the key may
        # carry a forged one): a batch another gateway id holds is never taken
        if mine and _unclaimed(id_map, record, upstream):
            return upstream
    return None


def find_upstream_file(id_map: IdMap, record: ObjectRecord) -> dict[str, Any] | None:
    """The provider's file of this create: uploaded under this record's `upstream_filename`,
    same purpose and size, created since the attempt, not claimed by another gateway id. The
    oldest such file wins (a retry may have uploaded a second)."""
    since = attempted_at(record) - CLOCK_SKEW_SECONDS
    client = client_for(record.provider)
    listed = _recent(lambda **q: client.list_files(purpose=record.purpose, order="desc", **q), since)
    name = upstream_filename(record.id, str(record.object.get("filename")))
    matches = [
        upstream
        for upstream in listed
        if upstream.get("filename") == name
        and upstream.get("bytes") == record.object.get("bytes")
        and _unclaimed(id_map, record, upstream)
    ]
    return min(matches, key=lambda u: int(u.get("created_at") or 0)) if matches else None


def find_named_file(
    client: Any, *, filename: str, purpose: str, since: int, size: int | None = None
) -> dict[str, Any] | None:
    """The provider's file an earlier attempt of the gateway's own upload made: named
    `filename` (a name derived from gateway ids only), `size` bytes (when given), created since
    `since`. The oldest such file wins."""
    listed = _recent(
        lambda **q: client.list_files(purpose=purpose, order="desc", **q), since - CLOCK_SKEW_SECONDS
    )
    matches = [
        upstream
        for upstream in listed
        if upstream.get("filename") == filename and (size is None or upstream.get("bytes") == size)
    ]
    return min(matches, key=lambda u: int(u.get("created_at") or 0)) if matches else None


def _recent(list_page: Any, since: int) -> Iterator[dict[str, Any]]:
    """The provider's objects newest first, down to `since` (a few pages at most)."""
    after: str | None = None
    for _ in range(_MAX_PAGES):
        page = list_page(limit=_PAGE_LIMIT, **({"after": after} if after else {}))
        data = [item for item in page.get("data") or () if isinstance(item, dict) and item.get("id")]
        for item in data:
            if int(item.get("created_at") or 0) >= since:
                yield item
        if not page.get("has_more") or not data or int(data[-1].get("created_at") or 0) < since:
            return
        after = str(data[-1]["id"])


def _unclaimed(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> bool:
    owner = id_map.gateway_id_for(record.provider, str(upstream["id"]))
    return owner is None or owner == record.id


def after_failed_call(record: ObjectRecord, exc: Exception, *, first_attempt: bool) -> None:
    """What a failed provider call leaves: nothing if the provider refused a first attempt
    (the record is discarded), else the pending record for the retry or the watcher, marked
    if the call timed out (the provider may still be making the object)."""
    if first_attempt and refused(exc):
        pending.discard(record)
    elif isinstance(exc, UpstreamTimeoutError):
        note_timeout(record)


def refused(exc: Exception) -> bool:
    """True when the provider certainly made nothing: it answered a 4xx, a 429, or the gateway
    has no usable key for it."""
    if isinstance(exc, UpstreamRequestError | RateLimitError):
        return True
    return isinstance(exc, UpstreamError) and exc.code in {
        "upstream_authentication_failed",
        "provider_not_configured",
    }
