"""One pass of the watcher: every batch that needs watching brought up to date (unfinished,
pending whatever its status, finished but not settled), what failures left behind finished,
and events nobody published published.

What needs watching comes from the sparse `by_watch` index (storage.watch_queries): a pass
reads live work only. Per provider deployment: its batches are paged (one list call per 100,
newest first) until every tracked batch was seen or the pages reach past the oldest; only those
the pages missed are retrieved one by one. Every change goes through the batches' own store
path (one conditional write with its events, service.batches.record_upstream), so two passes
at once, or a pass and a client's retrieve, record and announce a change once. A finished batch
whose settlement failed (or whose settler died) is settled again from its stored object. A
batch its provider answers 404 for ends after a grace period (service.missing_upstream). A
pass where nothing changed writes nothing. The whole pass has one deadline: what it did not
reach, the next pass does.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch
from gateway.observability import logger, metric_names, tracing
from gateway.observability.metrics import emit
from gateway.providers.registry import client_for
from gateway.service import (
    adoption,
    batch_events,
    batches,
    books,
    files,
    kept_sweep,
    missing_upstream,
    plan,
    transfer_failure,
)
from gateway.service.deadline import Deadline
from gateway.storage import outbox, pending, watch_queries
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import UPSTREAM_OPEN, needs_watching

PAGE_LIMIT = 100  # the largest page OpenAI and Azure list
# An event still in the outbox this long after it was recorded lost its publisher.
OUTBOX_GRACE_SECONDS = 10.0


@dataclass
class PassReport:
    batches_seen: int = 0
    list_calls: int = 0
    retrieves: int = 0
    changed: int = 0
    adopted: int = 0  # pending creates finished: attached to their provider object, or given up
    given_up: int = 0  # of those, the ones given up (no provider object within the grace)
    settled: int = 0
    ended_missing: int = 0
    unwatched: int = 0
    backfilled: int = 0
    files_finished: int = 0
    republished: int = 0
    kept_listed: int = 0  # notes and kept files the sweep read (service.kept_sweep)
    kept_removed: int = 0  # of those, the stray ones it removed
    errors: int = 0
    violations: int = 0  # ids breaking an invariant of the books after the pass (service.books)
    stopped_early: bool = False
    providers: dict[str, int] = field(default_factory=dict)  # unfinished batches per provider

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_pass(deadline: Deadline, id_map: IdMap | None = None) -> PassReport:
    """Events left behind first (a large refresh never starves them), then every batch that
    needs watching, stranded creates, finished batches not yet settled, and files still waiting
    for their provider, until `deadline`."""
    id_map = id_map or IdMap()
    report = PassReport()
    started = time.monotonic()
    oldest_unfinished: int | None = None
    _guarded(report, _republish, id_map, report)
    _guarded(report, _backfill_once, id_map, deadline, report)
    tracked: dict[str, list[ObjectRecord]] = defaultdict(list)
    stranded: list[ObjectRecord] = []
    unsettled: list[ObjectRecord] = []
    planned: list[ObjectRecord] = []
    for record in watch_queries.watched_batches(id_map):
        report.batches_seen += 1
        finished = record.status in TERMINAL_BATCH_STATUSES
        if not finished:
            oldest_unfinished = min(record.created_at, oldest_unfinished or record.created_at)
        if plan.is_planned(record) and not finished:
            planned.append(record)  # its parts are driven by the plan's runner
        elif pending.is_pending(record):
            stranded.append(record)  # whatever its status: a cancel while pending stays watched
        elif finished and record.settlement:
            _guarded(report, _unwatch, id_map, record, report)
        elif record.upstream_id is not None and (not finished or record.state.get(UPSTREAM_OPEN)):
            tracked[record.provider].append(record)
        elif finished:
            unsettled.append(record)
    report.providers = {provider: len(records) for provider, records in tracked.items()}
    for provider, records in tracked.items():
        _refresh_provider(id_map, provider, records, deadline, report)
    for record in planned:
        if _out_of_time(deadline, report):
            break
        _guarded(report, _advance_plan, id_map, record, report)
    for record in stranded:
        if _out_of_time(deadline, report):
            break
        _guarded(report, _adopt_batch, id_map, record, report)
    for record in unsettled:
        if _out_of_time(deadline, report):
            break
        _guarded(report, _settle, record, report)
    for record in watch_queries.waiting_files(id_map):
        if _out_of_time(deadline, report):
            break
        _guarded(report, _finish_file, id_map, record, report)
    if not _out_of_time(deadline, report):  # after the adoptions: a create given up leaves its note
        _guarded(report, _sweep_kept, id_map, deadline, report)
    touched = [record for records in tracked.values() for record in records] + stranded + unsettled + planned
    if not _out_of_time(deadline, report):
        _guarded(report, _check_books, id_map, touched, report)
    logger.info("watcher pass", extra=report.as_dict())
    _emit_pass(report, (time.monotonic() - started) * 1000, oldest_unfinished)
    return report


def _emit_pass(report: PassReport, duration_ms: float, oldest_unfinished: int | None) -> None:
    """Every pass emits its duration and the oldest unfinished batch's age (0: none), so a
    missing datapoint means no pass ran."""
    emit(metric_names.WATCHER_PASS_DURATION, duration_ms)
    emit(metric_names.WATCHER_STOPPED_EARLY, 1 if report.stopped_early else 0)
    emit(metric_names.WATCHER_BATCHES_TRACKED, report.batches_seen)
    emit(metric_names.WATCHER_CHANGES, report.changed)
    emit(metric_names.STRANDED_ADOPTED, report.adopted - report.given_up)
    emit(metric_names.STRANDED_GIVEN_UP, report.given_up)
    age = max(0, int(time.time()) - oldest_unfinished) if oldest_unfinished is not None else 0
    emit(metric_names.OLDEST_UNFINISHED_AGE, age)


def _refresh_provider(
    id_map: IdMap, provider: str, records: list[ObjectRecord], deadline: Deadline, report: PassReport
) -> None:
    wanted = {str(record.upstream_id): record for record in records}
    seen: dict[str, dict[str, Any]] = {}
    tracing.about(None)  # the listing is about no one batch
    try:
        _page_provider(provider, wanted, seen, deadline, report)
    except Exception:
        report.errors += 1
        logger.warning("watcher: listing failed; retrieving one by one", extra={"provider": provider})
    for upstream_id, record in wanted.items():
        if _out_of_time(deadline, report):
            return
        _guarded(report, _record, id_map, record, seen.get(upstream_id), deadline, report)


def _page_provider(
    provider: str,
    wanted: dict[str, ObjectRecord],
    seen: dict[str, dict[str, Any]],
    deadline: Deadline,
    report: PassReport,
) -> None:
    """Pages of the provider's batches, newest first, until each wanted one was seen, the
    pages end, or they reach past the oldest wanted batch's creation."""
    oldest = min(record.created_at for record in wanted.values()) - adoption.CLOCK_SKEW_SECONDS
    after: str | None = None
    while len(seen) < len(wanted) and not deadline.passed():
        query: dict[str, Any] = {"limit": PAGE_LIMIT}
        if after is not None:
            query["after"] = after
        page = client_for(provider).list_batches(timeout=deadline.provider_timeout(), **query)
        report.list_calls += 1
        data = [upstream for upstream in page.get("data") or () if isinstance(upstream, dict)]
        for upstream in data:
            if str(upstream.get("id")) in wanted:
                seen[str(upstream["id"])] = upstream
        if not page.get("has_more") or not data:
            return
        if int(data[-1].get("created_at") or 0) < oldest:
            return
        after = str(data[-1]["id"])


def _record(
    id_map: IdMap,
    record: ObjectRecord,
    upstream: dict[str, Any] | None,
    deadline: Deadline,
    report: PassReport,
) -> None:
    tracing.about(record.id)
    if upstream is None:
        assert record.upstream_id is not None
        timeout = deadline.provider_timeout()
        try:
            upstream = client_for(record.provider).retrieve_batch(record.upstream_id, timeout=timeout)
        except Exception as exc:
            if not missing_upstream.is_missing(exc):
                raise
            if missing_upstream.note_missing(id_map, record):
                report.ended_missing += 1
            return
        finally:
            report.retrieves += 1
    missing_upstream.forget_missing(record)
    if batches.record_upstream(id_map, record, upstream)[1]:
        report.changed += 1


# A plan started from its create: split, then the first parts submitted (then the passes).
START_STEPS = 2


def start_plan(batch_id: str, deadline: Deadline, id_map: IdMap | None = None) -> PassReport:
    """The first steps of one planned batch, run when batches_create invokes the watcher for it
    (asynchronously: the client does not wait); a batch that is not a plan, or is final, is left
    to the passes. A step that fails is the next pass's to repeat, as in a pass."""
    id_map = id_map or IdMap()
    report = PassReport()
    for _ in range(START_STEPS):
        record = id_map.get_consistent(batch_id)
        if record is None or not plan.is_planned(record) or record.status in TERMINAL_BATCH_STATUSES:
            break
        report.batches_seen += 1
        changed = report.changed
        _guarded(report, _advance_plan, id_map, record, report)
        if report.changed == changed or _out_of_time(deadline, report):
            break
    logger.info("plan started", extra={"batch_id": batch_id, **report.as_dict()})
    return report


def _advance_plan(id_map: IdMap, record: ObjectRecord, report: PassReport) -> None:
    from gateway.service.plan import runner  # loaded with the first planned batch

    tracing.about(record.id)
    if runner.advance(id_map, record):
        report.changed += 1
    if record.settlement:
        report.settled += 1


def _adopt_batch(id_map: IdMap, record: ObjectRecord, report: PassReport) -> None:
    tracing.about(record.id)
    batches.adopt_pending_batch(record, id_map)
    _count_adoption(record, report)


def _count_adoption(record: ObjectRecord, report: PassReport) -> None:
    if pending.is_pending(record):
        return
    report.adopted += 1
    if record.upstream_id is None:  # not attached to a provider object: given up
        report.given_up += 1


def _settle(record: ObjectRecord, report: PassReport) -> None:
    """A finished batch not settled: its settlement failed, or its settler died (its claim
    goes stale after settlement.CLAIM_STALE_SECONDS). Settled from the stored object."""
    from gateway.service.settlement import settle_if_finished

    settle_if_finished(record, Batch.model_validate(record.object))
    if record.settlement:
        report.settled += 1


def _unwatch(id_map: IdMap, record: ObjectRecord, report: PassReport) -> None:
    """Settled, yet still in the index: a snapshot that raced the settlement wrote it back."""
    if watch_queries.unwatch(id_map, record):
        report.unwatched += 1


def _backfill_once(id_map: IdMap, deadline: Deadline, report: PassReport) -> None:
    """Items written before the by_watch index existed get its attribute, once per table."""
    if watch_queries.backfill_done(id_map):
        return
    given = watch_queries.backfill(id_map, lambda: _out_of_time(deadline, report))
    if given is not None:
        report.backfilled = given
        logger.info("watcher: items written before the by_watch index backfilled", extra={"n": given})


def _finish_file(id_map: IdMap, record: ObjectRecord, report: PassReport) -> None:
    if not needs_watching(record):
        _unwatch(id_map, record, report)
    elif pending.is_pending(record):
        tracing.about(record.id)
        files.adopt_pending_file(record, id_map)
        _count_adoption(record, report)
    elif transfer_failure.finish_stale_transfer(record.id, id_map) is not None:
        report.files_finished += 1


def _republish(id_map: IdMap, report: PassReport) -> None:
    report.republished += batch_events.publish(outbox.left_behind(OUTBOX_GRACE_SECONDS), id_map)


def _sweep_kept(id_map: IdMap, deadline: Deadline, report: PassReport) -> None:
    swept = kept_sweep.sweep(id_map, deadline)
    report.kept_listed, report.kept_removed = swept.listed, swept.removed
    _report_violations(swept.left, report)


def _check_books(id_map: IdMap, touched: list[ObjectRecord], report: PassReport) -> None:
    _report_violations(books.check_pass(id_map, touched), report)


def _report_violations(found: dict[str, list[str]], report: PassReport) -> None:
    report.violations += books.log_violations(found)
    for invariant, ids in found.items():
        if ids:
            emit(metric_names.INVARIANT_VIOLATIONS, len(ids), invariant=invariant)


def _guarded(report: PassReport, step: Any, *args: Any) -> None:
    """One object's step; its failure is logged and counted, and the pass goes on."""
    try:
        step(*args)
    except Exception:
        report.errors += 1
        logger.exception("watcher: a step failed; the next pass retries it", extra={"step": step.__name__})


def _out_of_time(deadline: Deadline, report: PassReport) -> bool:
    if deadline.passed():
        report.stopped_early = True
    return report.stopped_early
