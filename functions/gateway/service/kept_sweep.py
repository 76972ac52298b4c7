"""The watcher's sweep of what the gateway keeps in its bucket: the notes and kept files the books
find stray (service.books: `stray_notes`, `unnamed_kept_files`, past their grace) removed, so
that those invariants hold after a pass.

A pass reads a bounded window of the bucket, per deployment that keeps files (books.
kept_deployments): one list call of at most WINDOW_KEYS objects after a cursor kept in the
table (`books#kept-cursor#<deployment>`, back to the start once a listing ends, written only
when it moves), so every kept object is looked at once every (objects / WINDOW_KEYS) passes,
and, unless that window was the whole listing, one list call of its pending notes (a folder
this sweep keeps small: the creates in flight). Each object needs at most two items read (its
record, or its provider id's reverse item and the record it names), read for all the windows
together in BatchGetItems of 100; one past its grace that no key names an owner of costs a GET
or HEAD more (a note's body, a file's metadata).

Each removal is checked again just before, with fresh strongly consistent reads, and is
conditional on the ETag listed: a record that attached or went pending meanwhile keeps its
object, and a note written again since the listing is never removed. Safe to repeat: a second
sweep finds the object gone (a conditional delete of a missing key answers as changed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.observability import logger
from gateway.runtime import resources
from gateway.service import books
from gateway.service.deadline import Deadline
from gateway.storage import books_queries
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap
from gateway.storage.kept_objects import NOTE_KINDS, PENDING_FOLDER, KeptBucket, KeptObject

WINDOW_KEYS = 500
CURSOR_PREFIX = "books#kept-cursor#"
_AFTER = "after"
_PK = resources.TABLE_PARTITION_KEY


@dataclass
class SweepReport:
    listed: int = 0
    removed: int = 0
    # the stray objects left (their removal failed, or the pass ran out of time), by invariant
    left: dict[str, list[str]] = field(default_factory=dict)


def sweep(
    id_map: IdMap, deadline: Deadline, now: float | None = None, bucket: KeptBucket | None = None
) -> SweepReport:
    report = SweepReport()
    deployments = books.kept_deployments()
    if not deployments:
        return report
    bucket = bucket or KeptBucket()
    at = time.time() if now is None else now
    after = cursors(id_map, deployments)
    listed: dict[str, KeptObject] = {}
    moved: dict[str, str | None] = {}
    for deployment in deployments:
        if deadline.passed():
            break
        window, moved[deployment] = bucket.page(deployment, after=after.get(deployment), max_keys=WINDOW_KEYS)
        if after.get(deployment) is not None or moved[deployment] is not None:
            # the window is not the whole listing: the creates in flight are read every pass
            window += bucket.page(deployment, folder=PENDING_FOLDER)[0]
        listed.update((kept.key, kept) for kept in window)
    report.listed = len(listed)
    left: list[KeptObject] = []
    for kept in _stray(id_map, bucket, list(listed.values()), at):
        if deadline.passed():
            left.append(kept)
            continue
        try:
            report.removed += _remove(id_map, bucket, kept, at)
        except Exception:
            logger.exception("books: a stray kept object not removed", extra={"key": kept.key})
            left.append(kept)
    for deployment, next_after in moved.items():
        if next_after != after.get(deployment):
            save_cursor(id_map, deployment, next_after)
    report.left = {
        name: keys
        for name, keys in (
            ("stray_notes", sorted(kept.key for kept in left if kept.kind in NOTE_KINDS)),
            ("unnamed_kept_files", sorted(kept.key for kept in left if kept.kind not in NOTE_KINDS)),
        )
        if keys
    }
    return report


def _stray(id_map: IdMap, bucket: KeptBucket, objects: list[KeptObject], now: float) -> list[KeptObject]:
    snapshot = books.Books()
    # one within its grace is not stray whatever the table says: nothing read for it
    books.read_kept(snapshot, id_map, bucket, [kept for kept in objects if books.past_grace(kept, now)], now)
    return books.stray_kept(snapshot, now)


def _remove(id_map: IdMap, bucket: KeptBucket, kept: KeptObject, now: float) -> bool:
    """Remove `kept` if it is still stray by fresh reads, and unchanged since it was listed."""
    if not _stray(id_map, bucket, [kept], now):
        return False
    removed = bucket.delete_if_unchanged(kept)
    if removed:
        logger.info("books: stray kept object removed", extra={"kind": kept.kind, "key": kept.key})
    return removed


# The cursor ----------------------------------------------------------------------------------
def cursors(id_map: IdMap, deployments: list[str]) -> dict[str, str]:
    """Each deployment's cursor (absent: the start), read at once."""
    items = books_queries.items_by_key(id_map.table, {CURSOR_PREFIX + name for name in deployments})
    return {
        key.removeprefix(CURSOR_PREFIX): str(item[_AFTER]["S"])
        for key, item in items.items()
        if _AFTER in item
    }


def save_cursor(id_map: IdMap, deployment: str, after: str | None) -> None:
    """Where the next pass lists from (None: the start). Two passes at once may each move it:
    either way every object is reached."""
    item: dict[str, Any] = {_PK: {"S": CURSOR_PREFIX + deployment}}
    if after is not None:
        item[_AFTER] = {"S": after}
    dynamodb_client().put_item(TableName=id_map.table, Item=item)
