"""Two writers of one batch racing (issue 21 A9b): a snapshot without events (`save_if_changed`)
read before another writer recorded a change never overwrites that change, so neither the newer
object nor its progress event is lost."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gateway.service import batch_events, batches, translate
from gateway.storage.id_map import IdMap, ObjectRecord

from tests.unit.fault_injection.providers import FakeProvider, store_batch


def read(batch_id: str) -> ObjectRecord:
    record = IdMap().get(batch_id)
    assert record is not None
    return record


def test_an_older_snapshot_loses_to_the_object_written_since_it_was_read(aws: None) -> None:
    store_batch(FakeProvider(), 1)
    first, second = read("batch_0001"), read("batch_0001")
    second.object = {**second.object, "request_counts": {"total": 10, "completed": 5, "failed": 0}}
    assert IdMap().save_if_changed(second)
    first.object = {**first.object, "metadata": {"seen": "later"}}  # read before the change above
    assert IdMap().save_if_changed(first) is False
    assert first.object == second.object  # what to serve: the newer stored object
    assert read("batch_0001").object["request_counts"]["completed"] == 5


def test_a_racing_snapshot_neither_undoes_a_progress_nor_makes_its_event_repeat(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = FakeProvider()
    monkeypatch.setattr(batches, "client_for", lambda _provider: provider)
    monkeypatch.setattr(translate, "client_for", lambda _provider: provider)
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(batch_events.event_bus, "put_event", lambda kind, detail: None)
    monkeypatch.setattr(
        batch_events.dispatch, "publish", lambda owner, event, id_map=None: published.append(event)
    )
    store_batch(provider, 1)
    upstream = provider.batches["up-batch-1"]
    upstream["request_counts"] = {"total": 10, "completed": 1, "failed": 0}
    batches.record_upstream(IdMap(), read("batch_0001"), dict(upstream))
    slow = read("batch_0001")  # a retrieve reads the record, then waits on the provider
    fresh = {**upstream, "request_counts": {"total": 10, "completed": 5, "failed": 0}}
    assert batches.record_upstream(IdMap(), read("batch_0001"), fresh)[1]  # the watcher: progress 5
    stale = {**upstream, "in_progress_at": int(time.time())}  # the slow retrieve's older answer
    served, wrote = batches.record_upstream(IdMap(), slow, stale)
    assert not wrote and served.request_counts is not None and served.request_counts.completed == 5
    assert batches.record_upstream(IdMap(), read("batch_0001"), fresh)[1] is False  # nothing new
    progress = [event["id"] for event in published if event["type"] == "batch.progress"]
    assert len(progress) == 1
