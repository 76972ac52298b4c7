"""Batches: create, retrieve, list (statuses current), cancel."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from gateway.auth import Caller
from gateway.errors import ConflictError, InvalidRequestError
from gateway.ids import new_id
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch, CreateBatchRequest
from gateway.models.common import ListPage
from gateway.observability import logger
from gateway.providers.registry import client_for
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest, page_records
from gateway.service.ownership import owned_record
from gateway.service.translate import batch_object
from gateway.settings import get_settings
from gateway.storage.id_map import IdMap, ObjectRecord

_REFRESH_WORKERS = 8
_UPSTREAM_PAGE_LIMIT = 100  # the largest page OpenAI and Azure list


def create_batch(
    caller: Caller, provider: str | None, request: CreateBatchRequest, id_map: IdMap | None = None
) -> Batch:
    id_map = id_map or IdMap()
    input_file = owned_record(id_map, caller, request.input_file_id, "file", param="input_file_id")
    if provider is not None and provider != input_file.provider:
        raise InvalidRequestError(
            f"Input file {input_file.id} belongs to provider '{input_file.provider}', "
            f"not '{provider}'. A batch runs where its input file is.",
            param="input_file_id",
            code="provider_mismatch",
        )
    caller.require_provider(input_file.provider)
    if input_file.upstream_id is None and input_file.status == "error":
        raise InvalidRequestError(
            f"File {input_file.id} failed to reach provider '{input_file.provider}': "
            f"{input_file.object.get('status_details')}",
            param="input_file_id",
            code="file_error",
        )
    if input_file.upstream_id is None or (
        input_file.status == "uploaded" and input_file.state.get("transfer")
    ):
        raise ConflictError(
            f"File {input_file.id} is still being transferred to provider '{input_file.provider}'. "
            "Wait until its status is 'processed' (client.files.wait_for_processing).",
            param="input_file_id",
            code="file_not_ready",
        )
    upstream = client_for(input_file.provider).create_batch(request.upstream_body(input_file.upstream_id))
    record = ObjectRecord(
        id=new_id("batch"),
        kind="batch",
        owner=caller.key_id,
        provider=input_file.provider,
        created_at=int(upstream.get("created_at") or 0),
        object={},
        upstream_id=str(upstream["id"]),
        state={"input_file_id": input_file.id},
    )
    batch = batch_object(upstream, record, input_file.id, id_map)
    record.object = batch.model_dump(mode="json")
    id_map.put(record)
    return batch


def retrieve_batch(caller: Caller, batch_id: str, id_map: IdMap | None = None) -> Batch:
    id_map = id_map or IdMap()
    return _refresh(id_map, owned_record(id_map, caller, batch_id, "batch"))


def cancel_batch(caller: Caller, batch_id: str, id_map: IdMap | None = None) -> Batch:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, batch_id, "batch")
    caller.require_provider(record.provider)
    assert record.upstream_id is not None
    upstream = client_for(record.provider).cancel_batch(record.upstream_id)
    return _store(id_map, record, upstream)


def list_batches(
    caller: Caller, request: ListRequest, id_map: IdMap | None = None, *, deadline: Deadline | None = None
) -> ListPage[Batch]:
    """One page, unfinished batches refreshed upstream until `deadline` (the settings' list
    refresh deadline from now): whatever is not refreshed by then is served as stored."""
    id_map = id_map or IdMap()
    deadline = deadline or Deadline.after(get_settings().list_refresh_deadline_seconds)
    records, has_more = page_records(id_map, caller, "batch", request)
    stale = [r for r in records if r.status not in TERMINAL_BATCH_STATUSES]
    fresh: dict[str, Batch] = {}
    if stale:
        listed = _listed_upstream(stale, deadline)
        pool = ThreadPoolExecutor(max_workers=min(_REFRESH_WORKERS, len(stale)))
        futures = {pool.submit(_refresh_or_snapshot, id_map, r, listed, deadline): r.id for r in stale}
        done, late = wait(futures, timeout=deadline.remaining())
        # A call still running past the deadline is abandoned (its timeout ends it soon after).
        pool.shutdown(wait=False, cancel_futures=True)
        if late:
            logger.warning("batch list refresh hit its deadline; serving snapshots", extra={"n": len(late)})
        for future in done:
            fresh[futures[future]] = future.result()
    batches = [fresh.get(r.id) or Batch.model_validate(r.object) for r in records]
    return ListPage[Batch].of(batches, has_more)


def _listed_upstream(stale: list[ObjectRecord], deadline: Deadline) -> dict[str, dict[str, Any]]:
    """Current upstream objects of unfinished batches, keyed by upstream id, from one list call
    per provider with two or more of them (a page of 100 unfinished batches costs one provider
    call, not 100). A batch missing from the provider's newest page is retrieved on its own."""
    by_provider: dict[str, set[str]] = defaultdict(set)
    for record in stale:
        assert record.upstream_id is not None
        by_provider[record.provider].add(record.upstream_id)
    listed: dict[str, dict[str, Any]] = {}
    for provider, upstream_ids in by_provider.items():
        if len(upstream_ids) < 2 or deadline.passed():
            continue
        try:
            page = client_for(provider).list_batches(
                limit=_UPSTREAM_PAGE_LIMIT, timeout=deadline.timeout(_upstream_timeout())
            )
        except Exception:
            logger.warning("batch list refresh failed; retrieving one by one", extra={"provider": provider})
            continue
        for upstream in page.get("data") or ():
            if isinstance(upstream, dict) and upstream.get("id") in upstream_ids:
                listed[str(upstream["id"])] = upstream
    return listed


def _refresh(id_map: IdMap, record: ObjectRecord) -> Batch:
    assert record.upstream_id is not None
    return _store(id_map, record, client_for(record.provider).retrieve_batch(record.upstream_id))


def _refresh_or_snapshot(
    id_map: IdMap, record: ObjectRecord, listed: dict[str, dict[str, Any]], deadline: Deadline
) -> Batch:
    """In a list, one provider hiccup must not fail the page: fall back to the last snapshot."""
    try:
        upstream = listed.get(str(record.upstream_id))
        if upstream is None:
            if deadline.passed():
                return Batch.model_validate(record.object)
            assert record.upstream_id is not None
            timeout = deadline.timeout(_upstream_timeout())
            upstream = client_for(record.provider).retrieve_batch(record.upstream_id, timeout=timeout)
        return _store(id_map, record, upstream)
    except Exception:
        logger.warning("batch refresh failed; serving snapshot", extra={"batch_id": record.id})
        return Batch.model_validate(record.object)


def _upstream_timeout() -> float:
    return get_settings().upstream_timeout_seconds


def _store(id_map: IdMap, record: ObjectRecord, upstream: dict[str, object]) -> Batch:
    batch = batch_object(
        upstream, record, str(record.state.get("input_file_id") or record.object.get("input_file_id")), id_map
    )
    snapshot = record.object = batch.model_dump(mode="json")
    id_map.save_if_changed(record)  # an unchanged batch (or a list's unfinished one) costs no write
    # a lost conditional write leaves the newer stored object in the record: serve that
    return batch if record.object is snapshot else Batch.model_validate(record.object)
