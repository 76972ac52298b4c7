"""The kept objects as the books see them (storage.kept_objects, service.books invariant 7): each
writer's key is read back as its kind, who owns a note or a kept file, the graces, and the
watcher's sweep reading a bounded window of the bucket per pass, every object reached in turn."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from gateway.providers.batch_notes import BatchNotes
from gateway.providers.bedrock.client import BedrockClient
from gateway.providers.kept_files import KeptFiles
from gateway.providers.vertex.client import VertexClient
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.service import books, kept_sweep
from gateway.service.deadline import Deadline
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.kept_objects import (
    BATCH_NOTE,
    JOB_NOTE,
    KEPT_FILE,
    PENDING_NOTE,
    KeptBucket,
    KeptObject,
    classify,
)

DEP = "claude"
NOW = 1_800_000_000.0
OLD = NOW - books.KEPT_FILE_GRACE_SECONDS - 1  # past every grace


def test_each_writers_key_is_read_back_as_its_kind() -> None:
    notes = BatchNotes(DEP, bucket="b", client=object())
    named = SimpleNamespace(name=DEP)
    written = {
        notes.pending_prefix + "batch_abc.json": (PENDING_NOTE, "batch_abc"),
        notes.notes_prefix + "msgbatch_01.json": (BATCH_NOTE, "msgbatch_01"),
        KeptFiles(DEP, bucket="b", client=object()).key("kfile-0123"): (KEPT_FILE, "kfile-0123"),
        VertexClient._note_key(named, "gw-abc"): (JOB_NOTE, "gw-abc"),  # type: ignore[arg-type]
        BedrockClient._note_key(named, "gateway-batch-x"): (JOB_NOTE, "gateway-batch-x"),  # type: ignore[arg-type]
    }
    for key, (kind, name) in written.items():
        found = classify(DEP, key, NOW, '"etag"')
        assert found is not None and (found.kind, found.name) == (kind, name), key
    assert classify(DEP, notes.pending_prefix + "batch_abc.json", NOW, "e").named_id == "batch_abc"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "key",
    [
        f"kept-files/{DEP}/something-else/x.json",
        f"kept-files/{DEP}/batch-notes/a/b.json",
        f"kept-files/{DEP}/files/",
        f"kept-files/{DEP}/vertex-jobs/gw-a/input.jsonl",
        f"kept-files/{DEP}-other/files/kfile-1",
        f"kept-files/{DEP}x/files/kfile-1",
    ],
)
def test_a_key_of_no_known_shape_is_none_of_the_books(key: str) -> None:
    assert classify(DEP, key, NOW, "e") is None


def record(
    record_id: str, *, kind: str = "batch", upstream_id: str | None = None, **state: Any
) -> ObjectRecord:
    status = state.pop("status", "in_progress")
    return ObjectRecord(
        id=record_id,
        kind=kind,
        owner="key-a",
        provider=DEP,
        created_at=int(OLD),
        object={"id": record_id, "status": status},
        upstream_id=upstream_id,
        state=state,
    )


def kept(kind: str, name: str, *, named_id: str | None = None, at: float = OLD) -> KeptObject:
    return KeptObject(f"k/{kind}/{name}", DEP, kind, name, at, "e", named_id)


def owned(
    obj: KeptObject, *records: ObjectRecord, reverse: dict[str, str] | None = None, discarded: str = ""
) -> bool:
    found = books.Books(records={r.id: r for r in records}, discarded={discarded} - {""})
    found.reverse = {(DEP, upstream): gateway_id for upstream, gateway_id in (reverse or {}).items()}
    return books.kept_owned(found, obj)


PENDING = {"pending": {"attempted_at": int(OLD)}}


def test_a_pending_note_is_its_creates_while_the_create_may_adopt() -> None:
    note = kept(PENDING_NOTE, "batch_a", named_id="batch_a")
    assert owned(note, record("batch_a", **PENDING))
    assert not owned(note, record("batch_a"))  # given up
    assert not owned(note, record("batch_a", upstream_id="msgbatch_1"))  # attached: its own note is written
    assert not owned(note)  # discarded
    assert owned(note, record("batch_a", kind="batch_part", status="submitting"))
    assert not owned(note, record("batch_a", kind="batch_part", status="ready"))  # sent back for quota


def test_a_provider_batchs_note_is_the_record_attached_to_that_batch() -> None:
    note = kept(BATCH_NOTE, "msgbatch_1")
    assert owned(note, record("batch_a", upstream_id="msgbatch_1"), reverse={"msgbatch_1": "batch_a"})
    assert owned(note, record("batch_a", **PENDING), reverse={"msgbatch_1": "batch_a"})  # claim in progress
    assert not owned(note, record("batch_a", upstream_id="msgbatch_2"), reverse={"msgbatch_1": "batch_a"})
    assert not owned(note)
    tagged = kept(BATCH_NOTE, "msgbatch_1", named_id="batch_b")  # no reverse item yet: the tag's record
    assert owned(tagged, record("batch_b", **PENDING))
    assert not owned(tagged, record("batch_b"))


def test_a_jobs_note_is_the_record_its_body_names_attached_or_pending() -> None:
    note = kept(JOB_NOTE, "gw-abc", named_id="batch_a")
    assert owned(note, record("batch_a", upstream_id="job-1"))
    assert owned(note, record("batch_a", **PENDING))
    assert not owned(note, record("batch_a"))  # given up: its job was never made
    assert not owned(note, discarded="batch_a")  # refused: no job made
    assert owned(note)  # no item at all: a job of it may exist, and the adapter lists need its note
    assert owned(kept(JOB_NOTE, "gw-abc"), record("batch_a", upstream_id="job-1"))  # names none


def test_a_kept_file_is_the_file_record_its_id_maps_to() -> None:
    kfile = kept(KEPT_FILE, "kfile-1")
    assert owned(kfile, record("file-a", kind="file", upstream_id="kfile-1"), reverse={"kfile-1": "file-a"})
    assert owned(kfile, reverse={"kfile-1": "file-a"})  # mapped, record not written yet
    assert not owned(
        kfile, record("file-a", kind="file", upstream_id="kfile-2"), reverse={"kfile-1": "file-a"}
    )
    assert not owned(kfile)
    uploading = kept(KEPT_FILE, "kfile-1", named_id="file-a")  # its upload's record still pending
    assert owned(uploading, record("file-a", kind="file", **PENDING))
    assert not owned(uploading, record("file-a", kind="file"))


def test_only_objects_past_their_grace_break_the_invariants() -> None:
    fresh_note = kept(PENDING_NOTE, "batch_new", named_id="batch_new", at=NOW - books.NOTE_GRACE_SECONDS + 1)
    old_note = kept(PENDING_NOTE, "batch_old", named_id="batch_old", at=NOW - books.NOTE_GRACE_SECONDS - 1)
    fresh_file = kept(KEPT_FILE, "kfile-new", at=NOW - books.KEPT_FILE_GRACE_SECONDS + 1)
    old_file = kept(KEPT_FILE, "kfile-old", at=NOW - books.KEPT_FILE_GRACE_SECONDS - 1)
    found = books.violations(books.Books(kept=[fresh_note, old_note, fresh_file, old_file]), NOW)
    assert found == {"stray_notes": [old_note.key], "unnamed_kept_files": [old_file.key]}
    assert books.violations(books.Books(), NOW) == {}  # not read: nothing to say


@pytest.fixture
def kept_deployment(aws: None, kept_bucket: None) -> Iterator[KeptBucket]:
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {DEP: {"type": "anthropic", "api_base": "http://127.0.0.1:9"}}
    )
    reset_settings()
    yield KeptBucket()
    reset_settings()


def test_a_pass_reads_a_window_after_its_cursor_and_every_object_is_reached(
    kept_deployment: KeptBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = BatchNotes(DEP)
    for number in range(5):  # notes of provider batches no record is attached to
        notes.put(f"msgbatch_{number}", {"total": 1})
    monkeypatch.setattr(kept_sweep, "WINDOW_KEYS", 2)
    later = NOW + 10 * books.KEPT_FILE_GRACE_SECONDS  # the notes' real times are long past
    listed, removed = [], []
    for _ in range(3):
        report = kept_sweep.sweep(IdMap(), Deadline.after(60), now=later)
        listed.append(report.listed)
        removed.append(report.removed)
    assert listed == [2, 2, 1] and removed == [2, 2, 1]
    assert kept_sweep.cursors(IdMap(), [DEP]) == {}  # the listing ended: back to the start
    assert books.audit(now=later) == {}


def test_an_audit_of_another_processs_table_reads_no_bucket_it_was_not_given(
    kept_deployment: KeptBucket,
) -> None:
    BatchNotes(DEP).put("msgbatch_stray", {"total": 1})
    later = NOW + 10 * books.KEPT_FILE_GRACE_SECONDS
    other = IdMap(resources.DEFAULT_TABLE_NAME, client=boto3.client("dynamodb"))
    assert books.audit(other, now=later) == {}
    assert books.audit(other, now=later, bucket=kept_deployment) == {
        "stray_notes": [BatchNotes(DEP).notes_prefix + "msgbatch_stray.json"]
    }


def test_what_an_object_names_inside_is_read_from_its_body_or_metadata(kept_deployment: KeptBucket) -> None:
    s3 = boto3.client("s3")
    bucket = kept_deployment.bucket
    note_key = BedrockClient._note_key(SimpleNamespace(name=DEP), "gateway-batch-a")  # type: ignore[arg-type]
    s3.put_object(Bucket=bucket, Key=note_key, Body=json.dumps({"gateway_batch_id": "batch_a"}).encode())
    BatchNotes(DEP).put("msgbatch_1", {"metadata": {"gateway_batch_id": "batch_b", "x": "y"}})
    BatchNotes(DEP).put("msgbatch_2", {"metadata": None})
    kept_file = KeptFiles(DEP).put_file("kfile-1", [b"{}\n"], filename="file-abc.in.jsonl", purpose="batch")
    results = KeptFiles(DEP).put_file("kfile-2", [b"{}\n"], filename="results", purpose="batch_output")
    found = {obj.name: kept_deployment.named_id(obj) for obj in kept_deployment.every(DEP)}
    assert found == {
        "gateway-batch-a": "batch_a",
        "msgbatch_1": "batch_b",
        "msgbatch_2": None,
        kept_file["id"]: "file-abc",
        results["id"]: None,
    }


def test_a_pass_costs_two_list_calls_and_reads_nothing_of_what_is_within_its_grace(
    kept_deployment: KeptBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.storage.dynamo import dynamodb_client
    from gateway.storage.s3 import s3_client

    for number in range(40):  # named by nothing, but within their grace: never read, never removed
        KeptFiles(DEP).put_file(f"kfile-{number:03d}", [b"{}\n"], filename="f.jsonl", purpose="batch")
    for number in range(3):
        BatchNotes(DEP).put_pending(f"batch_{number}", {"total": 1})
    monkeypatch.setattr(kept_sweep, "WINDOW_KEYS", 10)
    calls = _counted(monkeypatch, s3_client(), dynamodb_client())
    first = kept_sweep.sweep(IdMap(), Deadline.after(60))
    assert first.listed == 10  # the window from the start: the 3 pending notes (listed twice) and 7 files
    assert calls["list_objects_v2"] == 2
    assert calls["batch_get_item"] == 1 and calls["get_item"] == 0  # the cursors, at once
    second = kept_sweep.sweep(IdMap(), Deadline.after(60))
    assert second.listed == 13  # the pending notes, and the next 10 files after the cursor
    assert calls["list_objects_v2"] == 4
    assert calls["batch_get_item"] == 2 and calls["get_item"] == 0
    assert calls["get_object"] == calls["head_object"] == 0  # nothing past its grace: nothing opened
    assert first.removed == second.removed == 0


def test_past_their_grace_the_windows_objects_are_read_a_hundred_at_once(
    kept_deployment: KeptBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.storage.dynamo import dynamodb_client
    from gateway.storage.s3 import s3_client

    for number in range(150):
        kept_id = f"kfile-{number:03d}"
        KeptFiles(DEP).put_file(kept_id, [b"{}\n"], filename="f.jsonl", purpose="batch")
        IdMap().put(record(f"file-{number:03d}", kind="file", upstream_id=kept_id))  # and its reverse item
    calls = _counted(monkeypatch, s3_client(), dynamodb_client())
    later = time.time() + 2 * books.KEPT_FILE_GRACE_SECONDS
    report = kept_sweep.sweep(IdMap(), Deadline.after(60), now=later)
    assert report.listed == 150 and report.removed == 0  # each named by its reverse item's record
    # the cursor; the 150 reverse items; the 150 records they name: 1 + 2 + 2 BatchGetItems
    assert calls["batch_get_item"] == 5 and calls["get_item"] == 0
    assert calls["get_object"] == calls["head_object"] == 0


def _counted(monkeypatch: pytest.MonkeyPatch, *clients: Any) -> dict[str, int]:
    calls = {"list_objects_v2": 0, "get_item": 0, "batch_get_item": 0, "get_object": 0, "head_object": 0}
    for client in clients:
        for name in calls:
            if hasattr(client, name):
                real = getattr(client, name)

                def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                    calls[_name] += 1
                    return _real(*args, **kwargs)

                monkeypatch.setattr(client, name, counted)
    return calls


def test_a_notes_body_is_read_once_per_etag_pass_after_pass(
    kept_deployment: KeptBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.storage.s3 import s3_client

    live = record("batch_live", upstream_id="job-1")
    IdMap().put(live)
    key = BedrockClient._note_key(SimpleNamespace(name=DEP), "live")  # type: ignore[arg-type]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=kept_deployment.bucket, Key=key, Body=json.dumps({"gateway_batch_id": live.id}))
    calls = _counted(monkeypatch, s3_client())
    later = time.time() + 2 * books.KEPT_FILE_GRACE_SECONDS
    for _ in range(3):  # the note names a live record: kept, its body read on the first pass only
        assert kept_sweep.sweep(IdMap(), Deadline.after(60), now=later).removed == 0
    assert calls["get_object"] == 1
    given_up = record("batch_given_up")  # written again: a new ETag, read again, now stray
    IdMap().put(given_up)  # a create given up: no job
    s3.put_object(Bucket=kept_deployment.bucket, Key=key, Body=json.dumps({"gateway_batch_id": given_up.id}))
    assert kept_sweep.sweep(IdMap(), Deadline.after(60), now=later).removed == 1
    assert calls["get_object"] == 2  # read once for its new ETag (the removal's check included)


def test_a_jobs_note_is_removed_once_its_create_was_given_up_never_while_it_names_a_live_record(
    kept_deployment: KeptBucket,
) -> None:
    s3 = boto3.client("s3")
    named = SimpleNamespace(name=DEP)
    notes = {
        "given-up": record("batch_given_up"),
        "attached": record("batch_attached", upstream_id="job-1"),
        "pending": record("batch_pending", **PENDING),
        "unknown": None,  # names no item: a job of it may exist
    }
    keys = {}
    for token, owner in notes.items():
        if owner is not None:
            IdMap().put(owner)
        keys[token] = BedrockClient._note_key(named, token)  # type: ignore[arg-type]
        gateway_id = owner.id if owner is not None else "batch_unknown"
        s3.put_object(
            Bucket=kept_deployment.bucket, Key=keys[token], Body=json.dumps({"gateway_batch_id": gateway_id})
        )
    later = NOW + 10 * books.KEPT_FILE_GRACE_SECONDS
    assert books.audit(now=later).get("stray_notes") == [keys["given-up"]]
    assert kept_sweep.sweep(IdMap(), Deadline.after(60), now=later).removed == 1
    assert "stray_notes" not in books.audit(now=later)
    left = {obj.name for obj in kept_deployment.every(DEP)}
    assert left == {"attached", "pending", "unknown"}
