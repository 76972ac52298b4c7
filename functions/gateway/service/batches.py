"""Batches: create, retrieve, list (statuses current), cancel."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.errors import ConflictError, InvalidRequestError, ServiceUnavailableError
from gateway.formats.ids import new_id
from gateway.http.auth import Caller
from gateway.http.idempotency import KEY_LIFETIME_SECONDS, idempotency_key_reused
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch, CreateBatchRequest
from gateway.models.common import ListPage
from gateway.observability import batch_metrics, logger
from gateway.providers.registry import client_for
from gateway.runtime.settings import get_settings
from gateway.service import adoption
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest, page_records
from gateway.service.ownership import owned_record
from gateway.service.translate import batch_object
from gateway.storage import pending
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import PLAN, UPSTREAM_OPEN

if TYPE_CHECKING:
    from gateway.service.batch_input_check import ProblemList

_REFRESH_WORKERS = 8
_UPSTREAM_PAGE_LIMIT = 100  # the largest page OpenAI and Azure list
_PENDING_STATUS = "validating"  # what a batch reads while the gateway waits for its provider


def usable_input_file(
    caller: Caller, provider: str | None, request: CreateBatchRequest, id_map: IdMap
) -> ObjectRecord:
    """The caller's input file of a create (or a check): owned, at the provider named (if any)
    and transferred there; else the create's 4xx."""
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
    return input_file


def create_batch(
    caller: Caller,
    provider: str | None,
    request: CreateBatchRequest,
    id_map: IdMap | None = None,
    *,
    batch_id: str | None = None,
) -> Batch:
    """Write ahead: a pending record (conditional put), the provider's create (its metadata
    tagged with the gateway id when there is room), then the record finished (conditional).
    `batch_id` comes from the caller's Idempotency-Key: a retry meets its first attempt's record
    and finishes it, adopting the provider's batch if the provider has it."""
    id_map = id_map or IdMap()
    input_file = usable_input_file(caller, provider, request, id_map)
    from gateway.service import budget  # prices and budgets: loaded by the create function only
    from gateway.service.batch_input_check import BATCH_CHECK_STATE, batch_problems, require_endpoint

    require_endpoint(input_file.provider, request.endpoint)  # the request's own: a 400, not a batch error
    problems = batch_problems(input_file.state.get(BATCH_CHECK_STATE), request.endpoint)
    if problems.count:
        return _failed_at_validation(caller, input_file, request, batch_id or new_id("batch"), problems)
    model, estimate = budget.batch_estimate(caller, input_file)
    body = request.upstream_body(str(input_file.upstream_id))
    fresh = _pending_batch(caller, input_file, request, body, batch_id or new_id("batch"))
    # written ahead with the record: what the batch holds of its owner's budget, and its model
    fresh.state |= {budget.HOLD_STATE: str(estimate), budget.MODEL_STATE: model}
    from gateway.service.plan import create as plan_create

    # the request's own `retry` wins (`{}` asks for none); else its key's default
    retry = request.retry if request.retry is not None else caller.batch_retry
    plan = plan_create.plan_for(input_file, retry)
    if plan is not None:  # over one provider batch's caps: the watcher runs it as parts
        fresh = plan_create.planned(fresh, plan)
    existing = pending.put_new(fresh)
    if existing is None:
        _hold_or_discard(caller, fresh, estimate)
        if plan is not None:
            plan_create.start(fresh.id)
            return Batch.model_validate(fresh.object)
        return _create_upstream(id_map, fresh, first_attempt=True)
    if _key_expired(existing):  # an old key used again, for this request or another: a new batch
        return create_batch(caller, provider, request, id_map)
    if existing.state.get("request") != fresh.state["request"] or existing.kind != "batch":
        raise idempotency_key_reused()
    if PLAN in existing.state:
        if existing.status not in TERMINAL_BATCH_STATUSES:  # the first attempt may have died before its hold
            held = Decimal(str(existing.state.get(budget.HOLD_STATE) or 0))
            budget.hold_for_batch(caller, existing.id, held)
        return _snapshot(existing)
    if pending.is_pending(existing) and existing.status == _PENDING_STATUS:
        # the first attempt may have died before its hold: holding is once per batch
        budget.hold_for_batch(caller, existing.id, Decimal(str(existing.state.get(budget.HOLD_STATE) or 0)))
        return _adopt_or_create(id_map, existing)
    return Batch.model_validate(existing.object)  # the first attempt's batch, finished meanwhile


def _failed_at_validation(
    caller: Caller,
    input_file: ObjectRecord,
    request: CreateBatchRequest,
    batch_id: str,
    problems: ProblemList,
) -> Batch:
    """A batch whose input file has problems, as OpenAI validates it: recorded `failed` at once
    with OpenAI's `errors`, in one transaction with its settlement (it used and holds nothing)
    and its `batch.failed` event (the watcher publishes it). No provider sees it."""
    from gateway.service import batch_events, budget, settlement
    from gateway.service.batch_input_check import BATCH_CHECK_STATE

    record = _pending_batch(
        caller, input_file, request, request.upstream_body(str(input_file.upstream_id)), batch_id
    )
    model = budget.priced_model(
        input_file.provider, (input_file.state.get(BATCH_CHECK_STATE) or {}).get("model")
    )
    record.state = _without_pending(record.state) | {budget.HOLD_STATE: "0", budget.MODEL_STATE: model}
    errors = [problem.as_error() for problem in problems.listed]
    if problems.count > len(errors):
        more = problems.count - len(errors)
        errors.append(
            {"code": "more_errors", "message": f"And {more} more problems.", "param": None, "line": None}
        )
    now = record.created_at
    record.object = {
        **record.object,
        "status": "failed",
        "failed_at": now,
        "errors": {"object": "list", "data": errors},
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
    }
    record.settlement, spend_item = settlement.never_ran(record, model, now)
    events = batch_events.outbox_events(record, None)
    existing = pending.put_new(
        record,
        with_puts=[spend_item, *(event.to_item() for event in events)],
        extra={"settlement": json.dumps(record.settlement, separators=(",", ":"))},
    )
    if existing is None:
        logger.info("batch failed validation", extra={"batch_id": batch_id, "problems": problems.count})
        batch_metrics.created(record.provider)
        batch_metrics.finished(record.provider, "failed", succeeded=0, failed=0)
        return _snapshot(record)
    if _key_expired(existing):
        return _failed_at_validation(caller, input_file, request, new_id("batch"), problems)
    if existing.kind != "batch" or existing.state.get("request") != record.state["request"]:
        raise idempotency_key_reused()
    return _snapshot(existing)  # a retry: the first attempt's batch


def _key_expired(existing: ObjectRecord) -> bool:
    """The record an Idempotency-Key's id met is older than the key's lifetime: the age comes
    before the request is compared, so a key used again after it makes a new batch."""
    return time.time() - existing.created_at > KEY_LIFETIME_SECONDS


def _hold_or_discard(caller: Caller, record: ObjectRecord, estimate: Decimal) -> None:
    """The budget's hold for a new batch; a refused one leaves no record behind."""
    from gateway.service import budget

    try:
        budget.hold_for_batch(caller, record.id, estimate)
    except InvalidRequestError:
        pending.discard(record)
        raise


def retrieve_batch(caller: Caller, batch_id: str, id_map: IdMap | None = None) -> Batch:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, batch_id, "batch")
    if pending.is_pending(record):
        return adopt_pending_batch(record, id_map)
    if record.upstream_id is None:  # given up: no provider batch to ask
        return _snapshot(record)
    return _refresh(id_map, record)


def cancel_batch(caller: Caller, batch_id: str, id_map: IdMap | None = None) -> Batch:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, batch_id, "batch")
    caller.require_provider(record.provider)
    if PLAN in record.state:  # run as parts: the watcher cancels them
        from gateway.service.plan import control

        return control.cancel(id_map, record)
    if pending.is_pending(record):
        upstream = adoption.find_upstream_batch(id_map, record)
        if upstream is None:
            return _cancel_pending(id_map, record)
        _finish(id_map, record, upstream)  # the provider has it: attach it, then cancel it there
        record = _reloaded_record(id_map, record)
        if record.upstream_id is None or record.status in {"cancelling", *TERMINAL_BATCH_STATUSES}:
            return Batch.model_validate(record.object)
    if record.upstream_id is None:  # given up: it ended without a provider batch
        raise ConflictError(
            f"Cannot cancel a batch with status '{record.status}'.",
            param="batch_id",
            code="batch_not_cancellable",
        )
    return _cancel_upstream(id_map, record)


def pause_batch(caller: Caller, batch_id: str, *, paused: bool, id_map: IdMap | None = None) -> Batch:
    """Pause (no new part submitted; running ones finish) or resume a batch run as parts."""
    from gateway.service.plan import control

    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, batch_id, "batch")
    caller.require_provider(record.provider)
    return control.pause(id_map, record, paused)


def adopt_pending_batch(record: ObjectRecord, id_map: IdMap | None = None) -> Batch:
    """Settle a batch whose create never heard back from the provider (for retrieve, cancel and
    the periodic watcher): attach the provider's batch if it has one; give the record up as
    `failed` once no create can still be running; else leave it pending."""
    id_map = id_map or IdMap()
    if not pending.is_pending(record):
        return Batch.model_validate(record.object)
    upstream = adoption.find_upstream_batch(id_map, record)
    if upstream is not None:
        return _finish(id_map, record, upstream)
    if not adoption.given_up(record):
        return Batch.model_validate(record.object)
    expected = str(record.status)
    if expected == _PENDING_STATUS:
        now = int(time.time())
        record.object = {
            **record.object,
            "status": "failed",
            "failed_at": now,
            "errors": {
                "object": "list",
                "data": [
                    {
                        "code": "provider_create_unconfirmed",
                        "message": f"The gateway's request to create this batch at provider "
                        f"'{record.provider}' did not complete, and the provider holds no such batch. "
                        "Create it again.",
                        "line": None,
                        "param": None,
                    }
                ],
            },
        }
    record.state = _without_pending(record.state)
    if _announced(record, lambda puts: pending.settle(record, expected_status=expected, with_puts=puts)):
        # given up: it books nothing, and its budget hold goes back
        return _settled(record, Batch.model_validate(record.object))
    return _reloaded(id_map, record)


def list_batches(
    caller: Caller, request: ListRequest, id_map: IdMap | None = None, *, deadline: Deadline | None = None
) -> ListPage[Batch]:
    """One page, unfinished batches refreshed upstream until `deadline` (the settings' list
    refresh deadline from now): whatever is not refreshed by then is served as stored."""
    id_map = id_map or IdMap()
    deadline = deadline or Deadline.after(get_settings().list_refresh_deadline_seconds)
    records, has_more = page_records(id_map, caller, "batch", request)
    # a pending batch (no upstream id yet) reads its snapshot; retrieve settles it
    stale = [r for r in records if r.status not in TERMINAL_BATCH_STATUSES and r.upstream_id is not None]
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
    batches = [fresh.get(r.id) or _snapshot(r) for r in records]
    return ListPage[Batch].of(batches, has_more)


def _listed_upstream(stale: list[ObjectRecord], deadline: Deadline) -> dict[tuple[str, str], dict[str, Any]]:
    """Current upstream objects of unfinished batches, keyed by (provider, upstream id), from
    one list call per provider with two or more of them (a page of 100 unfinished batches costs
    one provider call, not 100). A batch missing from the provider's newest page is retrieved on
    its own. Two deployments may use the same upstream id: only the provider's own page counts."""
    by_provider: dict[str, set[str]] = defaultdict(set)
    for record in stale:
        assert record.upstream_id is not None
        by_provider[record.provider].add(record.upstream_id)
    listed: dict[tuple[str, str], dict[str, Any]] = {}
    for provider, upstream_ids in by_provider.items():
        if len(upstream_ids) < 2 or deadline.passed():
            continue
        try:
            page = client_for(provider).list_batches(
                limit=_UPSTREAM_PAGE_LIMIT, timeout=deadline.provider_timeout()
            )
        except Exception:
            logger.warning("batch list refresh failed; retrieving one by one", extra={"provider": provider})
            continue
        for upstream in page.get("data") or ():
            if isinstance(upstream, dict) and upstream.get("id") in upstream_ids:
                listed[(provider, str(upstream["id"]))] = upstream
    return listed


def _refresh(id_map: IdMap, record: ObjectRecord) -> Batch:
    assert record.upstream_id is not None
    return _store(id_map, record, client_for(record.provider).retrieve_batch(record.upstream_id))


def _refresh_or_snapshot(
    id_map: IdMap, record: ObjectRecord, listed: dict[tuple[str, str], dict[str, Any]], deadline: Deadline
) -> Batch:
    """In a list, one provider hiccup must not fail the page: fall back to the last snapshot."""
    try:
        upstream = listed.get((record.provider, str(record.upstream_id)))
        if upstream is None:
            if deadline.passed():
                return Batch.model_validate(record.object)
            assert record.upstream_id is not None
            timeout = deadline.provider_timeout()
            upstream = client_for(record.provider).retrieve_batch(record.upstream_id, timeout=timeout)
        return _store(id_map, record, upstream)
    except Exception:
        logger.warning("batch refresh failed; serving snapshot", extra={"batch_id": record.id})
        return Batch.model_validate(record.object)


def _store(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> Batch:
    return record_upstream(id_map, record, upstream)[0]


def record_upstream(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> tuple[Batch, bool]:
    """Record what the provider says of a tracked batch (retrieve, list, cancel and the
    watcher alike): the batch to serve, and whether this call wrote it."""
    batch = batch_object(
        adoption.untagged(upstream, record.id),
        record,
        str(record.state.get("input_file_id") or record.object.get("input_file_id")),
        id_map,
    )
    batch = _settled(record, batch)
    from gateway.service import batch_events  # the bus and webhooks: loaded with the first change

    before = record.stored_object()
    snapshot = record.object = batch.model_dump(mode="json")
    recorded = batch_events.outbox_events(record, before)
    if recorded:
        # the change and its events in one conditional transaction: only its first recorder
        # announces it (the watcher, a retrieve, a list or a cancel, whichever came first)
        wrote = id_map.save_object(record, with_puts=[event.to_item() for event in recorded])
        if wrote:
            batch_events.publish(recorded, id_map)
    else:
        wrote = id_map.save_if_changed(record)  # an unchanged batch costs no write
    # a lost conditional write leaves the newer stored object in the record: serve that
    return (batch if record.object is snapshot else Batch.model_validate(record.object)), wrote


def _settled(record: ObjectRecord, batch: Batch) -> Batch:
    """A finished batch with its usage and cost (booked once, on first sight); any other as it
    is. The settlement code (prices, usage, budgets) loads with the first finished batch."""
    if batch.status not in TERMINAL_BATCH_STATUSES:
        return batch
    from gateway.service.settlement import settle_if_finished

    return settle_if_finished(record, batch)


def _snapshot(record: ObjectRecord) -> Batch:
    """A batch as stored, with its settlement (never rewritten by snapshots) when it has one.
    An object stored before batches named their provider takes the record's."""
    batch = Batch.model_validate({"provider": record.provider, **record.object})
    if not record.settlement:
        return batch
    from gateway.service.settlement import with_settlement

    return with_settlement(batch, record.settlement)


# Write-ahead steps of a create ---------------------------------------------------------------
def _pending_batch(
    caller: Caller, input_file: ObjectRecord, request: CreateBatchRequest, body: dict[str, Any], batch_id: str
) -> ObjectRecord:
    now = int(time.time())
    tagged = adoption.tag_batch_body(body, batch_id)
    batch = Batch(
        id=batch_id,
        completion_window=request.completion_window,
        created_at=now,
        endpoint=request.endpoint,
        input_file_id=input_file.id,
        status=_PENDING_STATUS,
        metadata=request.metadata,
        provider=input_file.provider,
    )
    return ObjectRecord(
        id=batch_id,
        kind="batch",
        owner=caller.key_id,
        provider=input_file.provider,
        created_at=now,
        object=batch.model_dump(mode="json"),
        state={
            "input_file_id": input_file.id,
            "request": adoption.request_hash(
                # `retry` only when sent: the hash of a request without it is the one an earlier
                # release stored, which a retry of its create compares with
                {
                    "provider": input_file.provider,
                    **request.model_dump(mode="json", exclude=set() if request.retry else {"retry"}),
                }
            ),
            pending.PENDING: {"attempted_at": now, "tagged": tagged, "body": body},
        },
    )


def _adopt_or_create(id_map: IdMap, record: ObjectRecord) -> Batch:
    """A retry: the provider's batch if an earlier attempt made one, else a new attempt."""
    upstream = adoption.find_upstream_batch(id_map, record)
    if upstream is not None:
        return _finish(id_map, record, upstream)
    adoption.wait_for_provider(record)
    state = pending.pending_state(record)
    state.pop("timed_out_at", None)
    record.state = {**record.state, pending.PENDING: {**state, "attempted_at": int(time.time())}}
    if not pending.settle(record, expected_status=_PENDING_STATUS):
        return _reloaded(id_map, record)  # cancelled or finished meanwhile
    return _create_upstream(id_map, record, first_attempt=False)


def _create_upstream(id_map: IdMap, record: ObjectRecord, *, first_attempt: bool) -> Batch:
    try:
        upstream = client_for(record.provider).create_batch(
            pending.pending_state(record)["body"], gateway_id=record.id, timeout=adoption.create_timeout()
        )
    except Exception as exc:
        adoption.after_failed_call(record, exc, first_attempt=first_attempt)
        if first_attempt and adoption.refused(exc):  # discarded: it will never run
            from gateway.service import budget

            budget.release_hold(record)
        raise
    return _finish(id_map, record, upstream)


def _finish(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> Batch:
    """Attach the provider's batch to the pending record: claim its upstream id, then store
    the record with it unless another call changed the record first."""
    upstream_id = str(upstream["id"])
    if id_map.claim_upstream(record.provider, upstream_id, record.id) != record.id:
        raise ServiceUnavailableError("The provider's batch is claimed by another request; retry.")
    expected = str(record.status)
    if expected == "cancelled" and upstream.get("status") not in TERMINAL_BATCH_STATUSES:
        # cancelled by its owner before the provider's batch was found: cancel that one too
        upstream = client_for(record.provider).cancel_batch(upstream_id)
    ended_upstream = upstream.get("status") in TERMINAL_BATCH_STATUSES
    record.upstream_id = upstream_id
    record.state = _without_pending(record.state)
    batch = batch_object(
        adoption.untagged(upstream, record.id), record, str(record.state["input_file_id"]), id_map
    )
    if expected == "cancelled" and not ended_upstream:
        # Its owner was told `cancelled` (and it was announced): it stays so, never back to
        # `cancelling` (whose end would announce `batch.cancelled` again under the same event id).
        # The watcher follows the provider's batch until it ends, then books it.
        kept = {name: record.object.get(name) for name in ("status", "cancelling_at", "cancelled_at")}
        batch = Batch.model_validate({**batch.model_dump(mode="json"), **kept})
        record.state = {**record.state, UPSTREAM_OPEN: True}
    record.object = batch.model_dump(mode="json")
    attached = _announced(
        record,
        lambda puts: pending.attach_upstream(record, expected_status=expected, with_puts=puts),
        # a create's function does not publish: the watcher publishes what it left in the outbox
        publish=False,
    )
    if attached:
        batch_metrics.created(record.provider)
        # already over at the provider (adopted late): booked now, or by the watcher's next pass
        return _settled(record, batch) if ended_upstream else batch
    current = id_map.get(record.id)
    if current is not None and current.upstream_id == upstream_id:
        return Batch.model_validate(current.object)  # a concurrent call finished it
    if current is not None and pending.is_pending(current) and current.status != expected:
        return _finish(id_map, current, upstream)  # cancelled meanwhile
    raise ServiceUnavailableError("The batch changed while it was being recorded; retry.")


def _cancel_pending(id_map: IdMap, record: ObjectRecord) -> Batch:
    """Cancel a batch the provider does not hold (yet). It stays pending, so a provider batch
    that shows up later is still found and cancelled."""
    if record.status != _PENDING_STATUS:
        return Batch.model_validate(record.object)
    now = int(time.time())
    record.object = {**record.object, "status": "cancelled", "cancelling_at": now, "cancelled_at": now}
    if _announced(
        record, lambda puts: pending.settle(record, expected_status=_PENDING_STATUS, with_puts=puts)
    ):
        return Batch.model_validate(record.object)
    current = _reloaded_record(id_map, record)
    if current.upstream_id is not None and current.status not in {"cancelling", *TERMINAL_BATCH_STATUSES}:
        return _cancel_upstream(id_map, current)  # finished by its create meanwhile
    return Batch.model_validate(current.object)


def _cancel_upstream(id_map: IdMap, record: ObjectRecord) -> Batch:
    assert record.upstream_id is not None
    return _store(id_map, record, client_for(record.provider).cancel_batch(record.upstream_id))


def _announced(
    record: ObjectRecord, write: Callable[[list[dict[str, Any]]], bool], *, publish: bool = True
) -> bool:
    """`write` the record's change with its events (the outbox items it is given) in one
    transaction; then publish them (or leave them to the watcher). True if written."""
    from gateway.service import batch_events

    recorded = batch_events.outbox_events(record, record.stored_object())
    written = write([event.to_item() for event in recorded])
    if written and recorded and publish:
        batch_events.publish(recorded)
    return written


def _without_pending(state: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in state.items() if name != pending.PENDING}


def _reloaded_record(id_map: IdMap, record: ObjectRecord) -> ObjectRecord:
    current = id_map.get(record.id)
    if current is None:
        raise ServiceUnavailableError("The batch changed while it was being recorded; retry.")
    return current


def _reloaded(id_map: IdMap, record: ObjectRecord) -> Batch:
    return Batch.model_validate(_reloaded_record(id_map, record).object)
