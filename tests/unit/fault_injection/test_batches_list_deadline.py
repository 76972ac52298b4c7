"""batches.list refreshes unfinished batches upstream within one deadline for the whole page
(settings: 20 s, injectable here), each provider call's timeout within what is left; past it,
or when the provider fails, the stored snapshots are served. No real 20 s waits: the deadline
is injected."""

from __future__ import annotations

import time

import pytest
from gateway.http.auth import MASTER
from gateway.runtime.settings import get_settings
from gateway.service import batches, translate
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest
from gateway.storage.id_map import IdMap

from tests.unit.fault_injection.providers import FakeProvider, store_batch

DEADLINE = 0.5


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    for module in (batches, translate):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


def listed(deadline: Deadline | None = None) -> dict[str, str]:
    page = batches.list_batches(MASTER, ListRequest(limit=50), deadline=deadline)
    return {batch.id: batch.status for batch in page.data}


def test_the_deadline_is_well_inside_api_gateways_29_seconds() -> None:
    assert get_settings().list_refresh_deadline_seconds <= 20
    assert get_settings().list_refresh_deadline_seconds + 5 < 29  # room for the Query and the answer


def test_a_stalled_provider_gets_snapshots_served_at_the_deadline(provider: FakeProvider) -> None:
    """16 unfinished batches, a provider that never answers: one deadline for the whole page."""
    ids = [store_batch(provider, n, "in_progress") for n in range(16)]
    for upstream in provider.batches.values():
        upstream["status"] = "completed"  # what a refresh would have found
    provider.stall.set()
    started = time.monotonic()
    statuses = listed(Deadline.after(DEADLINE))
    elapsed = time.monotonic() - started
    assert statuses == dict.fromkeys(ids, "in_progress")  # the snapshots
    assert elapsed < DEADLINE + 1.0, elapsed
    assert provider.calls[0] == "list_batches"
    assert all(t is not None and t <= DEADLINE for t in provider.timeouts), provider.timeouts


def test_every_call_timeout_is_within_what_is_left(provider: FakeProvider) -> None:
    """The list call fails at once, so each batch is retrieved (in parallel): each retrieve
    may wait only what is left of the deadline, less than the list call had."""
    ids = [store_batch(provider, n, "in_progress") for n in range(4)]
    provider.list_fails = True
    provider.stall.set()
    started = time.monotonic()
    assert listed(Deadline.after(DEADLINE)) == dict.fromkeys(ids, "in_progress")
    assert time.monotonic() - started < DEADLINE + 1.0
    first, *retrieves = provider.timeouts
    assert provider.calls[0] == "list_batches" and len(retrieves) == 4
    assert first is not None and first <= DEADLINE
    assert all(t is not None and 0 <= t < first for t in retrieves), provider.timeouts


def test_a_deadline_already_past_makes_no_provider_call(provider: FakeProvider) -> None:
    ids = [store_batch(provider, n, "in_progress") for n in range(3)]
    assert listed(Deadline.after(0)) == dict.fromkeys(ids, "in_progress")
    assert provider.calls == []


def test_a_refresh_in_time_serves_the_current_statuses(provider: FakeProvider) -> None:
    ids = [store_batch(provider, n, "in_progress") for n in range(3)]
    for upstream in provider.batches.values():
        upstream["status"] = "finalizing"
    assert listed(Deadline.after(5)) == dict.fromkeys(ids, "finalizing")
    assert provider.calls == ["list_batches"]  # one call for the page
    stored = IdMap().get(ids[0])
    assert stored is not None and stored.status == "finalizing"


def test_a_failing_refresh_serves_the_snapshots(provider: FakeProvider) -> None:
    ids = [store_batch(provider, n, "in_progress") for n in range(3)]
    provider.fail = True
    assert listed() == dict.fromkeys(ids, "in_progress")
    assert provider.calls[0] == "list_batches" and len(provider.calls) == 4  # then one retrieve each


def test_the_default_deadline_comes_from_the_settings(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_batch(provider, 1, "in_progress")
    seen: list[float] = []
    after = Deadline.after

    def recording(seconds: float) -> Deadline:
        seen.append(seconds)
        return after(seconds)

    monkeypatch.setattr(Deadline, "after", staticmethod(recording))
    listed()
    assert seen == [get_settings().list_refresh_deadline_seconds]
    assert (
        provider.timeouts[0] is not None and provider.timeouts[0] <= get_settings().upstream_timeout_seconds
    )
