# ruff: noqa: F811  (the provider fixture imported from test_batches_service is a parameter here)
"""A key's budget on the create path (service/batches.py against moto and an in-memory
provider): what a create holds, under which batch id, what a refused create leaves, and what a
retry of a create that died midway holds (once per batch)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from gateway.errors import InvalidRequestError, UpstreamError, UpstreamRequestError
from gateway.http.auth import Caller
from gateway.models.batches import CreateBatchRequest
from gateway.service import batches, budget
from gateway.storage.budgets import BudgetStore
from gateway.storage.id_map import IdMap, ObjectRecord

from tests.unit.fault_injection.create_support import records
from tests.unit.test_batches_service import FakeBatchesApi, provider  # noqa: F401  (fixture)

KEY = Caller(key_id="k-budget")
BUDGET = Decimal(10)


def _checked_file(file_id: str = "file-in") -> Decimal:
    """A processed input file of KEY's, checked at upload; what a batch on it is estimated at."""
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
                "bytes": 3,
                "created_at": 1000,
                "filename": "a.jsonl",
                "purpose": "batch",
                "status": "processed",
            },
            upstream_id=f"up-{file_id}",
            purpose="batch",
            state={
                "batch_check": {
                    "model": "gpt-4o-mini",
                    "input_token_estimate": 2_000_000,
                    "output_token_limit": 1_000_000,
                }
            },
        )
    )
    model, estimate = budget.estimate_batch_cost(IdMap().get(file_id))  # type: ignore[arg-type]
    assert model == "gpt-4o-mini" and estimate is not None and 0 < estimate < BUDGET
    return estimate


def _request(file_id: str = "file-in") -> CreateBatchRequest:
    return CreateBatchRequest(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")


def _budget() -> tuple[Decimal, frozenset[str]]:
    held = BudgetStore().get(KEY.key_id)
    assert held is not None
    return held.holds, held.held_batches


@pytest.fixture
def budgeted(provider: FakeBatchesApi) -> Decimal:
    BudgetStore().configure(KEY.key_id, BUDGET, None)
    return _checked_file()


def test_a_create_holds_its_estimate_under_its_own_batch_id(budgeted: Decimal) -> None:
    batch = batches.create_batch(KEY, None, _request())
    assert _budget() == (budgeted, frozenset({batch.id}))
    stored = IdMap().get(batch.id)
    assert (
        stored is not None
        and stored.state["hold"] == str(budgeted)
        and stored.state["model"] == "gpt-4o-mini"
    )


def test_a_create_over_budget_is_refused_and_leaves_no_batch(
    provider: FakeBatchesApi, budgeted: Decimal
) -> None:
    BudgetStore().configure(KEY.key_id, budgeted / 2, None)
    with pytest.raises(InvalidRequestError) as refused:
        batches.create_batch(KEY, None, _request())
    assert refused.value.code == "budget_exceeded"
    assert provider.calls == []
    assert records("batch") == []  # the record written ahead is discarded with the refusal
    assert _budget()[0] == 0


def test_a_create_the_provider_refuses_gives_its_hold_back_and_leaves_no_batch(
    provider: FakeBatchesApi, budgeted: Decimal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(body: object, **_: object) -> dict[str, object]:
        raise UpstreamRequestError(400, "Invalid input file.", error_type="invalid_request_error")

    monkeypatch.setattr(provider, "create_batch", refuse)
    with pytest.raises(UpstreamRequestError):
        batches.create_batch(KEY, None, _request(), batch_id="batch_refused")
    assert _budget() == (Decimal(0), frozenset())
    assert IdMap().get("batch_refused") is None


def test_a_create_whose_provider_failed_keeps_its_hold_for_the_retry(
    provider: FakeBatchesApi, budgeted: Decimal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5xx is no proof the provider made nothing: the record and its hold stay, on the first
    attempt and on a retry, until the watcher or a retry settles the batch."""
    real = provider.create_batch

    def unavailable(body: object, **_: object) -> dict[str, object]:
        raise UpstreamError("provider answered 503")

    monkeypatch.setattr(provider, "create_batch", unavailable)
    for _attempt in range(2):
        with pytest.raises(UpstreamError):
            batches.create_batch(KEY, None, _request(), batch_id="batch_retried")
        assert _budget() == (budgeted, frozenset({"batch_retried"}))
    monkeypatch.setattr(provider, "create_batch", real)
    batch = batches.create_batch(KEY, None, _request(), batch_id="batch_retried")
    assert batch.id == "batch_retried" and _budget() == (budgeted, frozenset({"batch_retried"}))


def _dies_once_before_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    real = batches._hold_or_discard
    calls: list[str] = []

    def hold(caller: Caller, record: ObjectRecord, estimate: Decimal) -> None:
        calls.append(record.id)
        if len(calls) == 1:
            raise RuntimeError("the function was stopped here")
        real(caller, record, estimate)

    monkeypatch.setattr(batches, "_hold_or_discard", hold)


def test_a_retry_of_a_create_that_died_before_its_hold_holds_it_once(
    provider: FakeBatchesApi, budgeted: Decimal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dies_once_before_the_hold(monkeypatch)
    with pytest.raises(RuntimeError):
        batches.create_batch(KEY, None, _request(), batch_id="batch_died")
    assert _budget() == (Decimal(0), frozenset())  # written ahead, nothing held yet
    for _retry in range(2):
        batch = batches.create_batch(KEY, None, _request(), batch_id="batch_died")
        assert batch.id == "batch_died" and batch.status == "validating"
        assert _budget() == (budgeted, frozenset({"batch_died"}))
    assert [call for call, _ in provider.calls if call == "create"] == ["create"]


def test_a_retry_of_a_record_written_before_holds_existed_holds_nothing(
    provider: FakeBatchesApi, budgeted: Decimal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dies_once_before_the_hold(monkeypatch)
    with pytest.raises(RuntimeError):
        batches.create_batch(KEY, None, _request(), batch_id="batch_old")
    record = IdMap().get("batch_old")
    assert record is not None
    record.state = {name: value for name, value in record.state.items() if name != "hold"}
    IdMap().put(record, reverse=False)
    batches.create_batch(KEY, None, _request(), batch_id="batch_old")
    assert _budget() == (Decimal(0), frozenset({"batch_old"}))


def test_a_retry_of_a_finished_create_asks_the_provider_nothing(
    budgeted: Decimal, provider: FakeBatchesApi
) -> None:
    first = batches.create_batch(KEY, None, _request(), batch_id="batch_done")
    calls = list(provider.calls)
    assert batches.create_batch(KEY, None, _request(), batch_id="batch_done") == first
    assert provider.calls == calls
    assert _budget() == (budgeted, frozenset({"batch_done"}))


def test_a_request_for_n_choices_holds_n_times_its_output_cap(aws: None) -> None:
    from gateway.service.batch_input_check import checked_figures

    line = {
        "custom_id": "r",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "n": 128, "max_tokens": 1000, "messages": []},
    }
    figures = checked_figures(json.dumps(line).encode())
    record = ObjectRecord(
        id="file-n",
        kind="file",
        owner=KEY.key_id,
        provider="openai",
        created_at=1,
        object={},
        state={"batch_check": figures},
    )
    model, estimate = budget.estimate_batch_cost(record)
    input_part = (Decimal(figures["input_token_estimate"]) * Decimal("0.075") / 1_000_000).quantize(
        Decimal("0.000001")
    )
    # 128,000 output tokens at gpt-4o-mini's batch price (0.30 per million), plus the input
    assert model == "gpt-4o-mini" and estimate == Decimal("0.038400") + input_part


def test_a_key_with_a_budget_creates_an_anthropic_batch_and_holds_its_estimate(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude has batch prices (per provider), so a budget binds on an Anthropic deployment."""
    import os

    from gateway.providers import registry
    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings

    from tests.unit.test_batches_service import FakeBatchesApi

    providers = json.loads(os.environ[resources.ENV_PROVIDERS]) | {"claude": {"type": "anthropic"}}
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(providers))
    reset_settings()
    fake = FakeBatchesApi("msgbatch_")
    monkeypatch.setitem(registry._clients, "claude", fake)  # type: ignore[arg-type]
    BudgetStore().configure(KEY.key_id, BUDGET, None)
    IdMap().put(
        ObjectRecord(
            id="file-claude",
            kind="file",
            owner=KEY.key_id,
            provider="claude",
            created_at=1000,
            object={
                "id": "file-claude",
                "object": "file",
                "bytes": 3,
                "created_at": 1000,
                "filename": "a.jsonl",
                "purpose": "batch",
                "status": "processed",
            },
            upstream_id="up-file-claude",
            purpose="batch",
            state={
                "batch_check": {
                    "model": "claude-sonnet-4-5-20250929",
                    "input_token_estimate": 1_000_000,
                    "output_token_limit": 100_000,
                }
            },
        )
    )
    batch = batches.create_batch(KEY, None, _request("file-claude"))
    # 1M input x 1.50 + 0.1M output x 7.50 per million, Anthropic's batch prices
    assert _budget() == (Decimal("2.25"), frozenset({batch.id}))
    assert len(fake.batches) == 1
    BudgetStore().configure(KEY.key_id, Decimal(3), None)  # 0.75 left: the next one does not fit
    with pytest.raises(InvalidRequestError) as refused:
        batches.create_batch(KEY, None, _request("file-claude"))
    assert refused.value.code == "budget_exceeded" and len(fake.batches) == 1


def test_an_uncapped_claude_request_is_held_at_the_max_tokens_its_translation_gets(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings

    providers = json.loads(os.environ[resources.ENV_PROVIDERS]) | {
        "claude": {"type": "anthropic", "default_max_tokens": 100_000}
    }
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(providers))
    reset_settings()
    record = ObjectRecord(
        id="file-c",
        kind="file",
        owner=KEY.key_id,
        provider="claude",
        created_at=1,
        object={},
        state={"batch_check": {"model": "claude-3-5-haiku", "lines_without_output_limit": 10}},
    )
    # 10 requests x 100,000 tokens at Anthropic's batch output price for Claude Haiku 3.5 (2 per million)
    assert budget.estimate_batch_cost(record) == ("claude-3-5-haiku", Decimal("2.000000"))


def test_an_uncapped_claude_request_that_thinks_is_held_at_the_default_and_its_budget(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings

    providers = json.loads(os.environ[resources.ENV_PROVIDERS]) | {
        "claude": {"type": "anthropic", "default_max_tokens": 100_000}
    }
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(providers))
    reset_settings()
    check = {
        "model": "claude-3-5-haiku",
        "lines_without_output_limit": 10,
        "uncapped_thinking_budget": 10 * 4096,
    }
    record = ObjectRecord(
        id="file-t",
        kind="file",
        owner=KEY.key_id,
        provider="claude",
        created_at=1,
        object={},
        state={"batch_check": check},
    )
    # 10 requests x (100,000 + 4,096) tokens at 2 USD per million batch output tokens
    assert budget.estimate_batch_cost(record) == ("claude-3-5-haiku", Decimal("2.081920"))
