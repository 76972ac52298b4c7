"""Budget holds, releases, settlement and periods, against moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from gateway.storage.budgets import Budget, BudgetExceededError, BudgetStore
from gateway.storage.dynamo import dynamodb_client

pytestmark = pytest.mark.usefixtures("aws")


def test_a_key_without_a_budget_holds_anything_and_counts_it() -> None:
    store = BudgetStore()
    store.hold("k1", Decimal("123.5"), "b1")
    budget = store.get("k1")
    assert budget is not None and budget.max_budget is None
    assert (budget.spend, budget.holds) == (Decimal(0), Decimal("123.5"))


def test_a_hold_beyond_the_headroom_is_refused_with_the_figures() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)
    store.hold("k1", Decimal(6), "b2")
    with pytest.raises(BudgetExceededError) as refused:
        store.hold("k1", Decimal(5), "b3")
    assert (refused.value.budget.holds, refused.value.budget.max_budget, refused.value.estimate) == (
        Decimal(6),
        Decimal(10),
        Decimal(5),
    )
    store.hold("k1", Decimal(4), "b4")  # exactly the rest fits
    assert store.get("k1").headroom == Decimal(0)  # type: ignore[union-attr]


@pytest.mark.usefixtures("atomic_dynamodb")
def test_concurrent_holds_never_exceed_the_budget() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)

    def try_hold(attempt: int) -> bool:
        try:
            store.hold("k1", Decimal(1), f"concurrent-{attempt}")
        except BudgetExceededError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = sum(pool.map(try_hold, range(25)))
    assert granted == 10
    assert store.get("k1").holds == Decimal(10)  # type: ignore[union-attr]


def test_release_and_settlement_replace_the_hold() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)
    store.hold("k1", Decimal(4), "b6")
    store.hold("k1", Decimal(3), "b7")
    store.release("k1", "b7", Decimal(3))
    store.release("k1", "b7", Decimal(3))  # once only
    dynamodb_client().transact_write_items(
        TransactItems=[store.settlement_update("k1", "b6", held=Decimal(4), cost=Decimal("1.25"))]
    )
    budget = store.get("k1")
    assert budget is not None
    assert (budget.spend, budget.holds, budget.headroom) == (Decimal("1.25"), Decimal(0), Decimal("8.75"))


def test_raising_or_lifting_the_budget_keeps_what_was_spent() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(5), None)
    store.hold("k1", Decimal(5), "b8")
    with pytest.raises(BudgetExceededError):
        store.hold("k1", Decimal(1), "b9")
    store.configure("k1", Decimal(8), None)
    store.hold("k1", Decimal(3), "b10")
    store.configure("k1", None, None)
    store.hold("k1", Decimal(100), "b11")
    assert store.get("k1").holds == Decimal(108)  # type: ignore[union-attr]


def test_a_budget_period_resets_spend_but_not_holds() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), 3600, now=1_000)
    store.hold("k1", Decimal(6), "b12", now=1_000)
    dynamodb_client().transact_write_items(
        TransactItems=[store.settlement_update("k1", "b12", held=Decimal(6), cost=Decimal(6))]
    )
    store.hold("k1", Decimal(2), "b13", now=2_000)
    with pytest.raises(BudgetExceededError):
        store.hold("k1", Decimal(3), "b14", now=2_000)
    store.hold("k1", Decimal(3), "b15", now=1_000 + 3 * 3600 + 5)  # three periods later: spend is back to 0
    budget = store.get("k1")
    assert budget is not None
    assert (budget.spend, budget.holds, budget.reset_at) == (Decimal(0), Decimal(5), 1_000 + 4 * 3600)


def test_a_retried_hold_holds_once() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)
    store.hold("k1", Decimal(6), "b1")
    store.hold("k1", Decimal(6), "b1")  # the same batch's create, retried: no second hold, no refusal
    budget = store.get("k1")
    assert budget is not None and (budget.holds, budget.held_batches) == (Decimal(6), frozenset({"b1"}))


def test_a_batch_whose_hold_was_never_taken_books_its_cost_alone() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)
    holding = store.settlement_update("k1", "b-lost", held=Decimal(3), cost=Decimal(2))
    with pytest.raises(dynamodb_client().exceptions.TransactionCanceledException):
        dynamodb_client().transact_write_items(TransactItems=[holding])
    alone = store.settlement_update("k1", "b-lost", held=Decimal(3), cost=Decimal(2), holding=False)
    dynamodb_client().transact_write_items(TransactItems=[alone])
    budget = store.get("k1")
    assert budget is not None and (budget.spend, budget.holds, budget.headroom) == (
        Decimal(2),
        Decimal(0),
        Decimal(8),
    )


def _settle(store: BudgetStore, batch_id: str, amount: Decimal, now: int) -> None:
    store.hold("k1", amount, batch_id, now=now)
    store.close_ended_period("k1", now)  # as settlement does before it books
    dynamodb_client().transact_write_items(
        TransactItems=[store.settlement_update("k1", batch_id, held=amount, cost=amount)]
    )


def _consistent(budget: Budget | None) -> Budget:
    assert budget is not None and budget.max_budget is not None
    assert budget.headroom == budget.max_budget - budget.spend - budget.holds
    return budget


def test_a_budget_update_after_the_period_ended_starts_the_new_period_from_zero_spend() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), 3600, now=1_000)
    _settle(store, "b1", Decimal(6), now=1_500)
    store.hold("k1", Decimal(1), "b2", now=1_600)
    ended = 1_000 + 3600 + 5
    updated = _consistent(store.configure("k1", Decimal(12), 3600, now=ended))
    assert (updated.spend, updated.holds, updated.reset_at) == (Decimal(0), Decimal(1), 1_000 + 2 * 3600)
    store.hold("k1", Decimal(11), "b3", now=ended)  # last period's 6 no longer counts
    assert _consistent(store.get("k1")).headroom == Decimal(0)


def test_a_budget_update_within_the_period_keeps_its_spend_and_its_end() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), 3600, now=1_000)
    _settle(store, "b1", Decimal(6), now=1_500)
    updated = _consistent(store.configure("k1", Decimal(20), 3600, now=2_000))
    assert (updated.spend, updated.reset_at) == (Decimal(6), 1_000 + 3600)  # not moved to 2_000 + 3600
    changed = _consistent(store.configure("k1", Decimal(20), 600, now=2_000))  # a new duration: a new period
    assert (changed.spend, changed.reset_at) == (Decimal(6), 2_000 + 600)


def test_a_settlement_after_the_period_ended_is_the_new_periods_spend() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), 3600, now=1_000)
    _settle(store, "b1", Decimal(6), now=1_500)
    _settle(store, "b2", Decimal(3), now=1_000 + 3600 + 5)
    budget = _consistent(store.get("k1"))
    assert (budget.spend, budget.reset_at) == (Decimal(3), 1_000 + 2 * 3600)
    store.hold("k1", Decimal(7), "b3", now=1_000 + 3600 + 10)  # 10 - 3: the 6 was last period's


def test_a_budget_update_racing_a_hold_keeps_both() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), None)
    client = store._db

    class HoldFirst:
        """A hold lands between the update's read and its write (once)."""

        raced = False

        def __getattr__(self, name: str) -> object:
            return getattr(client, name)

        def update_item(self, **params: object) -> object:
            if not HoldFirst.raced and "max_budget" in str(params.get("ExpressionAttributeNames")):
                HoldFirst.raced = True
                BudgetStore().hold("k1", Decimal(4), "b-race")
            return client.update_item(**params)

    store._db = HoldFirst()
    budget = _consistent(store.configure("k1", Decimal(20), None))
    assert HoldFirst.raced and (budget.max_budget, budget.holds, budget.headroom) == (
        Decimal(20),
        Decimal(4),
        Decimal(16),
    )


def test_info_shows_a_period_that_ended_as_spent_from_zero() -> None:
    store = BudgetStore()
    store.configure("k1", Decimal(10), 3600, now=1_000)
    _settle(store, "b1", Decimal(6), now=1_500)
    budget = _consistent(store.get("k1"))
    assert budget.as_of(2_000) == budget
    later = _consistent(budget.as_of(1_000 + 2 * 3600))
    assert (later.spend, later.reset_at) == (Decimal(0), 1_000 + 3 * 3600)


def test_numbers_go_to_dynamodb_in_plain_digits() -> None:
    from gateway.storage.dynamo import number_text

    assert number_text(Decimal("1E-7")) == "0.0000001" and number_text(1e-07) == "0.0000001"
    assert number_text(1e20) == "100000000000000000000" and number_text(Decimal("0E-6")) == "0.000000"
    assert number_text(7) == "7" and number_text(2.5) == "2.5"
    for bad in (float("nan"), float("inf"), Decimal("-Infinity")):
        with pytest.raises(ValueError):
            number_text(bad)
