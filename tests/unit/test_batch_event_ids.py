"""Events of a batch cancelled while its create was pending (issue 21 A9a). The provider's batch,
found and cancelled later, ends the way the client already read: `batch.cancelled` is announced
once. A provider batch that had already completed ends with its own `batch.completed`, whose id
differs from the gateway's first event (receivers drop an event whose id they saw)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from gateway.http.auth import Caller
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


@pytest.mark.parametrize(
    ("ended_as", "events"),
    [
        ("cancelled", ["batch.cancelled"]),  # what the client read at its cancel: announced once
        ("completed", ["batch.cancelled", "batch.completed"]),  # the real end, an event of its own
    ],
)
def test_the_provider_batch_of_a_batch_cancelled_while_pending_ends_with_its_own_event(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    published: list[dict[str, Any]],
    ended_as: str,
    events: list[str],
) -> None:
    provider = CancellingProvider("cancelling" if ended_as == "cancelled" else "completed")
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
    provider.batches["up-late"]["status"] = ended_as
    assert batches.retrieve_batch(owner, "batch_late").status == ended_as
    record = IdMap().get("batch_late")
    assert record is not None and record.upstream_id == "up-late"
    announced = [(event["type"], event["id"]) for event in published if event["type"].startswith("batch.")]
    left = [(kind, event_id) for kind in events for event_id in _left_in_outbox(kind)]
    assert sorted(kind for kind, _ in announced + left) == sorted(events)
    assert len({event_id for _, event_id in announced + left}) == len(events)


def _left_in_outbox(event_type: str) -> list[str]:
    from gateway.storage import outbox

    return [event.event_id for event in outbox.left_behind(-60) if event.detail_type == event_type]
