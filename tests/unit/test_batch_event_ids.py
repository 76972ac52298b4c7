"""Event ids of a batch cancelled while its create was pending (issue 21 A9a): the provider's
batch, found and cancelled later, ends with a real `batch.cancelled` of its own, whose id differs
from the gateway's first one (receivers drop an event whose id they saw)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from gateway.auth import Caller
from gateway.service import adoption, batch_events, batches, translate, watcher
from gateway.storage import pending
from gateway.storage.id_map import IdMap

from tests.unit.fault_injection.providers import FakeProvider
from tests.unit.fault_injection.test_watcher import _pending_batch


class CancellingProvider(FakeProvider):
    def __init__(self, cancelled_as: str) -> None:
        super().__init__()
        self.cancelled_as = cancelled_as

    def cancel_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter(f"cancel_batch {upstream_id}", timeout)
        self.batches[upstream_id]["status"] = self.cancelled_as
        return copy.deepcopy(self.batches[upstream_id])


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(batch_events.event_bus, "put_event", lambda kind, detail: None)
    monkeypatch.setattr(
        batch_events.dispatch, "publish", lambda owner, event, id_map=None: seen.append(event) or 1
    )
    return seen


def test_the_provider_batch_of_a_batch_cancelled_while_pending_ends_with_its_own_event(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    published: list[dict[str, Any]],
) -> None:
    provider = CancellingProvider("cancelling")
    for module in (watcher, batches, translate, adoption):
        monkeypatch.setattr(module, "client_for", lambda _provider: provider)
    owner = Caller(key_id="key-a")
    now = int(time.time())
    assert pending.put_new(_pending_batch("batch_late", now)) is None
    assert batches.cancel_batch(owner, "batch_late").status == "cancelled"  # the provider has nothing
    provider.batches["up-late"] = {  # the create did reach the provider after all
        "id": "up-late",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "up-file-in",
        "completion_window": "24h",
        "status": "in_progress",
        "created_at": now,
        "request_counts": {"total": 3, "completed": 2, "failed": 0},
        "metadata": {adoption.BATCH_TAG: "batch_late"},
    }
    batches.retrieve_batch(owner, "batch_late")  # found, attached, cancelled there
    assert provider.calls.count("cancel_batch up-late") == 1
    provider.batches["up-late"]["status"] = "cancelled"
    assert batches.retrieve_batch(owner, "batch_late").status == "cancelled"
    watcher_events = [event for event in published if event["type"] == "batch.cancelled"]
    record = IdMap().get("batch_late")
    assert record is not None and record.upstream_id == "up-late"
    # the gateway's cancel, then the provider batch's real end: two events, two ids
    assert len(watcher_events) + len(_left_in_outbox("batch.cancelled")) == 2
    ids = {event["id"] for event in watcher_events} | set(_left_in_outbox("batch.cancelled"))
    assert len(ids) == 2


def _left_in_outbox(event_type: str) -> list[str]:
    from gateway.storage import outbox

    return [event.event_id for event in outbox.left_behind(-60) if event.detail_type == event_type]
