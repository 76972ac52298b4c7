"""batches.list when refreshing goes wrong, seen from what an operator and a client get: a
provider call that outlives its own timeout does not hold the page, the refresh runs on its
own pool of 8, each degraded page says so in the logs (with the figures), and a settled batch
served from its snapshot still carries its usage and cost."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from gateway.http.auth import MASTER, Caller
from gateway.service import batches, translate
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest
from gateway.service.settlement import settle_if_finished
from gateway.storage.id_map import IdMap

from tests.unit.fault_injection.providers import FakeProvider, store_batch
from tests.unit.test_settlement import OUTPUT, CountingReader, finished_batch

DEADLINE = 0.5
HANG_CAP = 5.0  # a hung call gives up on its own after this long, so a wrong build cannot hang the suite


class HangingProvider(FakeProvider):
    """A provider whose batch retrieves hang past their own timeout (as a connection that
    trickles bytes does under a per-read timeout) until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.list_fails = True  # the page's one list call fails at once: each batch is retrieved
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.released_in_time: list[bool] = []  # per hung call: released by the test, not the cap
        self.ended = threading.Semaphore(0)

    def retrieve_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(f"retrieve_batch {upstream_id}")
        self.started.release()
        self.released_in_time.append(self.release.wait(HANG_CAP))
        self.ended.release()
        # too late for anyone: an abandoned refresh must not write after its test is gone
        raise TimeoutError(f"retrieve_batch {upstream_id}: answered after the deadline")


@pytest.fixture
def hanging(aws: None, monkeypatch: pytest.MonkeyPatch) -> HangingProvider:
    fake = HangingProvider()
    for module in (batches, translate):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


def _stale_batches(provider: FakeProvider, count: int) -> list[str]:
    ids = [store_batch(provider, n, "in_progress") for n in range(count)]
    for upstream in provider.batches.values():
        upstream["status"] = "completed"  # what a refresh would find, given time
    return ids


def test_a_call_hanging_past_its_timeout_does_not_hold_the_page(
    hanging: HangingProvider, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _stale_batches(hanging, 2)
    page = batches.list_batches(MASTER, ListRequest(limit=50), deadline=Deadline.after(DEADLINE))
    assert {b.id: b.status for b in page.data} == dict.fromkeys(ids, "in_progress")  # the snapshots
    hanging.release.set()
    for _ in ids:
        assert hanging.ended.acquire(timeout=HANG_CAP + 1)
    # the page came back before anything released the calls (nobody waited for the pool)
    assert hanging.released_in_time == [True, True]
    logged = [(r.getMessage(), getattr(r, "n", None)) for r in caplog.records]
    assert ("batch list refresh hit its deadline; serving snapshots", 2) in logged, logged


def test_the_refresh_runs_eight_calls_at_a_time_and_drops_the_rest_at_the_deadline(
    hanging: HangingProvider, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _stale_batches(hanging, 10)
    page = batches.list_batches(MASTER, ListRequest(limit=50), deadline=Deadline.after(DEADLINE))
    assert {b.id: b.status for b in page.data} == dict.fromkeys(ids, "in_progress")
    retrieves = [call for call in hanging.calls if call.startswith("retrieve_batch")]
    assert len(retrieves) == 8  # the pool's size, whatever the machine's CPU count
    hanging.release.set()
    for _ in range(8):
        assert hanging.ended.acquire(timeout=HANG_CAP + 1)
    logged = [(r.getMessage(), getattr(r, "n", None)) for r in caplog.records]
    # 8 calls still running and 2 never started
    assert ("batch list refresh hit its deadline; serving snapshots", 10) in logged, logged


def test_each_failed_refresh_is_logged_with_its_batch(
    aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider()
    for module in (batches, translate):
        monkeypatch.setattr(module, "client_for", lambda _provider: provider)
    ids = _stale_batches(provider, 3)
    provider.fail = True
    page = batches.list_batches(MASTER, ListRequest(limit=50), deadline=Deadline.after(5))
    assert {b.id: b.status for b in page.data} == dict.fromkeys(ids, "in_progress")
    failed = [
        getattr(r, "batch_id", None)
        for r in caplog.records
        if r.getMessage() == "batch refresh failed; serving snapshot"
    ]
    assert sorted(failed) == sorted(ids)


def test_a_settled_batch_listed_from_its_snapshot_carries_its_usage_and_cost(aws: None) -> None:
    """The settlement and the object are two writes: a batch settled by a call that died before
    writing its object (or by the watcher) is still served with what it booked."""
    record, batch = finished_batch()
    settled = settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))
    assert settled.usage is not None and settled.cost is not None
    stored = IdMap().get(record.id)
    assert stored is not None and stored.object.get("usage") is None  # only the settlement holds it
    owner = Caller(key_id=record.owner)
    [listed] = batches.list_batches(owner, ListRequest(limit=10)).data
    assert listed.usage == settled.usage and listed.cost == settled.cost
    assert listed.usage.total_tokens == 1_500_000  # the failed line's tokens are not counted


def test_a_batch_left_at_the_deadline_is_served_as_stored_without_a_failure(
    aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider()
    monkeypatch.setattr(batches, "client_for", lambda _provider: provider)
    [batch_id] = _stale_batches(provider, 1)
    record = IdMap().get(batch_id)
    assert record is not None
    served = batches._refresh_or_snapshot(IdMap(), record, {}, Deadline.after(0))
    assert (served.id, served.status) == (batch_id, "in_progress") and provider.calls == []
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []  # not a failure
