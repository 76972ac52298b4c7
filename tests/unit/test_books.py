"""The books' invariants (service.books): each one catches the state that breaks it, passes the
state that keeps it, and the watcher checks them on what its pass touched."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest
from gateway.runtime import resources
from gateway.service import adoption, batches, books, translate, watcher
from gateway.service.deadline import Deadline
from gateway.storage import outbox, pending
from gateway.storage.budgets import BudgetStore, budget_pk
from gateway.storage.dynamo import dynamodb_client, marshal
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.outbox import OutboxEvent
from gateway.storage.settlements import SettlementStore

from devserver import aws as local_aws
from tests.unit.fault_injection.providers import FakeProvider, store_batch

NOW = 1_800_000_000


def batch(
    batch_id: str,
    *,
    owner: str = "key-a",
    status: str = "in_progress",
    upstream_id: str | None = None,
    state: dict[str, Any] | None = None,
    id_map: IdMap | None = None,
    **fields: Any,
) -> ObjectRecord:
    record = ObjectRecord(
        id=batch_id,
        kind="batch",
        owner=owner,
        provider="openai",
        created_at=NOW - 3600,
        object={"id": batch_id, "object": "batch", "status": status, "input_file_id": "file-in", **fields},
        upstream_id=upstream_id,
        state={"input_file_id": "file-in", **(state or {})},
    )
    (id_map or IdMap()).put(record)
    return record


def file(file_id: str, *, owner: str = "key-a", upstream_id: str | None = None) -> ObjectRecord:
    record = ObjectRecord(
        id=file_id,
        kind="file",
        owner=owner,
        provider="openai",
        created_at=NOW - 3600,
        object={"id": file_id, "object": "file", "status": "processed"},
        upstream_id=upstream_id or f"up-{file_id}",
        purpose="batch",
    )
    IdMap().put(record)
    return record


def audit() -> dict[str, list[str]]:
    return books.audit(now=NOW)


def set_budget(budget_of: str, **values: Any) -> None:
    dynamodb_client().update_item(
        TableName=IdMap().table,
        Key={resources.TABLE_PARTITION_KEY: {"S": budget_pk(budget_of)}},
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
        ExpressionAttributeNames={f"#{name}": name for name in values},
        ExpressionAttributeValues=marshal({f":{name}": value for name, value in values.items()}),
    )


def test_the_books_of_an_empty_table_and_of_a_settled_batch_balance(aws: None) -> None:
    assert audit() == {}
    file("file-in")
    record = batch("batch_ok", status="completed", upstream_id="up-ok", completed_at=NOW - 5000)
    BudgetStore().hold("key-a", Decimal("0.5"), "batch_ok", now=NOW)
    entry = {"created_key": f"{NOW:016d}#batch_ok", "key_id": "key-a", "cost": Decimal("0.25")}
    entry |= {"batch_id": "batch_ok", "settled_at": NOW}
    store = BudgetStore()
    update = store.settlement_update("key-a", record.id, Decimal("0.5"), Decimal("0.25"))
    assert SettlementStore().commit(record.id, {"cost": "0.25"}, entry, update)
    assert audit() == {}


def test_a_finished_batch_unsettled_past_one_pass_is_a_violation(aws: None) -> None:
    file("file-in")
    batch("batch_late", status="completed", upstream_id="up-late", completed_at=NOW - 1000)
    batch("batch_fresh", status="failed", upstream_id="up-fresh", failed_at=NOW - 5)
    assert books.unsettled_finished(books_of_table(), NOW) == ["batch_late"]


def test_an_audit_reads_the_table_and_client_it_is_given(aws: None) -> None:
    """What the integration suite does for a devserver subprocess: audit another endpoint's
    table (here another region's, which the cached client cannot see) without touching the
    cached client or the settings' table."""
    elsewhere = boto3.client("dynamodb", region_name="eu-west-1")
    local_aws.ensure_table(elsewhere, "books-elsewhere")
    other = IdMap("books-elsewhere", client=elsewhere)
    batch("batch_elsewhere", status="completed", upstream_id="up-else", completed_at=NOW - 1000, id_map=other)
    assert books.audit(other, now=NOW) == {"unsettled_finished": ["batch_elsewhere"]}
    assert audit() == {}  # the settings' table, through the cached client, is another one
    assert IdMap().client is dynamodb_client()


def test_spend_that_is_not_the_sum_of_its_entries_is_a_violation(aws: None) -> None:
    set_budget(
        "key-a", key_id="key-a", kind="budget", spend=Decimal("1.5"), holds=0, headroom=Decimal("-1.5")
    )
    assert audit() == {"spend_off": ["key-a"]}


def test_spend_of_a_budget_period_counts_the_entries_since_it_began(aws: None) -> None:
    day = 86_400
    for batch_id, settled, cost in (("batch_old", NOW - 2 * day, "2"), ("batch_new", NOW - 10, "1")):
        dynamodb_client().put_item(
            TableName=IdMap().table,
            Item=marshal(
                {"pk": f"spend#{batch_id}", "kind": "spend", "created_key": f"{settled:016d}#{batch_id}"}
                | {"key_id": "key-a", "cost": Decimal(cost), "settled_at": settled}
            ),
        )
    period = {"key_id": "key-a", "kind": "budget", "holds": 0, "budget_duration": day, "reset_at": NOW + 10}
    set_budget("key-a", **period, spend=Decimal(1), headroom=Decimal(9), max_budget=Decimal(10))
    assert audit() == {}  # reset: last period's 2 no longer counts
    set_budget("key-a", spend=Decimal(3), headroom=Decimal(7))
    assert audit() == {}  # not reset yet (lazily): both count
    set_budget("key-a", spend=Decimal("0.5"), headroom=Decimal("9.5"))
    assert audit() == {"spend_off": ["key-a"]}  # less than this period booked


def test_a_hold_of_a_batch_that_is_gone_or_settled_is_a_violation(aws: None) -> None:
    BudgetStore().hold("key-a", Decimal(2), "batch_gone", now=NOW)
    assert audit() == {"holds_off": ["key-a"]}


def test_holds_that_differ_from_the_holds_of_the_held_batches_are_a_violation(aws: None) -> None:
    file("file-in")
    batch("batch_run", upstream_id="up-run", state={"hold": "2"})
    BudgetStore().hold("key-a", Decimal(2), "batch_run", now=NOW)
    assert audit() == {}
    set_budget("key-a", holds=Decimal(3), headroom=Decimal(-3))
    assert audit() == {"holds_off": ["key-a"]}


def test_headroom_off_its_formula_is_a_violation(aws: None) -> None:
    set_budget("key-a", key_id="key-a", kind="budget", spend=0, holds=0, headroom=Decimal(1))
    assert audit() == {"headroom_off": ["key-a"]}


def test_a_running_batch_its_owners_budget_does_not_hold_is_a_violation(aws: None) -> None:
    file("file-in")
    BudgetStore().hold("key-a", Decimal(0), "batch_held", now=NOW)
    batch("batch_held", upstream_id="up-held", state={"hold": "0"})
    batch("batch_unheld", upstream_id="up-unheld", state={"hold": "1"})
    assert audit() == {"unheld_batches": ["batch_unheld"]}


def test_a_pending_record_the_watcher_does_not_see_is_a_violation(aws: None) -> None:
    file("file-in")
    watched = batch("batch_wait", owner="master", status="validating", state={pending.PENDING: {"at": NOW}})
    cancelled = batch("batch_gone", owner="master", status="cancelled", state={pending.PENDING: {"at": NOW}})
    assert pending.is_pending(watched) and pending.is_pending(cancelled)
    assert books.unwatched_pending(books_of_table()) == []  # every write keeps a pending record watched
    _lose_watch("batch_gone")  # a write that forgot the index attribute
    assert books.unwatched_pending(books_of_table()) == ["batch_gone"]


def _lose_watch(record_id: str) -> None:
    dynamodb_client().update_item(
        TableName=IdMap().table,
        Key={resources.TABLE_PARTITION_KEY: {"S": record_id}},
        UpdateExpression="REMOVE #watch",
        ExpressionAttributeNames={"#watch": resources.WATCH_ATTRIBUTE},
    )


def test_an_outbox_event_older_than_a_pass_is_a_violation(aws: None) -> None:
    for event_id, age in (("evt_old", books.ONE_PASS_SECONDS + 1), ("evt_new", 5)):
        event = OutboxEvent(
            {"id": event_id}, "batch.completed", {}, "key-a", "openai", (NOW - age) * 1_000_000
        )
        dynamodb_client().put_item(TableName=IdMap().table, Item=marshal(event.to_item()))
    assert audit() == {"stale_outbox": ["evt_old"]}
    assert books.ONE_PASS_SECONDS >= watcher.OUTBOX_GRACE_SECONDS == books.OUTBOX_GRACE_SECONDS


def test_one_provider_object_attached_to_two_gateway_ids_is_a_violation(aws: None) -> None:
    file("file-a", owner="key-a", upstream_id="up-same")
    IdMap().put(
        ObjectRecord(
            id="file-b",
            kind="file",
            owner="key-b",
            provider="openai",
            created_at=NOW,
            object={"id": "file-b"},
            upstream_id="up-same",
        ),
        reverse=False,
    )
    found = audit()
    assert found["shared_upstream"] == ["file-a", "file-b"]


def test_a_reverse_item_naming_a_record_attached_elsewhere_is_a_violation(aws: None) -> None:
    file("file-a", upstream_id="up-a")
    assert IdMap().claim_upstream("openai", "up-other", "file-a") == "file-a"
    assert audit() == {"stray_reverse": ["file-a"]}


def test_a_batch_naming_another_owners_file_is_a_violation(aws: None) -> None:
    file("file-in", owner="key-b")
    file("file-out", owner="key-b", upstream_id="up-out")
    batch(
        "batch_a",
        owner="master",
        status="in_progress",
        upstream_id="up-a",
        state={"files": {"up-out": "file-out"}},
    )
    assert audit() == {}  # the master key may use any file
    batch(
        "batch_x",
        owner="key-x",
        status="in_progress",
        upstream_id="up-x",
        state={"files": {"up-out": "file-out"}},
    )
    found = audit()
    assert found.pop("foreign_objects") == ["file-in", "file-out"]
    assert set(found) <= {"unheld_batches"}


def books_of_table() -> books.Books:
    table = books.Books(spend={})
    for item in books.books_queries.every_item(IdMap().table):
        table.add(item)
    table.watched = books._watched(IdMap())
    return table


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    for module in (watcher, batches, translate, adoption):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    monkeypatch.setattr(watcher.batch_events.event_bus, "put_event", lambda kind, detail: None)
    return fake


def test_the_watcher_checks_what_its_pass_touched_and_logs_ids_only(
    provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    store_batch(provider, 1, owner="key-a")
    BudgetStore().hold("key-a", Decimal(0), "batch_0001", now=int(time.time()))
    report = watcher.run_pass(Deadline.after(60))
    assert report.violations == 0 and report.errors == 0

    BudgetStore().hold("key-a", Decimal(1), "batch_gone", now=int(time.time()))  # a hold never given back
    caplog.set_level(logging.WARNING)
    report = watcher.run_pass(Deadline.after(60))
    assert report.violations == 1 and report.errors == 0
    warnings = [r for r in caplog.records if "invariant violated" in r.getMessage()]
    assert [(r.invariant, r.ids) for r in warnings] == [("holds_off", ["key-a"])]  # type: ignore[attr-defined]


def test_a_pending_record_the_pass_left_unwatched_is_counted(provider: FakeProvider) -> None:
    store_batch(provider, 1, owner="master")
    record = IdMap().get("batch_0001")
    assert record is not None
    left = ObjectRecord(**{**record.__dict__, "id": "batch_left", "upstream_id": None})
    left.object = {**left.object, "id": "batch_left", "status": "cancelled"}
    left.state = {pending.PENDING: {"attempted_at": NOW}}
    IdMap().put(left)
    _lose_watch("batch_left")
    found = books.check_pass(IdMap(), [record, left], now=NOW + adoption.ABANDON_AFTER_SECONDS + 3600)
    # a batch cancelled while pending, out of the watcher's sight (a write that lost the index
    # attribute): long past its give-up, and never settled
    assert found == {"unwatched_pending": ["batch_left"], "unsettled_finished": ["batch_left"]}
    assert outbox.left_behind(0) == []


def test_a_final_plan_whose_files_are_still_in_the_bucket_is_a_violation(aws: None) -> None:
    from gateway.runtime.settings import get_settings
    from gateway.storage import plan_files
    from gateway.storage.watch import PLAN

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=get_settings().bucket_name)
    file("file-in")
    plan = {"parts": 0, "lines": 0}
    batch("batch_planleft", status="cancelled", state={PLAN: plan}, cancelled_at=NOW - 5000)
    batch("batch_planrunning", status="in_progress", state={PLAN: plan})
    batch("batch_nofiles", status="cancelled", state={PLAN: plan}, cancelled_at=NOW - 5000)
    for batch_id in ("batch_planleft", "batch_planrunning"):
        key = plan_files.index_key(plan_files.plan_prefix(batch_id), 0)
        s3.put_object(Bucket=get_settings().bucket_name, Key=key, Body=b'1\t"a"\n')
    assert books.audit(now=NOW).get("plan_files_left") == ["batch_planleft"]
    plan_files.delete_plan_files("batch_planleft")
    assert "plan_files_left" not in books.audit(now=NOW)
