"""The books: what must hold of the whole table once the watcher had a pass to converge it.

One small function per invariant, each returning the ids that break it (empty: it holds):
1. `unsettled_finished`: every batch in a final status is settled (after a pass's grace).
2. `spend_off`, `holds_off`, `headroom_off`, `unheld_batches`: a key's spend is the sum of its
   spend entries, its holds are the holds of its live batches (each held batch live: not settled,
   not discarded; each live started batch held), headroom = max_budget - spend - holds.
3. `unwatched_pending`: every pending record is one the watcher's queries return.
4. `stale_outbox`: no outbox event older than a pass.
5. `shared_upstream`, `stray_reverse`, `foreign_objects`: a provider object maps to one gateway
   id, that id's record is attached to it, and an id a batch names (its input, output and error
   files) belongs to the batch's owner.
6. `orphan_parts`, `plan_counts_off`, `stuck_parts`, `plan_files_left`: every part of a plan
   belongs to one planned batch, a planned batch's counts are its parts' sums, no part is left
   `submitting` (its provider batch unclaimed) past the time its create may still be running,
   and a final plan has no files left in the bucket (one listing of the plan prefix).
7. `stray_notes`, `unnamed_kept_files`: every note the gateway keeps on a batch (storage.
   kept_objects) belongs to a batch record that may still adopt a provider batch or is attached
   to the one the note is of, and every kept file is a live gateway file's, each after a grace.

They read a `Books` snapshot: `audit` builds one from the whole table and every kept object
(tests, audits); `check_pass` from what a watcher pass touched (its records now, their owners'
budgets and held batches, the outbox's oldest events), so a pass's check costs a few reads per
record (at most PASS_CHECK_LIMIT records, sampled), not the history. The kept objects a pass
reads are a window of the bucket (service.kept_sweep), checked where they are read.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from gateway.http.auth import MASTER_KEY_ID
from gateway.models.batches import TERMINAL_BATCH_STATUSES
from gateway.observability import logger
from gateway.runtime import resources
from gateway.service import adoption
from gateway.storage import books_queries, outbox, pending, plan_files, watch_queries
from gateway.storage.books_queries import TypedItem
from gateway.storage.budgets import Budget, budget_pk
from gateway.storage.dynamo import unmarshal
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.kept_objects import BATCH_NOTE, JOB_NOTE, KEPT_FILE, NOTE_KINDS, KeptBucket, KeptObject
from gateway.storage.watch import PLAN, UPSTREAM_OPEN

# The watcher runs every minute (cdk.json watch_interval_minutes); an event is republished once
# it is OUTBOX_GRACE_SECONDS old (service.watcher). One pass: what a pass must have converged.
WATCH_INTERVAL_SECONDS = 60
OUTBOX_GRACE_SECONDS = 10
ONE_PASS_SECONDS = WATCH_INTERVAL_SECONDS + OUTBOX_GRACE_SECONDS
_REVERSE_PREFIX = "upstream#"
_LOGGED_IDS = 50  # a log line names at most this many ids of one invariant
# The records of a pass checked at most (each costs a few items read: it, its files, its reverse item).
PASS_CHECK_LIMIT = 100


@dataclass
class Books:
    records: dict[str, ObjectRecord] = field(default_factory=dict)  # objects, by gateway id
    discarded: set[str] = field(default_factory=set)  # records a refused create dropped
    budgets: dict[str, Budget] = field(default_factory=dict)  # by key id
    # key id -> (settled_at, cost) of each spend entry; None: not read (spend not checked)
    spend: dict[str, list[tuple[int, Decimal]]] | None = None
    reverse: dict[tuple[str, str], str] = field(default_factory=dict)  # (provider, upstream id) -> id
    outbox_created_us: dict[str, int] = field(default_factory=dict)  # event id -> recorded at (µs)
    watched: set[str] | None = None  # ids the watcher's queries return; None: not read
    kept: list[KeptObject] | None = None  # notes and kept files in the bucket; None: not read
    plan_files: set[str] | None = None  # batches with files under the plan prefix; None: not read

    def add(self, item: TypedItem) -> None:
        """File one table item (as DynamoDB types it) where the invariants look for it."""
        key = item[resources.TABLE_PARTITION_KEY]["S"]
        if key.startswith(_REVERSE_PREFIX):
            provider, _, upstream_id = key[len(_REVERSE_PREFIX) :].partition("#")
            if "gateway_id" in item:
                self.reverse[(provider, upstream_id)] = item["gateway_id"]["S"]
        elif key.startswith(outbox.KEY_PREFIX):
            self.outbox_created_us[key[len(outbox.KEY_PREFIX) :]] = int(
                item["created_key"]["S"].split("#", 1)[0]
            )
        elif key.startswith("budget#") and "key_id" in item:
            budget = Budget.from_item(item)
            self.budgets[budget.key_id] = budget
        elif key.startswith("spend#") and self.spend is not None:
            self.spend.setdefault(item["key_id"]["S"], []).append(
                (int(item["settled_at"]["N"]), Decimal(item["cost"]["N"]))
            )
        elif "object" in item and "owner" in item and "created_key" in item:
            if "kind" in item:
                self.records[key] = ObjectRecord.from_item(unmarshal(item))
            else:
                self.discarded.add(key)


# 1. Finished batches are settled ---------------------------------------------------------------
def finished_at(record: ObjectRecord) -> int:
    """When the batch reached its final status (the object's `<status>_at`), else its creation."""
    stamp = record.object.get(f"{record.status}_at")
    return int(stamp) if isinstance(stamp, int | float) else record.created_at


def settle_due(record: ObjectRecord, grace: float) -> float:
    """When a finished batch must be settled: one pass after it ended. A batch cancelled while its
    create was pending waits for its provider batch until the create is given up; one cancelled
    at the provider after that waits for the provider batch to end (it stays watched meanwhile,
    which `unwatched_pending` checks)."""
    if pending.is_pending(record):
        return adoption.attempted_at(record) + adoption.ABANDON_AFTER_SECONDS + grace
    if record.state.get(UPSTREAM_OPEN):
        return float("inf")
    return finished_at(record) + grace


def unsettled_finished(books: Books, now: float, grace: float = ONE_PASS_SECONDS) -> list[str]:
    return sorted(
        record.id
        for record in books.records.values()
        if record.kind == "batch"
        and record.status in TERMINAL_BATCH_STATUSES
        and record.settlement is None
        and now > settle_due(record, grace)
    )


# 2. Budgets balance ----------------------------------------------------------------------------
def spend_off(books: Books) -> list[str]:
    """Keys whose spend is not the sum of their spend entries. With a budget period, spend
    counts the entries settled since the period began (a reset is applied lazily, and a
    settlement racing a reset may land on either side): at least those, at most all."""
    if books.spend is None:
        return []
    off = []
    for key_id, budget in books.budgets.items():
        entries = books.spend.get(key_id, [])
        total = sum((cost for _, cost in entries), Decimal(0))
        if budget.budget_duration is None or budget.reset_at is None:
            if budget.spend != total:
                off.append(key_id)
            continue
        period_start = budget.reset_at - budget.budget_duration
        this_period = sum((cost for settled, cost in entries if settled >= period_start), Decimal(0))
        if not this_period <= budget.spend <= total:
            off.append(key_id)
    return sorted(off)


def _live(record: ObjectRecord | None) -> bool:
    return record is not None and record.kind == "batch" and record.settlement is None


def _held(record: ObjectRecord) -> Decimal:
    return Decimal(str(record.state.get("hold") or 0))


def holds_off(books: Books) -> list[str]:
    """Keys whose holds are not the holds of their held batches, or that hold a batch that is
    no longer live (settled, discarded or gone): a hold never given back."""
    off = []
    for key_id, budget in books.budgets.items():
        held = [books.records.get(batch_id) for batch_id in budget.held_batches]
        all_live = all(_live(record) for record in held)
        if not all_live or budget.holds != sum((_held(record) for record in held if record), Decimal(0)):
            off.append(key_id)
    return sorted(off)


def headroom_off(books: Books) -> list[str]:
    return sorted(
        key_id
        for key_id, budget in books.budgets.items()
        if budget.headroom != (budget.max_budget or Decimal(0)) - budget.spend - budget.holds
    )


def unheld_batches(books: Books) -> list[str]:
    """Live batches the provider runs (attached) whose owner's budget does not hold them: a
    create always holds before it calls the provider, and only settlement gives a hold back."""
    return sorted(
        record.id
        for record in books.records.values()
        if _live(record)
        and (record.upstream_id is not None or (record.state.get(PLAN) or {}).get("parts") is not None)
        and record.owner != MASTER_KEY_ID
        and record.owner in books.budgets
        and record.id not in books.budgets[record.owner].held_batches
    )


# 3. Pending records are watched ----------------------------------------------------------------
def unwatched_pending(books: Books) -> list[str]:
    if books.watched is None:
        return []
    return sorted(
        record.id
        for record in books.records.values()
        if record.kind in ("batch", "file") and pending.is_pending(record) and record.id not in books.watched
    )


# 4. The outbox drains --------------------------------------------------------------------------
def stale_outbox(books: Books, now: float, grace: float = ONE_PASS_SECONDS) -> list[str]:
    cutoff_us = int((now - grace) * 1_000_000)
    return sorted(
        event_id for event_id, created_us in books.outbox_created_us.items() if created_us < cutoff_us
    )


# 5. Provider objects belong to one gateway id, of the right owner ------------------------------
def shared_upstream(books: Books) -> list[str]:
    """Gateway ids attached to a provider object another gateway id is attached to as well."""
    by_upstream: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in books.records.values():
        if record.upstream_id is not None:
            by_upstream[(record.provider, record.upstream_id)].append(record.id)
    return sorted(gateway_id for ids in by_upstream.values() if len(ids) > 1 for gateway_id in ids)


def stray_reverse(books: Books) -> list[str]:
    """Gateway ids a provider object maps to while that record is attached to another one.
    (A claim whose record is not attached yet, or whose output file is not written yet, is a
    step in progress that its next reader finishes.)"""
    return sorted(
        gateway_id
        for (provider, upstream_id), gateway_id in books.reverse.items()
        if (record := books.records.get(gateway_id)) is not None
        and record.upstream_id is not None
        and (record.provider, record.upstream_id) != (provider, upstream_id)
        # a plan's part keeps the provider batches that refused it for quota (they ended there)
        and upstream_id not in (record.state.get(_EARLIER_UPSTREAM) or ())
    )


def _named_files(record: ObjectRecord) -> Iterable[tuple[str | None, str]]:
    """(upstream id or None, gateway file id) of each file a batch names."""
    input_file = record.state.get("input_file_id") or record.object.get("input_file_id")
    if input_file:
        yield None, str(input_file)
    for upstream_id, gateway_id in (record.state.get("files") or {}).items():
        yield str(upstream_id), str(gateway_id)


def foreign_objects(books: Books) -> list[str]:
    """Files a batch names (input, output, error) that belong to another owner, or whose
    provider object maps to another gateway id: one tenant's batch reaching another's files."""
    found = set()
    for batch in books.records.values():
        if batch.kind != "batch":
            continue
        for upstream_id, file_id in _named_files(batch):
            named = books.records.get(file_id)
            if named is not None and batch.owner != MASTER_KEY_ID and named.owner != batch.owner:
                found.add(file_id)
            mapped = books.reverse.get((batch.provider, upstream_id)) if upstream_id else None
            if mapped is not None and mapped != file_id:
                found.add(file_id)
    return sorted(found)


# 6. A plan's parts: each belongs to one batch, the batch's counts are their sums ---------------
_EARLIER_UPSTREAM = "earlier_upstream_ids"  # service.plan.parts.EARLIER
_RETRY_PART = "retry"  # service.plan.runner.RETRY_PART: a part running lines once more


def _parts_by_batch(books: Books) -> dict[str, list[ObjectRecord]]:
    found: dict[str, list[ObjectRecord]] = defaultdict(list)
    for record in books.records.values():
        if record.kind == "batch_part":
            found[str(record.state.get("batch_id"))].append(record)
    return found


def orphan_parts(books: Books) -> list[str]:
    """Parts whose batch is missing, is not a plan, or counts fewer parts than the part's index."""
    orphans = []
    for batch_id, found in _parts_by_batch(books).items():
        batch = books.records.get(batch_id)
        plan = batch.state.get(PLAN) if batch is not None and batch.kind == "batch" else None
        for part in found:
            count = (plan or {}).get("parts")
            if plan is None or (count is not None and int(part.state.get("index") or 0) >= int(count)):
                orphans.append(part.id)
    return sorted(orphans)


def _count(obj: dict[str, Any], name: str) -> int:
    return int((obj.get("request_counts") or {}).get(name) or 0)


def plan_counts_off(books: Books) -> list[str]:
    """Planned batches (split, every part read) whose request_counts are not their parts' sums:
    total = the original parts' lines, completed = every part's completed; failed = the
    originals' failed less what retry parts completed while the batch runs (at the end at least
    that: the lines that never ran are in the merged error file too)."""
    off = []
    for batch_id, found in _parts_by_batch(books).items():
        batch = books.records.get(batch_id)
        plan = (batch.state.get(PLAN) or {}) if batch is not None else {}
        if batch is None or plan.get("parts") is None or len(found) != int(plan["parts"]):
            continue
        total, completed, failed = (_count(batch.object, name) for name in ("total", "completed", "failed"))
        originals = [part for part in found if not part.state.get(_RETRY_PART)]
        retried = sum(_count(part.object, "completed") for part in found if part.state.get(_RETRY_PART))
        parts_failed = max(0, sum(_count(part.object, "failed") for part in originals) - retried)
        final = batch.status in TERMINAL_BATCH_STATUSES
        if (
            total != sum(int(part.state.get("lines") or 0) for part in originals)
            or completed != sum(_count(part.object, "completed") for part in found)
            or (failed < parts_failed if final else failed != parts_failed)
        ):
            off.append(batch_id)
    return sorted(off)


def stuck_parts(books: Books, now: float, grace: float = ONE_PASS_SECONDS) -> list[str]:
    """Parts left `submitting` past the time the provider may still be making their batch: the
    next pass must have adopted their provider batch or submitted them again (none orphaned)."""
    limit = adoption.ABANDON_AFTER_SECONDS + grace
    return sorted(
        part.id
        for found in _parts_by_batch(books).values()
        for part in found
        if part.object.get("status") == "submitting"
        and now - int((part.state.get("submit") or {}).get("attempted_at") or now) > limit
    )


# 7. What the gateway keeps in its bucket is someone's ----------------------------------------
# A note is the create's until the create can no longer adopt a provider batch: given up, at the
# latest, one pass after ABANDON_AFTER_SECONDS (a record still pending keeps its note whatever
# its age). A kept file is named by its record within the call that keeps it; an hour of
# passes is the margin for a registration that keeps failing (a results file, a merged file).
NOTE_GRACE_SECONDS = adoption.ABANDON_AFTER_SECONDS + ONE_PASS_SECONDS
KEPT_FILE_GRACE_SECONDS = 3600 + ONE_PASS_SECONDS


def may_adopt(record: ObjectRecord) -> bool:
    """Whether a create of `record` may still attach a provider batch (and read its note)."""
    if record.kind == "batch":
        return pending.is_pending(record)
    return record.kind == "batch_part" and record.upstream_id is None and record.status == "submitting"


def note_owned(books: Books, note: KeptObject) -> bool:
    """A pending note: its record may still adopt. A provider batch's note: the record its
    reverse item or its body names is attached to that batch, or may still adopt it. A job's
    note: the record its body names is attached (to the job of its token) or may adopt; one
    naming no item at all is left be: Bedrock's and Vertex's lists need the note of every job
    of the deployment, and only a record given up or discarded proves its job was never made."""
    if note.kind == JOB_NOTE and note.named_id not in books.records and note.named_id not in books.discarded:
        return True
    candidates = [books.records.get(note.named_id or "")]
    if note.kind == BATCH_NOTE:
        candidates.append(books.records.get(books.reverse.get((note.deployment, note.name)) or ""))
    for record in candidates:
        if record is None:
            continue
        attached = record.upstream_id is not None and (
            note.kind == JOB_NOTE or record.upstream_id == note.name
        )
        if attached or may_adopt(record):
            return True
    return False


def file_named(books: Books, kept: KeptObject) -> bool:
    """The file record its provider id maps to holds it (a mapping whose record is not written
    yet is a registration its next reader finishes), or the record it was uploaded for is still
    pending (its adoption may attach it)."""
    owner_id = books.reverse.get((kept.deployment, kept.name))
    if owner_id is not None:
        owner = books.records.get(owner_id)
        return owner is None or (owner.kind == "file" and owner.upstream_id == kept.name)
    uploader = books.records.get(kept.named_id or "")
    return uploader is not None and uploader.kind == "file" and pending.is_pending(uploader)


def kept_owned(books: Books, kept: KeptObject) -> bool:
    return note_owned(books, kept) if kept.kind in NOTE_KINDS else file_named(books, kept)


def _grace(kept: KeptObject) -> float:
    return NOTE_GRACE_SECONDS if kept.kind in NOTE_KINDS else KEPT_FILE_GRACE_SECONDS


def past_grace(kept: KeptObject, now: float) -> bool:
    """Whether `kept` is old enough to be stray (a younger one may belong to a write in flight)."""
    return now - kept.modified_at > _grace(kept)


def stray_kept(books: Books, now: float) -> list[KeptObject]:
    """The kept objects past their grace that nobody owns (what the watcher's sweep removes)."""
    return [kept for kept in books.kept or () if past_grace(kept, now) and not kept_owned(books, kept)]


def stray_notes(books: Books, now: float) -> list[str]:
    return sorted(kept.key for kept in stray_kept(books, now) if kept.kind in NOTE_KINDS)


def unnamed_kept_files(books: Books, now: float) -> list[str]:
    return sorted(kept.key for kept in stray_kept(books, now) if kept.kind == KEPT_FILE)


def read_kept(
    books: Books,
    id_map: IdMap,
    bucket: KeptBucket,
    objects: Iterable[KeptObject],
    now: float,
    *,
    read_table: bool = True,
) -> None:
    """File `objects` in `books` with what their invariants need: the records and reverse items
    their keys name (read unless `read_table` is False: the books hold the whole table), and for
    each past its grace that no key names an owner of (and each job's note: only its body names
    its record), what it names inside (a note's body, a kept file's metadata: one GET or HEAD)."""
    objects = list(objects)
    if read_table:
        _read(books, id_map, _keys_named(objects) - set(books.records))
        owners = {books.reverse.get((kept.deployment, kept.name)) for kept in objects}
        _read(books, id_map, {owner for owner in owners if owner} - set(books.records))
    resolved = []
    for kept in objects:
        if (
            past_grace(kept, now)
            and kept.named_id is None
            and (kept.kind == JOB_NOTE or not kept_owned(books, kept))
        ):
            kept = replace(kept, named_id=bucket.named_id(kept))
        resolved.append(kept)
    if read_table:
        _read(books, id_map, {kept.named_id for kept in resolved if kept.named_id} - set(books.records))
    books.kept = [*(books.kept or ()), *resolved]


def _keys_named(objects: Iterable[KeptObject]) -> set[str]:
    keys = set()
    for kept in objects:
        if kept.named_id:
            keys.add(kept.named_id)
        if kept.kind in (BATCH_NOTE, KEPT_FILE):
            keys.add(f"{_REVERSE_PREFIX}{kept.deployment}#{kept.name}")
    return keys


def kept_deployments() -> list[str]:
    """The provider deployments whose files (and notes on batches) the gateway keeps."""
    from gateway.runtime.settings import get_settings

    return sorted(name for name, deployment in get_settings().providers.items() if deployment.keeps_files)


def plan_files_left(books: Books) -> list[str]:
    """Final planned batches whose plan files (their parts' indexes) are still in the bucket:
    the finish deletes them before it writes the batch final."""
    if books.plan_files is None:
        return []
    return sorted(
        batch_id
        for batch_id in books.plan_files
        if (record := books.records.get(batch_id)) is not None
        and PLAN in record.state
        and record.status in TERMINAL_BATCH_STATUSES
    )


# All of them -----------------------------------------------------------------------------------
INVARIANTS: dict[str, Callable[[Books, float], list[str]]] = {
    "unsettled_finished": unsettled_finished,
    "spend_off": lambda books, _now: spend_off(books),
    "holds_off": lambda books, _now: holds_off(books),
    "headroom_off": lambda books, _now: headroom_off(books),
    "unheld_batches": lambda books, _now: unheld_batches(books),
    "unwatched_pending": lambda books, _now: unwatched_pending(books),
    "stale_outbox": stale_outbox,
    "shared_upstream": lambda books, _now: shared_upstream(books),
    "stray_reverse": lambda books, _now: stray_reverse(books),
    "foreign_objects": lambda books, _now: foreign_objects(books),
    "orphan_parts": lambda books, _now: orphan_parts(books),
    "plan_counts_off": lambda books, _now: plan_counts_off(books),
    "stuck_parts": stuck_parts,
    "stray_notes": stray_notes,
    "unnamed_kept_files": unnamed_kept_files,
    "plan_files_left": lambda books, _now: plan_files_left(books),
}


def violations(books: Books, now: float | None = None) -> dict[str, list[str]]:
    """Each broken invariant with the ids that break it (empty when the books balance)."""
    at = time.time() if now is None else now
    found = {name: check(books, at) for name, check in INVARIANTS.items()}
    return {name: ids for name, ids in found.items() if ids}


def _watched(id_map: IdMap) -> set[str]:
    batches = {record.id for record in watch_queries.watched_batches(id_map)}
    return batches | {record.id for record in watch_queries.waiting_files(id_map)}


def audit(
    id_map: IdMap | None = None, now: float | None = None, bucket: KeptBucket | None = None
) -> dict[str, list[str]]:
    """Every invariant over the whole table (a full Scan) and every kept object of each
    deployment that keeps files (a full listing): for tests and audits, read through `id_map`'s
    table and client and `bucket` (another process's table is audited with its bucket only
    when given it: this process's settings name neither)."""
    own_stores = id_map is None
    id_map = id_map or IdMap()
    at = time.time() if now is None else now
    books = Books(spend={})
    for item in books_queries.every_item(id_map.table, id_map.client):
        books.add(item)
    books.watched = _watched(id_map)
    deployments = kept_deployments() if own_stores or bucket is not None else []
    if deployments:
        bucket = bucket or KeptBucket()
        every = [kept for deployment in deployments for kept in bucket.every(deployment)]
        read_kept(books, id_map, bucket, every, at, read_table=False)
    if own_stores or bucket is not None:
        books.plan_files = plan_files.batches_with_files(bucket=bucket.bucket if bucket else None)
    return violations(books, at)


def check_pass(
    id_map: IdMap, touched: Iterable[ObjectRecord], now: float | None = None
) -> dict[str, list[str]]:
    """The invariants over what a watcher pass touched, as the table holds it now: its records,
    the files they name, their provider objects' reverse items, their owners' budgets and every
    batch those hold, and the outbox's oldest events. Spend sums are left to `audit` (they read
    every spend entry of a key); the watcher's queries are read again only for a record that
    is still pending."""
    touched_ids = {record.id for record in touched}
    if len(touched_ids) > PASS_CHECK_LIMIT:  # a different sample each pass: all are checked in time
        touched_ids = set(random.sample(sorted(touched_ids), PASS_CHECK_LIMIT))
    books = Books()
    _read(books, id_map, touched_ids)
    _read(books, id_map, _part_ids(books.records.values()))
    named = {file_id for record in books.records.values() for _, file_id in _named_files(record)}
    owners = {record.owner for record in books.records.values() if record.owner != MASTER_KEY_ID}
    reverse_keys = {
        f"{_REVERSE_PREFIX}{record.provider}#{upstream_id}"
        for record in books.records.values()
        for upstream_id in (record.upstream_id, *(record.state.get("files") or {}))
        if upstream_id
    }
    _read(books, id_map, named | reverse_keys | {budget_pk(owner) for owner in owners})
    held = {batch_id for budget in books.budgets.values() for batch_id in budget.held_batches}
    _read(books, id_map, held - set(books.records))
    for event in outbox.left_behind(ONE_PASS_SECONDS):
        books.outbox_created_us[event.event_id] = event.created_us
    if any(pending.is_pending(books.records[record_id]) for record_id in touched_ids & set(books.records)):
        books.watched = _watched(id_map)
    if any(PLAN in books.records[record_id].state for record_id in touched_ids & set(books.records)):
        books.plan_files = plan_files.batches_with_files()
    return violations(books, now)


def _part_ids(records: Iterable[ObjectRecord]) -> set[str]:
    """The part records of the planned batches among `records`."""
    return {
        f"{record.id}_p{index:04d}"
        for record in list(records)
        for index in range(int((record.state.get(PLAN) or {}).get("parts") or 0))
    }


def _read(books: Books, id_map: IdMap, keys: set[str]) -> None:
    for item in books_queries.items_by_key(id_map.table, keys).values():
        books.add(item)


def log_violations(found: dict[str, list[str]]) -> int:
    """One WARNING per broken invariant, naming ids only; how many ids broke one."""
    for name, ids in found.items():
        logger.warning("books: invariant violated", extra={"invariant": name, "ids": ids[:_LOGGED_IDS]})
    return sum(len(ids) for ids in found.values())


def describe(found: dict[str, Any]) -> str:
    """The violations as one readable line (test failures)."""
    return json.dumps(found, sort_keys=True)
