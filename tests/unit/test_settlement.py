"""Settlement: a finished batch's usage and cost, booked exactly once against its owner's budget."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from gateway.formats.jsonl import split_lines
from gateway.models.batches import Batch
from gateway.service.settlement import settle_if_finished
from gateway.storage.budgets import BudgetStore
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.settlements import SettlementStore

pytestmark = pytest.mark.usefixtures("aws")

OWNER = "key-owner"


def output_line(custom_id: str, status: int, prompt: int, completion: int) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return json.dumps(
        {"custom_id": custom_id, "response": {"status_code": status, "body": {"usage": usage}}}
    ).encode()


OUTPUT = [
    output_line("a", 200, 1_000_000, 0),
    output_line("b", 200, 0, 500_000),
    output_line("c", 500, 9_000_000, 9_000_000),  # a failed request costs nothing
]


def finished_batch(
    status: str = "completed", model: str = "gpt-4o-mini", hold: str = "1.00"
) -> tuple[ObjectRecord, Batch]:
    batch = Batch.model_validate(
        {
            "id": "batch_settle",
            "completion_window": "24h",
            "created_at": 1000,
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-in",
            "status": status,
            "output_file_id": "file-out",
        }
    )
    record = ObjectRecord(
        id=batch.id,
        kind="batch",
        owner=OWNER,
        provider="openai",
        created_at=1000,
        object=batch.model_dump(mode="json"),
        upstream_id="up-batch",
        state={"files": {"up-out": "file-out"}, "model": model, "hold": hold},
    )
    IdMap().put(record)
    return record, batch


class CountingReader:
    def __init__(self, lines: list[bytes], fail: bool = False) -> None:
        self.lines, self.fail, self.calls = lines, fail, 0
        self.lock = threading.Lock()

    def __call__(self, record: ObjectRecord, upstream_file_id: str) -> Iterable[bytes]:
        assert upstream_file_id == "up-out"
        with self.lock:
            self.calls += 1
        if self.fail:
            raise ConnectionError("provider went away")
        return list(self.lines)


def spend_entries() -> list[dict[str, Any]]:
    return list(SettlementStore().spend_entries(0, 10**16 - 1))


def test_a_finished_batch_carries_usage_and_cost_and_books_them_once() -> None:
    BudgetStore().configure(OWNER, Decimal(10), None)
    BudgetStore().hold(OWNER, Decimal("1.00"), "batch_settle")
    record, batch = finished_batch()
    reader = CountingReader(OUTPUT)
    settled = settle_if_finished(record, batch, read_output=reader, now=2000)
    assert settled.usage is not None and settled.usage.model_dump()["input_tokens"] == 1_000_000
    assert settled.usage.model_dump()["output_tokens"] == 500_000
    # 1M input x 0.15/2 per M + 0.5M output x 0.60/2 per M
    assert settled.cost is not None and (settled.cost.input, settled.cost.output, settled.cost.total) == (
        0.075,
        0.15,
        0.225,
    )
    budget = BudgetStore().get(OWNER)
    assert budget is not None and (budget.spend, budget.holds, budget.headroom) == (
        Decimal("0.225"),
        Decimal(0),
        Decimal("9.775"),
    )
    assert [(e["batch_id"], e["key_id"], e["model"]) for e in spend_entries()] == [
        ("batch_settle", OWNER, "gpt-4o-mini")
    ]
    again = settle_if_finished(IdMap().get(record.id), batch, read_output=reader)  # type: ignore[arg-type]
    assert again.cost == settled.cost and reader.calls == 1


@pytest.mark.usefixtures("atomic_dynamodb")
def test_fifty_concurrent_retrieves_book_the_cost_once() -> None:
    record, batch = finished_batch()
    reader = CountingReader(OUTPUT)

    def retrieve(_: int) -> Batch:
        fresh = IdMap().get(record.id)
        assert fresh is not None
        return settle_if_finished(fresh, batch, read_output=reader)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(retrieve, range(50)))
    assert reader.calls == 1
    assert len(spend_entries()) == 1
    assert BudgetStore().get(OWNER).spend == Decimal("0.225")  # type: ignore[union-attr]
    assert any(result.cost is not None for result in results)
    final = settle_if_finished(IdMap().get(record.id), batch, read_output=reader)  # type: ignore[arg-type]
    assert final.cost is not None and final.cost.total == 0.225


def test_a_model_with_no_price_settles_usage_with_cost_null() -> None:
    record, batch = finished_batch(model="house-model")
    settled = settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))
    assert settled.usage is not None and settled.cost is None
    assert BudgetStore().get(OWNER).spend == Decimal(0)  # type: ignore[union-attr]
    assert spend_entries()[0]["priced"] is False


def test_a_failed_read_leaves_the_batch_for_a_later_call() -> None:
    record, batch = finished_batch()
    unsettled = settle_if_finished(record, batch, read_output=CountingReader(OUTPUT, fail=True))
    assert unsettled.usage is None and unsettled.cost is None
    fresh = IdMap().get(record.id)
    assert fresh is not None and fresh.settlement is None
    settled = settle_if_finished(fresh, batch, read_output=CountingReader(OUTPUT))
    assert settled.cost is not None and len(spend_entries()) == 1


def test_an_unfinished_batch_is_not_settled() -> None:
    record, batch = finished_batch(status="in_progress")
    reader = CountingReader(OUTPUT)
    assert settle_if_finished(record, batch, read_output=reader).usage is None
    assert reader.calls == 0 and spend_entries() == []


def test_a_cancelled_batch_without_output_books_nothing_and_releases_its_hold() -> None:
    BudgetStore().hold(OWNER, Decimal("1.00"), "batch_settle")
    record, batch = finished_batch(status="cancelled")
    batch = batch.model_copy(update={"output_file_id": None})
    settled = settle_if_finished(record, batch, read_output=CountingReader([]))
    assert settled.cost is not None and settled.cost.total == 0
    budget = BudgetStore().get(OWNER)
    assert budget is not None and (budget.spend, budget.holds) == (Decimal(0), Decimal(0))


def test_split_lines_joins_lines_cut_across_chunks() -> None:
    chunks = [b'{"a":', b"1}\n{", b'"b":2}\n', b"\n", b"tail"]
    assert list(split_lines(chunks)) == [b'{"a":1}', b'{"b":2}', b"", b"tail"]


def test_split_lines_stops_at_a_line_over_the_limit() -> None:
    assert list(split_lines([b"ab\n", b"0123", b"456789\nnext\n"], max_line_bytes=5)) == [b"ab", b"012345"]


@pytest.mark.parametrize(
    ("deployment", "model", "total"),
    [
        # 1M input x 3/2 per M + 0.5M output x 15/2 per M, Message Batches at half the standard price
        ({"type": "anthropic"}, "claude-sonnet-4-5-20250929", Decimal("5.25")),
        # Bedrock's batch column: 1M input x 0.40 + 0.5M output x 2.00, through a US profile
        (
            {"type": "bedrock", "region": "us-west-2"},
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            Decimal("1.40"),
        ),
    ],
)
def test_a_claude_batch_settles_with_a_cost_its_budget_pays(
    monkeypatch: pytest.MonkeyPatch, deployment: dict[str, Any], model: str, total: Decimal
) -> None:
    import os

    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings

    providers = json.loads(os.environ[resources.ENV_PROVIDERS]) | {"claude": deployment}
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(providers))
    reset_settings()
    BudgetStore().configure(OWNER, Decimal(10), None)
    BudgetStore().hold(OWNER, Decimal("8.00"), "batch_settle")
    record, batch = finished_batch(model=model, hold="8.00")
    record.provider = "claude"
    IdMap().put(record)
    settled = settle_if_finished(record, batch, read_output=CountingReader(OUTPUT), now=2000)
    assert settled.cost is not None and Decimal(str(settled.cost.total)) == total
    budget = BudgetStore().get(OWNER)
    assert budget is not None and (budget.spend, budget.holds, budget.headroom) == (
        total,
        Decimal(0),
        Decimal(10) - total,
    )
    assert [(e["model"], e["priced"]) for e in spend_entries()] == [(model, True)]


def test_a_batch_settled_after_its_budget_period_ended_is_the_new_periods_spend() -> None:
    store = BudgetStore()
    store.configure(OWNER, Decimal(10), 3600, now=1_000)
    store.hold(OWNER, Decimal("1.00"), "batch_settle", now=1_000)
    dynamodb_client().transact_write_items(  # last period's spend
        TransactItems=[
            store.settlement_update(OWNER, "batch_old", held=Decimal(0), cost=Decimal(6), holding=False)
        ]
    )
    record, batch = finished_batch()
    settle_if_finished(record, batch, read_output=CountingReader(OUTPUT), now=1_000 + 3600 + 5)
    budget = store.get(OWNER)
    assert budget is not None and (budget.spend, budget.holds, budget.reset_at) == (
        Decimal("0.225"),
        Decimal(0),
        1_000 + 2 * 3600,
    )
    assert budget.headroom == Decimal(10) - Decimal("0.225")


def _watched(batch_id: str) -> bool:
    from gateway.runtime.settings import get_settings
    from gateway.storage.dynamo import dynamodb_client

    item = dynamodb_client().get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": batch_id}}, ConsistentRead=True
    )["Item"]
    return "watch_shard" in item


def test_a_finished_unsettled_batch_stays_watched_until_its_settlement_commits() -> None:
    record, batch = finished_batch()
    assert _watched(record.id)  # finished, not settled: the watcher's work
    settle_if_finished(record, batch, read_output=CountingReader(OUTPUT, fail=True))
    assert record.settlement is None and _watched(record.id)  # failed: still watched, retried
    settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))
    assert record.settlement is not None and not _watched(record.id)  # out with the settlement


def test_a_settlement_before_the_final_status_is_stored_leaves_the_batch_watched() -> None:
    """A refresh settles, then stores the status: should that write fail, the batch (still
    unfinished in the table) must stay watched, not vanish from the watcher's index."""
    record, batch = finished_batch()
    record.object = {**record.object, "status": "in_progress"}
    IdMap().put(record, reverse=False)  # the table holds it unfinished
    settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))
    assert record.settlement is not None and _watched(record.id)
