"""The watcher's pass and the transactional outbox, with a failure injected at each step.

A change is recorded with its events in one transaction, then published (bus, then webhooks),
then its outbox item is deleted. Whatever step fails, the change is announced exactly once
(or, after a crash between publishing and deleting, once more with the same event id), and
never twice by two recorders.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway.http.auth import MASTER
from gateway.service import adoption, batch_events, batches, translate, watcher
from gateway.service.deadline import Deadline
from gateway.storage import outbox
from gateway.storage.id_map import IdMap, ObjectRecord

from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.fault_injection.providers import FakeProvider, store_batch


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    for module in (watcher, batches, translate, adoption):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What reached the bus and the webhook fan-out, in order."""
    seen: dict[str, list[Any]] = {"bus": [], "webhooks": []}
    monkeypatch.setattr(
        batch_events.event_bus, "put_event", lambda kind, detail: seen["bus"].append((kind, detail))
    )
    monkeypatch.setattr(
        batch_events.dispatch,
        "publish",
        lambda owner, event, id_map=None: seen["webhooks"].append((owner, event)) or 1,
    )
    return seen


def one_pass() -> watcher.PassReport:
    return watcher.run_pass(Deadline.after(120))


def finish(provider: FakeProvider, number: int, status: str = "completed") -> None:
    provider.batches[f"up-batch-{number}"]["status"] = status


def stored(batch_id: str) -> ObjectRecord:
    record = IdMap().get(batch_id)
    assert record is not None
    return record


def leftovers() -> list[str]:
    return [event.event_id for event in outbox.left_behind(-60)]


def test_a_batch_nobody_polls_is_recorded_and_announced_once(
    provider: FakeProvider, published: dict[str, list[Any]], faults: DynamoFaults
) -> None:
    batch_id = store_batch(provider, 1, "in_progress", owner="key-a")
    finish(provider, 1)
    report = one_pass()
    assert stored(batch_id).status == "completed" and report.changed == 1
    ((kind, detail),) = published["bus"]
    assert kind == "batch.completed"
    assert (detail["batch"]["id"], detail["owner"], detail["provider"]) == (batch_id, "key-a", "openai")
    ((owner, event),) = published["webhooks"]
    assert (owner, event["type"], event["data"]) == ("key-a", "batch.completed", {"id": batch_id})
    assert event["id"] == detail["event_id"]
    assert leftovers() == []
    writes = len(faults.writes)
    again = one_pass()  # nothing changed: nothing written, nothing announced
    assert (again.changed, len(faults.writes), len(published["bus"])) == (0, writes, 1)


def test_counts_that_move_are_a_progress_event_and_unchanged_ones_are_not(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    store_batch(provider, 1, "in_progress")
    provider.batches["up-batch-1"]["request_counts"] = {"total": 4, "completed": 1, "failed": 0}
    one_pass()  # its first counts: no progress yet
    provider.batches["up-batch-1"]["request_counts"] = {"total": 4, "completed": 2, "failed": 0}
    one_pass()
    one_pass()
    provider.batches["up-batch-1"]["request_counts"] = {"total": 4, "completed": 3, "failed": 0}
    one_pass()
    assert [kind for kind, _ in published["bus"]] == ["batch.progress", "batch.progress"]
    assert [detail["batch"]["request_counts"]["completed"] for _, detail in published["bus"]] == [2, 3]
    ids = [event["id"] for _, event in published["webhooks"]]
    assert len(set(ids)) == 2


def test_one_list_call_per_page_and_a_retrieve_only_for_what_the_pages_missed(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    for number in range(1, 151):
        store_batch(provider, number, "in_progress")
    one_pass()
    provider.calls.clear()
    for number in (3, 60, 150):
        finish(provider, number)
    hidden = provider.batches.pop("up-batch-3")  # the provider's pages no longer show it
    real_retrieve = provider.retrieve_batch

    def retrieve(upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        if upstream_id == "up-batch-3":
            provider.calls.append(f"retrieve_batch {upstream_id}")
            return dict(hidden)
        return real_retrieve(upstream_id, timeout=timeout)

    provider.retrieve_batch = retrieve  # type: ignore[method-assign]
    report = one_pass()
    assert provider.calls.count("list_batches") == report.list_calls == 2  # 149 listed: 2 pages
    assert [c for c in provider.calls if c.startswith("retrieve")] == ["retrieve_batch up-batch-3"]
    assert report.changed == 3 and not report.stopped_early
    assert sorted(detail["batch"]["id"] for _, detail in published["bus"]) == [
        "batch_0003",
        "batch_0060",
        "batch_0150",
    ]


def test_a_pass_past_its_deadline_stops_and_the_next_one_continues(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    report = watcher.run_pass(Deadline.after(0))
    assert report.stopped_early and stored(batch_id).status == "in_progress"
    assert one_pass().changed == 1 and stored(batch_id).status == "completed"


def test_two_recorders_of_one_change_announce_it_once(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    """Both read `in_progress` before either wrote: the second's write is conditional on the
    object it read, so it loses, serves the stored `completed` and announces nothing."""
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    first, second = stored(batch_id), stored(batch_id)
    upstream = provider.retrieve_batch("up-batch-1")
    assert [
        (batch.status, wrote)
        for batch, wrote in (
            batches.record_upstream(IdMap(), first, upstream),
            batches.record_upstream(IdMap(), second, upstream),
        )
    ] == [("completed", True), ("completed", False)]
    assert [kind for kind, _ in published["bus"]] == ["batch.completed"]


def test_passes_at_once_and_a_client_retrieve_announce_each_change_once(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that read every record, then lost the race to a whole other pass and to client
    retrieves (all run at its first write): its writes all lose, it announces nothing."""
    ids = [store_batch(provider, number, "in_progress") for number in range(1, 11)]
    for number in range(1, 11):
        finish(provider, number)
    real_record = batches.record_upstream
    raced: list[watcher.PassReport] = []
    racing = [True]

    def racing_record(id_map: IdMap, record: ObjectRecord, upstream: dict[str, Any]) -> Any:
        if racing:
            racing.clear()
            for batch_id in ids[:5]:
                batches.retrieve_batch(MASTER, batch_id)
            raced.append(one_pass())  # the other pass, from start to end
        return real_record(id_map, record, upstream)

    monkeypatch.setattr(batches, "record_upstream", racing_record)
    slower = one_pass()
    assert (raced[0].changed, slower.changed, slower.errors) == (5, 0, 0)
    announced = sorted(
        detail["batch"]["id"] for kind, detail in published["bus"] if kind == "batch.completed"
    )
    assert announced == sorted(ids)
    assert all(stored(i).status == "completed" for i in ids)


def test_a_client_retrieve_announces_and_the_watcher_does_not_again(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    assert batches.retrieve_batch(MASTER, batch_id).status == "completed"
    one_pass()
    assert [kind for kind, _ in published["bus"]] == ["batch.completed"]


@pytest.mark.parametrize("when", ["before", "after"])
def test_the_recording_transaction_fails(
    provider: FakeProvider,
    published: dict[str, list[Any]],
    faults: DynamoFaults,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    """before: nothing happened, the next pass records it. after: recorded with its event but the
    answer was lost; nothing was published, the next pass publishes what the outbox holds."""
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    faults.fail("TransactWriteItems", nth=2, when=when)  # type: ignore[arg-type]  (1st: the settlement)
    report = one_pass()
    assert faults.fired and report.errors == 1 and published["bus"] == []
    assert stored(batch_id).status == ("in_progress" if when == "before" else "completed")
    monkeypatch.setattr(watcher, "OUTBOX_GRACE_SECONDS", -60.0)
    one_pass()
    assert [kind for kind, _ in published["bus"]] == ["batch.completed"]
    assert len(published["webhooks"]) == 1 and leftovers() == []
    assert stored(batch_id).status == "completed"


@pytest.mark.parametrize("step", ["bus", "webhooks"])
def test_a_publication_that_fails_is_left_in_the_outbox_and_published_later(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    target = batch_events.event_bus if step == "bus" else batch_events.dispatch
    name = "put_event" if step == "bus" else "publish"
    working = getattr(target, name)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(f"injected: {step} unreachable")

    monkeypatch.setattr(target, name, broken)
    assert batches.retrieve_batch(MASTER, batch_id).status == "completed"  # the client is served
    assert len(leftovers()) == 1
    one_pass()  # within the grace period: a live publisher may still be at work
    assert len(leftovers()) == 1
    monkeypatch.setattr(target, name, working)
    monkeypatch.setattr(watcher, "OUTBOX_GRACE_SECONDS", -60.0)
    assert one_pass().republished == 1
    assert leftovers() == [] and len(published["webhooks"]) == 1
    assert [kind for kind, _ in published["bus"]][-1] == "batch.completed"


def test_an_outbox_delete_that_fails_republishes_the_same_event_id(
    provider: FakeProvider,
    published: dict[str, list[Any]],
    faults: DynamoFaults,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    faults.fail("DeleteItem")
    batches.retrieve_batch(MASTER, batch_id)
    assert faults.fired and len(leftovers()) == 1
    monkeypatch.setattr(watcher, "OUTBOX_GRACE_SECONDS", -60.0)
    one_pass()
    first, second = (event["id"] for _, event in published["webhooks"])
    assert first == second and leftovers() == []


def test_a_stranded_create_is_given_up_and_a_stale_transfer_ends_in_error(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    import boto3
    from gateway.runtime.settings import get_settings
    from gateway.storage import pending

    boto3.client("s3").create_bucket(Bucket=get_settings().bucket_name)  # the transfer's parts

    record = ObjectRecord(
        id="batch_stranded",
        kind="batch",
        owner="master",
        provider="openai",
        created_at=1_700_000_000,
        object={
            "id": "batch_stranded",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-in",
            "completion_window": "24h",
            "status": "validating",
            "created_at": 1_700_000_000,
        },
        state={"input_file_id": "file-in", pending.PENDING: {"attempted_at": 1_700_000_000, "body": {}}},
    )
    assert pending.put_new(record) is None
    stale = ObjectRecord(
        id="file-stale",
        kind="file",
        owner="master",
        provider="openai",
        created_at=1_700_000_000,
        object={
            "id": "file-stale",
            "object": "file",
            "bytes": 3,
            "created_at": 1_700_000_000,
            "filename": "a.jsonl",
            "purpose": "batch",
            "status": "uploaded",
        },
        state={"transfer": {"upload_id": "upload_x", "deadline": 1_700_000_100}},
    )
    IdMap().put(stale)
    report = one_pass()
    assert (report.adopted, report.files_finished) == (1, 1)
    assert stored("batch_stranded").status == "failed"
    assert stored("file-stale").status == "error"
    # ended: neither is the watcher's work any more (settled; no longer waiting)
    assert _watch_attribute("batch_stranded") is None and _watch_attribute("file-stale") is None
    assert [(kind, detail["batch"]["id"]) for kind, detail in published["bus"]] == [
        ("batch.failed", "batch_stranded")  # given up: announced like any other failure
    ]


def _pending_batch(batch_id: str, attempted_at: int) -> ObjectRecord:
    from gateway.storage import pending

    return ObjectRecord(
        id=batch_id,
        kind="batch",
        owner="key-a",
        provider="openai",
        created_at=attempted_at,
        object={
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-in",
            "completion_window": "24h",
            "status": "validating",
            "created_at": attempted_at,
        },
        state={
            "input_file_id": "file-in",
            pending.PENDING: {"attempted_at": attempted_at, "tagged": True, "body": {}},
        },
    )


def test_an_adopted_create_already_running_is_announced_once_through_the_outbox(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's answer was lost; the provider's batch (tagged with the gateway id) is
    running. The watcher attaches it and its batch.in_progress goes through the outbox."""
    import time

    from gateway.storage import pending

    now = int(time.time())
    assert pending.put_new(_pending_batch("batch_adopted", now)) is None
    provider.batches["up-adopted"] = {
        "id": "up-adopted",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "up-file-in",
        "completion_window": "24h",
        "status": "in_progress",
        "created_at": now,
        "metadata": {adoption.BATCH_TAG: "batch_adopted"},
    }
    assert one_pass().adopted == 1
    record = stored("batch_adopted")
    assert (record.status, record.upstream_id) == ("in_progress", "up-adopted")
    assert published["bus"] == [] and len(leftovers()) == 1  # left to the next pass
    monkeypatch.setattr(watcher, "OUTBOX_GRACE_SECONDS", -60.0)
    one_pass()
    one_pass()
    assert [(kind, detail["batch"]["id"]) for kind, detail in published["bus"]] == [
        ("batch.in_progress", "batch_adopted")
    ]
    assert [event["type"] for _, event in published["webhooks"]] == ["batch.in_progress"]


def test_a_pending_batch_cancelled_by_its_owner_is_announced(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    import time

    from gateway.http.auth import Caller
    from gateway.storage import pending

    assert pending.put_new(_pending_batch("batch_cancel_me", int(time.time()))) is None
    assert batches.cancel_batch(Caller(key_id="key-a"), "batch_cancel_me").status == "cancelled"
    assert [(kind, detail["batch"]["id"]) for kind, detail in published["bus"]] == [
        ("batch.cancelled", "batch_cancel_me")
    ]


# Convergence: every finished batch ends settled, its hold released, within one pass --------
def _held(batch_id: str, owner: str = "key-a", hold: str = "1.00") -> None:
    """The batch holds `hold` of its owner's budget, as its create took it."""
    from decimal import Decimal

    from gateway.storage.budgets import BudgetStore

    if BudgetStore().get(owner) is None:
        BudgetStore().configure(owner, Decimal(10), None)
    BudgetStore().hold(owner, Decimal(hold), batch_id)
    record = stored(batch_id)
    record.state = {**record.state, "hold": hold}
    IdMap().put(record, reverse=False)


def _holds(owner: str = "key-a") -> Any:
    from gateway.storage.budgets import BudgetStore

    budget = BudgetStore().get(owner)
    assert budget is not None
    return budget.holds


def _watch_attribute(record_id: str) -> str | None:
    from gateway.runtime.settings import get_settings
    from gateway.storage.dynamo import dynamodb_client

    item = dynamodb_client().get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": record_id}}, ConsistentRead=True
    )["Item"]
    return item.get("watch_shard", {}).get("S")


def test_a_settlement_that_failed_once_is_retried_by_the_next_pass(
    provider: FakeProvider, published: dict[str, list[Any]], faults: DynamoFaults
) -> None:
    batch_id = store_batch(provider, 1, "in_progress", owner="key-a")
    _held(batch_id)
    finish(provider, 1)
    faults.fail("TransactWriteItems", nth=1)  # the settlement's transaction: released, not booked
    one_pass()
    assert faults.fired and stored(batch_id).status == "completed" and stored(batch_id).settlement is None
    assert _watch_attribute(batch_id) is not None  # finished, not settled: still the watcher's work
    report = one_pass()
    assert report.settled == 1 and stored(batch_id).settlement is not None
    assert _holds() == 0 and _watch_attribute(batch_id) is None
    assert [kind for kind, _ in published["bus"]] == ["batch.completed"]  # announced once


def test_a_retrieve_that_lost_the_claim_to_a_settler_that_died_is_settled_once_the_claim_is_stale(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from types import SimpleNamespace

    from gateway.service import settlement
    from gateway.storage.settlements import SettlementStore

    batch_id = store_batch(provider, 1, "in_progress", owner="key-a")
    _held(batch_id)
    finish(provider, 1)
    now = int(time.time())
    assert SettlementStore().claim(batch_id, now, settlement.CLAIM_STALE_SECONDS)  # a settler, then it dies
    assert batches.retrieve_batch(MASTER, batch_id).usage is None  # lost the claim; saved `completed`
    assert stored(batch_id).status == "completed"
    assert one_pass().settled == 0  # the claim is live: its holder may still be at work
    assert stored(batch_id).settlement is None
    later = now + settlement.CLAIM_STALE_SECONDS + 1
    monkeypatch.setattr(settlement, "time", SimpleNamespace(time=lambda: later))
    assert one_pass().settled == 1
    assert stored(batch_id).settlement is not None and _holds() == 0


def test_a_stranded_create_adopted_after_its_provider_batch_finished_is_settled_in_the_same_pass(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    import time

    from gateway.storage import pending

    now = int(time.time())
    assert pending.put_new(_pending_batch("batch_late", now)) is None
    _held("batch_late")
    provider.batches["up-late"] = {
        "id": "up-late",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "up-file-in",
        "completion_window": "24h",
        "status": "completed",
        "created_at": now,
        "metadata": {adoption.BATCH_TAG: "batch_late"},
    }
    assert one_pass().adopted == 1
    record = stored("batch_late")
    assert (record.status, record.upstream_id) == ("completed", "up-late")
    assert record.settlement is not None and _holds() == 0
    assert _watch_attribute("batch_late") is None


def test_a_batch_cancelled_while_pending_is_found_cancelled_there_and_booked_announced_once(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from gateway.http.auth import Caller
    from gateway.storage import pending

    now = int(time.time())
    assert pending.put_new(_pending_batch("batch_cw", now)) is None
    _held("batch_cw")
    assert batches.cancel_batch(Caller(key_id="key-a"), "batch_cw").status == "cancelled"  # none upstream yet
    assert _watch_attribute("batch_cw") is not None  # final status, yet still pending: watched
    provider.batches["up-cw"] = {  # the create did reach the provider after all
        "id": "up-cw",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "up-file-in",
        "completion_window": "24h",
        "status": "in_progress",
        "created_at": now,
        "metadata": {adoption.BATCH_TAG: "batch_cw"},
        "request_counts": {"total": 4, "completed": 1, "failed": 0},
    }
    one_pass()
    record = stored("batch_cw")
    assert (record.status, record.upstream_id) == ("cancelled", "up-cw")  # never back to cancelling
    assert provider.batches["up-cw"]["status"] == "cancelling" and "cancel_batch up-cw" in provider.calls
    assert record.settlement is None and _holds() > 0  # booked once the provider's batch has ended
    provider.batches["up-cw"]["status"] = "cancelled"
    provider.batches["up-cw"]["request_counts"] = {"total": 4, "completed": 2, "failed": 0}
    monkeypatch.setattr(watcher, "OUTBOX_GRACE_SECONDS", -60.0)
    one_pass()
    record = stored("batch_cw")
    assert record.status == "cancelled" and record.object["request_counts"]["completed"] == 2
    assert record.settlement is not None and _holds() == 0 and _watch_attribute("batch_cw") is None
    one_pass()
    cancelled = [event["id"] for _, event in published["webhooks"] if event["type"] == "batch.cancelled"]
    assert len(cancelled) == 1 and [kind for kind, _ in published["bus"]] == ["batch.cancelled"]


def test_a_batch_cancelled_while_pending_that_the_provider_never_got_is_given_up_and_its_hold_released(
    provider: FakeProvider, published: dict[str, list[Any]]
) -> None:
    import time

    from gateway.http.auth import Caller

    long_ago = int(time.time()) - adoption.ABANDON_AFTER_SECONDS - 1
    from gateway.storage import pending

    assert pending.put_new(_pending_batch("batch_cg", long_ago)) is None
    _held("batch_cg")
    assert batches.cancel_batch(Caller(key_id="key-a"), "batch_cg").status == "cancelled"
    assert one_pass().adopted == 1
    record = stored("batch_cg")
    assert record.status == "cancelled" and not pending.is_pending(record)
    assert record.settlement is not None and _holds() == 0 and _watch_attribute("batch_cg") is None


def _not_found(*args: Any, **kwargs: Any) -> Any:
    from gateway.errors import UpstreamRequestError

    raise UpstreamRequestError(
        404, "No batch found with id 'up-batch-1'.", error_type="invalid_request_error"
    )


@pytest.mark.parametrize("window_passed", [False, True])
def test_a_batch_its_provider_answers_404_for_ends_after_the_grace_period_logged_once(
    provider: FakeProvider,
    published: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    window_passed: bool,
) -> None:
    import logging
    import time
    from types import SimpleNamespace

    from gateway.service import missing_upstream

    batch_id = store_batch(provider, 1, "in_progress", owner="key-a")
    now = int(time.time())
    if not window_passed:  # created just now: its 24 h window is still open
        record = stored(batch_id)
        record.created_at = record.object["created_at"] = now
        IdMap().put(record, reverse=False)
    _held(batch_id)
    del provider.batches["up-batch-1"]  # gone from the provider's pages...
    monkeypatch.setattr(provider, "retrieve_batch", _not_found)  # ...and a 404 on its own
    caplog.set_level(logging.INFO)
    assert [one_pass().errors, one_pass().errors] == [0, 0]  # no traceback, pass after pass
    assert stored(batch_id).status == "in_progress"
    warned = [r for r in caplog.records if "answers 404" in r.getMessage()]
    assert len(warned) == 1 and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    later = now + missing_upstream.GRACE_SECONDS + 1
    monkeypatch.setattr(missing_upstream, "time", SimpleNamespace(time=lambda: later))
    assert one_pass().ended_missing == 1
    record = stored(batch_id)
    status = "expired" if window_passed else "failed"
    assert record.status == status and record.object[f"{status}_at"] == later
    assert [error["code"] for error in record.object["errors"]["data"]] == ["provider_batch_not_found"]
    assert record.settlement is not None and _holds() == 0 and _watch_attribute(batch_id) is None
    assert [kind for kind, _ in published["bus"]] == [f"batch.{status}"]
    one_pass()  # ended: no longer looked at
    assert len([r for r in caplog.records if "ended" in r.getMessage()]) == 1


def test_a_provider_that_answers_again_within_the_grace_period_keeps_the_batch(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.service import missing_upstream

    batch_id = store_batch(provider, 1, "in_progress")
    hidden = provider.batches.pop("up-batch-1")
    answer = provider.retrieve_batch
    monkeypatch.setattr(provider, "retrieve_batch", _not_found)
    one_pass()
    assert missing_upstream.MISSING_SINCE in stored(batch_id).state
    provider.batches["up-batch-1"] = hidden
    monkeypatch.setattr(provider, "retrieve_batch", answer)
    one_pass()
    assert missing_upstream.MISSING_SINCE not in stored(batch_id).state  # a later 404 starts afresh


# The sparse index: a pass reads live work, not the history ----------------------------------
def _read_by_queries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Items each DynamoDB Query of the pass read (ScannedCount: what it is billed for)."""
    from gateway.storage.dynamo import dynamodb_client

    scanned: list[int] = []
    dynamodb_client().meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: scanned.append(int(parsed.get("ScannedCount") or 0)),
    )
    return scanned


def test_a_pass_reads_only_batches_that_need_watching_not_the_finished_history(
    provider: FakeProvider, published: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(1, 41):  # finished and settled long ago
        batch_id = store_batch(provider, number, "in_progress")
        finish(provider, number)
    one_pass()  # records and settles them all
    assert all(stored(f"batch_{n:04d}").settlement is not None for n in range(1, 41))
    live = [store_batch(provider, number, "in_progress") for number in range(41, 44)]
    scanned = _read_by_queries(monkeypatch)
    report = one_pass()
    assert report.batches_seen == 3 and sum(scanned) == len(live)  # not the 40 finished ones
    assert batch_id not in live


def test_the_watch_attribute_follows_each_write_of_a_batch(provider: FakeProvider) -> None:
    import time

    from gateway.storage import pending

    record = _pending_batch("batch_w", int(time.time()))
    assert pending.put_new(record) is None
    assert _watch_attribute("batch_w") is not None  # pending
    assert pending.discard(record) and _watch_attribute("batch_w") is None  # refused: gone
    batch_id = store_batch(provider, 1, "in_progress")
    shard = _watch_attribute(batch_id)
    assert shard is not None and shard.startswith("batch#w")  # unfinished
    finish(provider, 1)
    batches.retrieve_batch(MASTER, batch_id)
    assert stored(batch_id).settlement is not None and _watch_attribute(batch_id) is None  # settled


def test_a_settled_batch_a_racing_snapshot_put_back_in_the_index_is_dropped(provider: FakeProvider) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    finish(provider, 1)
    batches.retrieve_batch(MASTER, batch_id)
    stale = stored(batch_id)
    stale.settlement = None  # read before the settlement: its snapshot writes the attribute back
    stale.object = {**stale.object, "metadata": {"seen": "again"}}
    IdMap().save_object(stale)
    assert _watch_attribute(batch_id) is not None
    assert one_pass().unwatched == 1 and _watch_attribute(batch_id) is None


def test_items_written_before_the_index_are_backfilled_once(
    provider: FakeProvider, published: dict[str, list[Any]], faults: DynamoFaults
) -> None:
    from gateway.runtime.settings import get_settings
    from gateway.storage import watch_queries
    from gateway.storage.dynamo import dynamodb_client

    old = store_batch(provider, 1, "in_progress")
    done = store_batch(provider, 2, "completed")
    for batch_id in (old, done):  # as an older gateway wrote them: no watch attribute
        dynamodb_client().update_item(
            TableName=get_settings().table_name,
            Key={"pk": {"S": batch_id}},
            UpdateExpression="REMOVE watch_shard",
        )
    finish(provider, 1)
    report = one_pass()
    assert report.backfilled == 2 and stored(old).status == "completed"  # found and refreshed
    assert stored(old).settlement and stored(done).settlement  # the one left unsettled is booked too
    assert _watch_attribute(done) is None and watch_queries.backfill_done(IdMap())
    assert one_pass().backfilled == 0  # once per table


def test_the_watch_attribute_follows_each_write_of_a_waiting_file(provider: FakeProvider) -> None:
    from gateway.storage import pending, transitions

    def waiting(file_id: str, state: dict[str, Any]) -> ObjectRecord:
        return ObjectRecord(
            id=file_id,
            kind="file",
            owner="master",
            provider="openai",
            created_at=1_700_000_000,
            object={
                "id": file_id,
                "object": "file",
                "bytes": 3,
                "created_at": 1_700_000_000,
                "filename": "a.jsonl",
                "purpose": "batch",
                "status": "uploaded",
            },
            state=state,
        )

    created = waiting("file-created", {pending.PENDING: {"attempted_at": 1_700_000_000}})
    assert pending.put_new(created) is None and _watch_attribute("file-created") is not None
    created.upstream_id, created.state = "up-file", {}
    created.object = {**created.object, "status": "processed"}
    assert pending.attach_upstream(created, expected_status="uploaded")
    assert _watch_attribute("file-created") is None  # its provider has it

    moved = waiting("file-moved", {"transfer": {"upload_id": "upload_x", "deadline": 1_700_000_100}})
    IdMap().put(moved)
    assert _watch_attribute("file-moved") is not None  # a transfer under way
    moved.upstream_id = "up-moved"
    moved.object = {**moved.object, "status": "processed"}
    assert transitions.record_transferred(moved) and _watch_attribute("file-moved") is None
