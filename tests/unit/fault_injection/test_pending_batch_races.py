# ruff: noqa: F811  (pytest fixtures imported from create_support are parameters here)
"""A pending batch (its create never heard back) settled by two actors at once: a cancel or a
give-up that loses its conditional write to the create finishing, or to another settle, serves
what won, and a cancel that finds the batch at the provider after all cancels it there."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from gateway.errors import ConflictError, UpstreamTimeoutError
from gateway.http.auth import MASTER
from gateway.providers.openai.client import ProviderClient
from gateway.service import adoption, batches
from gateway.storage import pending as pending_store
from gateway.storage.id_map import IdMap, ObjectRecord
from handlers import batches_create, files_create

from devserver.simulator import Simulator
from tests.unit.conftest import call, event
from tests.unit.fault_injection.create_support import (
    LINE,
    file_event,
    gateway,  # noqa: F401  (fixture)
    records,
    sim,  # noqa: F401  (fixture)
    with_key,
)


def _stranded_batch(
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    *,
    provider_gets_it: bool,
    metadata: dict[str, str] | None = None,
) -> ObjectRecord:
    """A batch record left pending by a create that timed out (the provider made the batch) or
    failed (the provider never got it)."""
    status, file, _ = call(files_create.handler, file_event(f"{uuid.uuid4().hex}.jsonl", LINE))
    assert status == 200, file
    if provider_gets_it:
        real = ProviderClient.create_batch

        def accept_then_time_out(self: ProviderClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            real(self, body, **kwargs)
            raise UpstreamTimeoutError("provider did not answer in time")

        monkeypatch.setattr(ProviderClient, "create_batch", accept_then_time_out)
    else:
        sim.add_fault(status=503, method="POST", path_contains="/v1/batches")
    body = {"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    if metadata is not None:
        body["metadata"] = metadata
    status, _, _ = call(batches_create.handler, event("POST", "/v1/batches", body=body))
    assert status == (504 if provider_gets_it else 502)
    if provider_gets_it:
        monkeypatch.setattr(ProviderClient, "create_batch", real)
    sim.clear_faults()
    [item] = records("batch")
    record = IdMap().get(item["pk"])
    assert record is not None and record.upstream_id is None
    return record


def _stranded_with_its_provider_batch(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> tuple[ObjectRecord, dict[str, Any]]:
    record = _stranded_batch(sim, monkeypatch, provider_gets_it=True)
    upstream = adoption.find_upstream_batch(IdMap(), record)
    assert upstream is not None
    return record, upstream


def _upstream_status(sim: Simulator, upstream_id: str) -> str:
    return str(sim.state.batches[upstream_id].status)


def test_a_batch_given_up_reads_failed_with_the_reason_and_keeps_no_pending_state(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=False)
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    before = int(time.time())
    batch = batches.adopt_pending_batch(record)
    assert batch.status == "failed" and before <= (batch.failed_at or 0) <= int(time.time())
    assert batch.errors is not None
    assert batch.errors.model_dump(mode="json") == {
        "object": "list",
        "data": [
            {
                "code": "provider_create_unconfirmed",
                "message": "The gateway's request to create this batch at provider 'openai' did not "
                "complete, and the provider holds no such batch. Create it again.",
                "line": None,
                "param": None,
            }
        ],
    }
    stored = IdMap().get(record.id)
    assert stored is not None and stored.status == "failed" and "pending" not in stored.state
    served = batch.model_dump(mode="json")
    assert served.pop("cost")["total"] == 0 and served.pop("usage")["total_tokens"] == 0  # books nothing
    assert {k: v for k, v in stored.object.items() if k not in {"cost", "usage"}} == served
    # with no provider batch to ask, a retrieve serves it as stored, and it is no longer cancellable
    assert batches.retrieve_batch(MASTER, record.id) == batch
    with pytest.raises(ConflictError) as ended:
        batches.cancel_batch(MASTER, record.id)
    assert (ended.value.message, ended.value.code, ended.value.param) == (
        "Cannot cancel a batch with status 'failed'.",
        "batch_not_cancellable",
        "batch_id",
    )


def test_a_give_up_that_loses_to_a_cancel_serves_the_cancelled_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = _stranded_batch(gateway, monkeypatch, provider_gets_it=False)
    assert batches.cancel_batch(MASTER, stale.id).status == "cancelled"  # another caller, first
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    batch = batches.adopt_pending_batch(stale)  # read before the cancel: still pending here
    assert (batch.id, batch.status) == (stale.id, "cancelled")
    assert batch.cancelled_at is not None and batch.failed_at is None


def test_a_cancel_that_loses_to_the_create_finishing_cancels_at_the_provider(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    find = adoption.find_upstream_batch

    def provider_seen_before_the_create_finished(id_map: IdMap, pending: ObjectRecord) -> Any:
        # The cancel looked for the batch upstream just before it showed up there; meanwhile
        # a retrieve (another function) attached it to the record.
        monkeypatch.setattr(adoption, "find_upstream_batch", find)
        assert batches.adopt_pending_batch(IdMap().get(pending.id) or pending).status == "validating"
        return None

    monkeypatch.setattr(adoption, "find_upstream_batch", provider_seen_before_the_create_finished)
    batch = batches.cancel_batch(MASTER, record.id)
    assert (batch.id, batch.status) == (record.id, "cancelling")
    stored = IdMap().get(record.id)
    assert stored is not None and stored.status == "cancelling" and stored.upstream_id is not None
    assert _upstream_status(gateway, stored.upstream_id) in {"cancelling", "cancelled"}  # may end at once


def test_a_cancel_that_loses_to_another_cancel_serves_it_without_a_provider_call(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=False)

    def cancelled_meanwhile(id_map: IdMap, pending: ObjectRecord) -> Any:
        monkeypatch.setattr(adoption, "find_upstream_batch", lambda *_: None)
        assert batches.cancel_batch(MASTER, pending.id).status == "cancelled"
        return None

    monkeypatch.setattr(adoption, "find_upstream_batch", cancelled_meanwhile)
    upstream_batches = len(gateway.state.batches)
    batch = batches.cancel_batch(MASTER, record.id)
    assert (batch.id, batch.status) == (record.id, "cancelled")
    assert len(gateway.state.batches) == upstream_batches


def _counted_cancels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    real_cancel = ProviderClient.cancel_batch
    cancels: list[str] = []

    def counted_cancel(self: ProviderClient, batch_id: str) -> dict[str, Any]:
        cancels.append(batch_id)
        return real_cancel(self, batch_id)

    monkeypatch.setattr(ProviderClient, "cancel_batch", counted_cancel)
    return cancels


def test_a_cancel_that_loses_to_the_create_and_a_cancel_asks_the_provider_no_more(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    find = adoption.find_upstream_batch
    cancels = _counted_cancels(monkeypatch)

    def finished_and_cancelled_meanwhile(id_map: IdMap, pending: ObjectRecord) -> Any:
        monkeypatch.setattr(adoption, "find_upstream_batch", find)
        assert batches.cancel_batch(MASTER, pending.id).status == "cancelling"  # attaches, cancels
        return None

    monkeypatch.setattr(adoption, "find_upstream_batch", finished_and_cancelled_meanwhile)
    batch = batches.cancel_batch(MASTER, record.id)
    assert (batch.id, batch.status) == (record.id, "cancelling")
    assert len(cancels) == 1


def _provider_not_listing_yet(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The provider's list does not show the new batch yet: lookups by tag find nothing."""
    find = adoption.find_upstream_batch
    monkeypatch.setattr(adoption, "find_upstream_batch", lambda *_: None)
    return find


def test_a_batch_cancelled_before_the_provider_showed_it_is_cancelled_there_when_found(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, record.id).status == "cancelled"  # held by no provider, so far
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    current = IdMap().get(record.id)
    assert current is not None
    batch = batches.adopt_pending_batch(current)  # the watcher, or a retrieve, finds it now
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id is not None and "pending" not in stored.state
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert _upstream_status(gateway, stored.upstream_id) in {"cancelling", "cancelled"}
    assert batch.status in {"cancelling", "cancelled"} and stored.status == batch.status


def test_an_adoption_that_loses_to_a_cancel_cancels_the_found_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)  # read: validating, pending
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, stale.id).status == "cancelled"  # another caller, meanwhile
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    batch = batches.adopt_pending_batch(stale)  # attaches, loses to the cancel, cancels upstream
    stored = IdMap().get(stale.id)
    assert stored is not None and stored.upstream_id is not None
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert _upstream_status(gateway, stored.upstream_id) in {"cancelling", "cancelled"}
    assert (batch.id, batch.status) == (stale.id, stored.status)


def test_an_adoption_that_loses_to_another_adoption_serves_the_attached_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    fresh = IdMap().get(stale.id)
    assert fresh is not None
    first = batches.adopt_pending_batch(fresh)
    second = batches.adopt_pending_batch(stale)  # read before the first one attached it
    assert second.model_dump() == first.model_dump() and second.status == "validating"
    assert len([b for b in gateway.state.batches.values() if b.id == IdMap().get(stale.id).upstream_id]) == 1  # type: ignore[union-attr]


def test_a_provider_batch_claimed_by_another_record_is_a_503_to_retry(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.errors import ServiceUnavailableError

    record, upstream = _stranded_with_its_provider_batch(gateway, monkeypatch)
    assert IdMap().claim_upstream("openai", str(upstream["id"]), "batch_other") == "batch_other"
    monkeypatch.setattr(adoption, "find_upstream_batch", lambda *_: upstream)
    with pytest.raises(ServiceUnavailableError) as busy:
        batches.adopt_pending_batch(record)
    assert busy.value.message == "The provider's batch is claimed by another request; retry."
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id is None  # still pending: a later call settles it


def test_a_second_cancel_that_finds_the_batch_at_last_cancels_it_there_once(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, record.id).status == "cancelled"
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    cancels = _counted_cancels(monkeypatch)
    batch = batches.cancel_batch(MASTER, record.id)  # the owner cancels again; the provider shows it now
    stored = IdMap().get(record.id)
    assert stored is not None and cancels == [stored.upstream_id]
    assert (batch.id, batch.status) == (record.id, stored.status)
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert stored.status in {"cancelling", "cancelled"}


def test_a_pending_batch_cancelled_twice_reads_its_first_cancel(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=False)
    _provider_not_listing_yet(monkeypatch)
    before = int(time.time())
    first = batches.cancel_batch(MASTER, record.id)
    assert first.status == "cancelled" and first.cancelling_at == first.cancelled_at
    assert before <= (first.cancelled_at or 0) <= int(time.time())
    stored = IdMap().get(record.id)
    assert stored is not None and stored.object["cancelling_at"] == first.cancelled_at
    time.sleep(1.05)  # a second cancel a second later must not move the time it was cancelled
    assert batches.cancel_batch(MASTER, record.id) == first


def test_a_cancelled_pending_batch_whose_provider_batch_already_ended_is_attached_without_a_cancel(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, upstream = _stranded_with_its_provider_batch(gateway, monkeypatch)
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, record.id).status == "cancelled"
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    gateway.state.batches[upstream["id"]].status = "failed"  # it ended before anyone found it
    cancels = _counted_cancels(monkeypatch)
    batch = batches.retrieve_batch(MASTER, record.id)
    assert cancels == []  # an ended batch is not cancellable (the provider would answer 409)
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id == upstream["id"] and "pending" not in stored.state
    assert (batch.status, stored.status) == ("failed", "failed")


def test_an_adoption_that_loses_to_a_give_up_is_a_503_and_the_batch_stays_given_up(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.errors import ServiceUnavailableError

    stale = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)  # read: validating, pending
    find = _provider_not_listing_yet(monkeypatch)
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    assert batches.adopt_pending_batch(IdMap().get(stale.id) or stale).status == "failed"  # the watcher
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    with pytest.raises(ServiceUnavailableError) as changed:
        batches.adopt_pending_batch(stale)  # the provider lists the batch at last
    assert changed.value.message == "The batch changed while it was being recorded; retry."
    stored = IdMap().get(stale.id)
    assert stored is not None and stored.status == "failed" and stored.upstream_id is None
    assert batches.retrieve_batch(MASTER, stale.id).status == "failed"  # what the retry sees


def test_a_batch_discarded_meanwhile_is_neither_attached_nor_cancelled(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its create's first attempt was refused (the record discarded) while another call held
    the pending record: neither that call's attach nor its cancel brings it back."""
    from gateway.errors import ServiceUnavailableError

    stale = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    current = IdMap().get(stale.id)
    assert current is not None and pending_store.discard(current)
    with pytest.raises(ServiceUnavailableError) as attach:
        batches.adopt_pending_batch(stale)
    monkeypatch.setattr(adoption, "find_upstream_batch", lambda *_: None)
    with pytest.raises(ServiceUnavailableError) as cancel:
        batches._cancel_pending(IdMap(), stale)
    for lost in (attach, cancel):
        assert lost.value.message == "The batch changed while it was being recorded; retry."
    assert IdMap().get(stale.id) is None  # as gone as before
    [item] = records("batch") or [{}]
    assert "upstream_id" not in item


@pytest.mark.parametrize("settle", ["retrieve", "cancel"])
def test_a_batch_with_no_room_for_the_tag_is_found_by_its_request(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, settle: str
) -> None:
    """16 metadata pairs (OpenAI's most) leave no room for the gateway's tag: a retrieve or a
    cancel finds the provider's batch by what the create sent, unclaimed by another id."""
    full = {f"k{n}": str(n) for n in range(16)}
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True, metadata=full)
    assert record.state["pending"]["tagged"] is False
    if settle == "retrieve":
        batch = batches.retrieve_batch(MASTER, record.id)
    else:
        batch = batches.cancel_batch(MASTER, record.id)
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id is not None and "pending" not in stored.state
    assert gateway.state.batches[stored.upstream_id].metadata == full
    assert batch.metadata == full and batch.status == stored.status
    assert batch.status == ("validating" if settle == "retrieve" else "cancelling")


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The (event type, batch id) of each event put on the bus, in order."""
    from gateway.service import batch_events

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(
        batch_events.event_bus, "put_event", lambda kind, detail: seen.append((kind, detail["batch"]["id"]))
    )
    return seen


@pytest.mark.books_unbalanced("the bus stays down to the end: its event stays in the outbox on purpose")
@pytest.mark.parametrize("change", ["given up", "cancelled"])
def test_a_pending_batch_change_the_bus_missed_stays_in_the_outbox_for_the_watcher(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    from gateway.service import batch_events

    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=False)
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)

    def bus_down(kind: str, detail: dict[str, Any]) -> None:
        raise ConnectionError("EventBridge unreachable")

    monkeypatch.setattr(batch_events.event_bus, "put_event", bus_down)
    if change == "given up":
        assert batches.adopt_pending_batch(record).status == "failed"
    else:
        _provider_not_listing_yet(monkeypatch)
        assert batches.cancel_batch(MASTER, record.id).status == "cancelled"
    [event] = records("outbox")
    expected = "batch.failed" if change == "given up" else "batch.cancelled"
    assert json.loads(event["event"])["type"] == expected
    assert json.loads(event["detail"])["batch"]["id"] == record.id


def test_a_cancelled_batch_found_cancelled_at_the_provider_is_announced_once(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, bus: list[tuple[str, str]]
) -> None:
    record, upstream = _stranded_with_its_provider_batch(gateway, monkeypatch)
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, record.id).status == "cancelled"
    assert bus == [("batch.cancelled", record.id)]
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    gateway.state.batches[upstream["id"]].status = "cancelled"  # cancelled there too, meanwhile
    assert batches.retrieve_batch(MASTER, record.id).status == "cancelled"
    assert bus == [("batch.cancelled", record.id)]  # the same change: no second event
    assert records("outbox") == []


def _create_with_key(file_id: str, key: str) -> tuple[int, Any]:
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, answer, _ = call(batches_create.handler, with_key(event("POST", "/v1/batches", body=body), key))
    return status, answer


def _input_file_id() -> str:
    status, file, _ = call(files_create.handler, file_event(f"{uuid.uuid4().hex}.jsonl", LINE))
    assert status == 200, file
    return str(file["id"])


def _pending_state() -> dict[str, Any]:
    [item] = records("batch")
    return dict(json.loads(item["state"])["pending"])


def test_a_retry_after_a_timeout_notes_its_own_attempt_and_forgets_the_timeout(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = _input_file_id()

    def lost_on_the_way(self: ProviderClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        raise UpstreamTimeoutError("provider did not answer in time")  # it never got the request

    real = ProviderClient.create_batch
    monkeypatch.setattr(ProviderClient, "create_batch", lost_on_the_way)
    assert _create_with_key(file_id, "k-retry")[0] == 504
    assert "timed_out_at" in _pending_state()
    record = IdMap().get(records("batch")[0]["pk"])
    assert record is not None
    first = record.state["pending"]
    record.state = {**record.state, "pending": {**first, "attempted_at": first["attempted_at"] - 100}}
    assert pending_store.settle(record, expected_status=str(record.status))  # attempted a while ago
    monkeypatch.setattr(ProviderClient, "create_batch", real)
    monkeypatch.setattr(adoption, "SETTLE_SECONDS", 0)  # the provider had its time to show it
    gateway.add_fault(status=503, method="POST", path_contains="/v1/batches")
    retried_at = int(time.time())
    assert _create_with_key(file_id, "k-retry")[0] == 502
    state = _pending_state()
    assert "timed_out_at" not in state and state["attempted_at"] >= retried_at
    gateway.clear_faults()
    # a retry the provider refuses is no proof the first attempt made nothing: the record stays
    gateway.add_fault(status=400, method="POST", path_contains="/v1/batches")
    assert _create_with_key(file_id, "k-retry")[0] == 400
    assert "attempted_at" in _pending_state()
    gateway.clear_faults()
    status, batch = _create_with_key(file_id, "k-retry")
    assert status == 200 and batch["status"] == "validating", batch


def test_a_retry_that_loses_to_a_cancel_serves_the_cancelled_batch_and_creates_nothing(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = _input_file_id()
    gateway.add_fault(status=503, method="POST", path_contains="/v1/batches")
    assert _create_with_key(file_id, "k-cancelled")[0] == 502
    gateway.clear_faults()
    batch_id = records("batch")[0]["pk"]

    def cancelled_meanwhile(id_map: IdMap, pending: ObjectRecord) -> Any:
        monkeypatch.setattr(adoption, "find_upstream_batch", lambda *_: None)
        assert batches.cancel_batch(MASTER, batch_id).status == "cancelled"  # the owner, meanwhile
        return None

    monkeypatch.setattr(adoption, "find_upstream_batch", cancelled_meanwhile)
    upstream_batches = len(gateway.state.batches)
    status, batch = _create_with_key(file_id, "k-cancelled")
    assert status == 200 and (batch["id"], batch["status"]) == (batch_id, "cancelled"), batch
    assert len(gateway.state.batches) == upstream_batches


def test_a_batch_cancelled_while_pending_reads_cancelled_once_attached_and_announces_it_once(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attached after its owner's cancel (by a retrieve here): it never reads `cancelling` again,
    so the provider's batch ending cancelled announces nothing more (a second `batch.cancelled`
    would carry the first one's event id, and receivers would drop it)."""
    from gateway.service import batch_events

    announced: list[str] = []
    monkeypatch.setattr(batch_events.event_bus, "put_event", lambda kind, detail: announced.append(kind))
    record = _stranded_batch(gateway, monkeypatch, provider_gets_it=True)
    find = _provider_not_listing_yet(monkeypatch)
    assert batches.cancel_batch(MASTER, record.id).status == "cancelled"
    monkeypatch.setattr(adoption, "find_upstream_batch", find)
    assert batches.retrieve_batch(MASTER, record.id).status == "cancelled"  # attached, cancelled there
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id is not None and stored.status == "cancelled"
    assert _upstream_status(gateway, stored.upstream_id) in {"cancelling", "cancelled"}
    for _ in range(3):  # later reads, whatever the provider's batch says meanwhile
        assert batches.retrieve_batch(MASTER, record.id).status == "cancelled"
    assert announced.count("batch.cancelled") == 1
