# ruff: noqa: F811  (the provider fixture imported from test_batches_service is a parameter here)
"""OpenAI's contract for a bad batch file, on the create path (service/batches.py against moto
and an in-memory provider): the create answers the batch, `failed` at once with OpenAI's
`errors`, settled at zero in the same write, its `batch.failed` event in the outbox, no
provider call and no hold; a write that fails leaves nothing, and a retry meets the first."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from gateway.http.auth import Caller
from gateway.models.batches import CreateBatchRequest
from gateway.service import batches
from gateway.service.batch_input_check import BATCH_CHECK_STATE, CheckRules, check_batch_input
from gateway.storage import outbox
from gateway.storage.budgets import BudgetStore
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.settlements import SettlementStore

from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.test_batches_service import FakeBatchesApi, provider  # noqa: F401  (fixture)

KEY = Caller(key_id="k-bad-file")
GOOD: dict[str, Any] = {
    "custom_id": "r-1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
}


def checked_file(
    lines: list[dict[str, Any]], file_id: str = "file-bad", rules: CheckRules | None = None
) -> None:
    """A processed input file of KEY's, with the figures and problems its upload's check kept."""
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    figures = check_batch_input(io.BytesIO(content), rules).figures()
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner=KEY.key_id,
            provider="openai",
            created_at=1000,
            object={
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": 1000,
                "filename": "a.jsonl",
                "purpose": "batch",
                "status": "processed",
            },
            upstream_id=f"up-{file_id}",
            purpose="batch",
            state={BATCH_CHECK_STATE: figures},
        )
    )


def request(endpoint: str = "/v1/chat/completions", file_id: str = "file-bad") -> CreateBatchRequest:
    return CreateBatchRequest(input_file_id=file_id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]


def errors_of(batch: Any) -> list[tuple[str, str | None, int | None]]:
    return [(error.code, error.param, error.line) for error in batch.errors.data]


@pytest.fixture
def budgeted(provider: FakeBatchesApi) -> FakeBatchesApi:
    BudgetStore().configure(KEY.key_id, Decimal(10), None)
    return provider


def outbox_types() -> list[str]:
    return [event.detail_type for event in outbox.left_behind(-60)]


@pytest.mark.parametrize(
    ("lines", "endpoint", "expected"),
    [
        (
            [{"test": "data"}],
            "/v1/chat/completions",
            [("missing_required_parameter", name, 1) for name in ("custom_id", "method", "url", "body")],
        ),
        ([GOOD, GOOD], "/v1/chat/completions", [("duplicate_custom_id", "custom_id", 2)]),
        (
            [GOOD, {**GOOD, "custom_id": "r-2", "body": {**GOOD["body"], "model": "gpt-4o"}}],
            "/v1/chat/completions",
            [("mismatched_model", "body.model", 2)],
        ),
        ([GOOD], "/v1/embeddings", [("invalid_url", "url", 1)]),
        ([{**GOOD, "url": "/v1/audio/speech"}], "/v1/chat/completions", [("invalid_url", "url", 1)]),
        (
            [{**GOOD, "body": {"messages": []}}],
            "/v1/chat/completions",
            [("invalid_request", "body.model", 1)],
        ),
        ([{**GOOD, "method": "GET"}], "/v1/chat/completions", [("invalid_request", "method", 1)]),
        (
            [{**GOOD, "body": {**GOOD["body"], "stream": True}}],
            "/v1/chat/completions",
            [("streaming_unsupported", "body.stream", 1)],
        ),
    ],
)
def test_a_bad_file_makes_a_failed_batch_that_never_reaches_the_provider_and_costs_nothing(
    budgeted: FakeBatchesApi, lines: list[dict[str, Any]], endpoint: str, expected: list[Any]
) -> None:
    checked_file(lines)
    batch = batches.create_batch(KEY, None, request(endpoint))
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.object == "list"
    assert errors_of(batch) == expected
    assert budgeted.calls == []  # no provider saw it
    held = BudgetStore().get(KEY.key_id)
    assert held is not None and (held.holds, held.held_batches, held.spend) == (0, frozenset(), 0)
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.status == "failed" and stored.upstream_id is None
    assert stored.settlement is not None and stored.settlement["usage"]["input_tokens"] == 0
    assert Decimal(stored.settlement["cost"]["total"]) == 0  # settled, at zero, in the create's own write
    (entry,) = SettlementStore().spend_entries(0, 10**16 - 1)
    assert (entry["batch_id"], entry["cost"], entry["key_id"]) == (batch.id, 0, KEY.key_id)
    assert outbox_types() == ["batch.failed"]  # the watcher publishes it
    assert batches.retrieve_batch(KEY, batch.id).errors == batch.errors  # no provider call either
    assert budgeted.calls == []


def test_a_good_file_still_reaches_the_provider(budgeted: FakeBatchesApi) -> None:
    checked_file([GOOD])
    batch = batches.create_batch(KEY, None, request())
    assert batch.status == "validating" and [call for call, _ in budgeted.calls] == ["create"]


def test_more_problems_than_listed_end_with_their_count(budgeted: FakeBatchesApi) -> None:
    checked_file([GOOD] * 13)
    batch = batches.create_batch(KEY, None, request())
    assert batch.errors is not None and batch.errors.data is not None
    assert [error.line for error in batch.errors.data[:10]] == list(range(2, 12))
    assert (batch.errors.data[10].code, batch.errors.data[10].message) == (
        "more_errors",
        "And 2 more problems.",
    )


@pytest.mark.parametrize("when", ["before", "after"])
def test_the_one_write_is_safe_to_interrupt_and_to_retry(budgeted: FakeBatchesApi, when: str) -> None:
    """The record, its settlement, its spend entry and its event are one transaction: failed
    before, nothing is written; its answer lost, the retry (same id, as an Idempotency-Key
    gives) meets the batch the first attempt wrote."""
    checked_file([{"test": "data"}])
    faults = DynamoFaults(dynamodb_client())
    faults.fail("TransactWriteItems", when=when)  # type: ignore[arg-type]
    with pytest.raises(Exception) as failed:
        batches.create_batch(KEY, None, request(), batch_id="batch_retried")
    assert faults.fired and not isinstance(failed.value, AssertionError)
    written = IdMap().get("batch_retried")
    entries = list(SettlementStore().spend_entries(0, 10**16 - 1))
    if when == "before":
        assert written is None and entries == [] and outbox_types() == []
    else:
        assert written is not None and written.settlement and len(entries) == 1
    batch = batches.create_batch(KEY, None, request(), batch_id="batch_retried")
    assert batch.id == "batch_retried" and batch.status == "failed"
    assert len(list(SettlementStore().spend_entries(0, 10**16 - 1))) == 1
    assert outbox_types() == ["batch.failed"]
    assert budgeted.calls == []


def test_a_retry_with_another_request_under_the_same_id_is_refused(budgeted: FakeBatchesApi) -> None:
    checked_file([{"test": "data"}])
    batches.create_batch(KEY, None, request(), batch_id="batch_once")
    with pytest.raises(Exception) as refused:
        batches.create_batch(KEY, None, request("/v1/embeddings"), batch_id="batch_once")
    assert getattr(refused.value, "status_code", None) in (400, 409, 422)


def test_the_transaction_is_all_or_nothing(budgeted: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed spend-entry put (say) takes the record with it."""
    checked_file([{"test": "data"}])
    client = dynamodb_client()
    real = client.transact_write_items

    def cancel(**kwargs: Any) -> Any:
        items = kwargs["TransactItems"]
        assert [next(iter(item)) for item in items] == ["Put", "Put", "Put"]
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(client, "transact_write_items", cancel)
    with pytest.raises(ClientError):
        batches.create_batch(KEY, None, request(), batch_id="batch_nothing")
    monkeypatch.setattr(client, "transact_write_items", real)
    assert IdMap().get("batch_nothing") is None


def test_the_watcher_publishes_the_batch_failed_event_once(
    budgeted: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's function publishes nothing (it holds no bus or queue grant): the next
    watcher pass publishes the event it left in the outbox, with the failed batch in it."""
    from gateway.runtime import event_bus
    from gateway.service import watcher
    from gateway.service.deadline import Deadline

    checked_file([{"test": "data"}])
    batch = batches.create_batch(KEY, None, request())
    published: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        event_bus, "put_event", lambda detail_type, detail: published.append((detail_type, detail))
    )
    later = outbox.time.time() + 60  # past the outbox's grace: the publisher is taken for dead
    monkeypatch.setattr(outbox.time, "time", lambda: later)
    watcher.run_pass(Deadline.after(30))
    watcher.run_pass(Deadline.after(30))
    assert [(kind, detail["batch"]["id"], detail["batch"]["status"]) for kind, detail in published] == [
        ("batch.failed", batch.id, "failed")
    ]
    assert outbox_types() == [] and budgeted.calls == []


def test_a_file_over_the_providers_request_limit_fails_with_too_many_tasks(budgeted: FakeBatchesApi) -> None:
    lines = [{**GOOD, "custom_id": f"r-{i}"} for i in range(3)]
    checked_file(lines, rules=CheckRules(max_lines=2))  # as a provider taking 2 requests would
    batch = batches.create_batch(KEY, None, request())
    assert batch.status == "failed" and errors_of(batch) == [("too_many_tasks", None, None)]
    assert budgeted.calls == []
