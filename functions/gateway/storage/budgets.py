"""A key's money: what it spent, what its running batches hold, and what it may still spend.

Item: pk="budget#<key id>", kind="budget", key_id, spend, holds, headroom, and when the key
has a budget: max_budget, budget_duration (seconds), reset_at.

DynamoDB conditions cannot add, so the item keeps `headroom` = max_budget - spend - holds
(maintained by every update with ADD) and a hold is granted by the condition
`headroom >= :estimate`: two simultaneous creates can never both take the last dollar.
Kept apart from the key item on purpose: the functions that talk to providers book spend
here, and may not write `key#…` items at all.

Amounts are kept to the micro-dollar (`usd`) and written as plain digits: every number the
item holds stays within what DynamoDB (and the local table's restore) takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import dynamodb_client, marshal, written

_KIND = "budget"
_ZERO = Decimal(0)
USD_QUANTUM = Decimal("0.000001")  # money is kept to the micro-dollar


def usd(amount: Decimal | float | int | str) -> Decimal:
    """`amount` in the budget's fixed precision (micro-dollars; a finer fraction is dropped)."""
    exact = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)
    return exact.quantize(USD_QUANTUM, rounding=ROUND_DOWN)


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """`marshal`, but a Python set is a string set here (never the empty list marshal makes)."""
    sets = {name: {"SS": sorted(value)} for name, value in values.items() if isinstance(value, set)}
    return marshal({name: value for name, value in values.items() if name not in sets}) | sets


def budget_pk(key_id: str) -> str:
    return f"budget#{key_id}"


@dataclass(frozen=True)
class Budget:
    key_id: str
    spend: Decimal = _ZERO
    holds: Decimal = _ZERO
    headroom: Decimal = _ZERO
    max_budget: Decimal | None = None
    budget_duration: int | None = None  # seconds
    budget_duration_text: str | None = None  # as the operator wrote it: "30d"
    reset_at: int | None = None
    held_batches: frozenset[str] = frozenset()

    @classmethod
    def from_item(cls, item: dict[str, dict[str, Any]]) -> Budget:
        """From the item as DynamoDB types it: numbers are read as exact decimals."""

        def number(name: str) -> Decimal | None:
            typed = item.get(name)
            return Decimal(typed["N"]) if typed and "N" in typed else None

        duration, reset_at = number("budget_duration"), number("reset_at")
        return cls(
            key_id=item["key_id"]["S"],
            spend=number("spend") or _ZERO,
            holds=number("holds") or _ZERO,
            headroom=number("headroom") or _ZERO,
            max_budget=number("max_budget"),
            budget_duration=int(duration) if duration is not None else None,
            budget_duration_text=item.get("budget_duration_text", {}).get("S"),
            reset_at=int(reset_at) if reset_at is not None else None,
            held_batches=frozenset(item.get("held_batches", {}).get("SS", [])),
        )

    def period_ended(self, now: int) -> bool:
        return self.reset_at is not None and self.budget_duration is not None and self.reset_at <= now

    def next_reset(self, now: int) -> int | None:
        """The end of the period `now` falls in (the stored one while it has not ended)."""
        if self.reset_at is None or self.budget_duration is None or self.reset_at > now:
            return self.reset_at
        return self.reset_at + ((now - self.reset_at) // self.budget_duration + 1) * self.budget_duration

    def as_of(self, now: int) -> Budget:
        """The budget as it stands at `now`: once its period ended, spend starts again from zero
        (what the next write stores; holds stay held)."""
        if not self.period_ended(now):
            return self
        return replace(self, spend=_ZERO, headroom=self.headroom + self.spend, reset_at=self.next_reset(now))


class BudgetExceededError(Exception):
    def __init__(self, budget: Budget, estimate: Decimal) -> None:
        super().__init__(f"budget of {budget.key_id} exceeded")
        self.budget = budget
        self.estimate = estimate


class BudgetStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self._db = dynamodb_client()

    def get(self, key_id: str) -> Budget | None:
        item = self._item(key_id)
        return Budget.from_item(item) if item else None

    def _item(self, key_id: str) -> dict[str, Any] | None:
        """The budget item as DynamoDB types it (None: not there)."""
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self.table, Key=self._key(key_id), ConsistentRead=True
        ).get("Item")
        return item

    def configure(
        self,
        key_id: str,
        max_budget: Decimal | None,
        duration_seconds: int | None,
        now: int | None = None,
        duration_text: str | None = None,
    ) -> Budget:
        """Sets (or, with None, lifts) the key's budget. Spend and holds already booked keep
        counting; a period that has ended is closed first (its spend does not count against the
        next); the period's end moves only when the duration changes. One write conditional on
        every figure it was computed from, retried when a hold or a settlement came between."""
        now = int(time.time()) if now is None else now
        max_budget = None if max_budget is None else usd(max_budget)
        while True:
            item = self._item(key_id)
            current = Budget.from_item(item) if item else Budget(key_id=key_id)
            spend = _ZERO if current.period_ended(now) else current.spend
            names = {
                "#s": "spend",
                "#h": "holds",
                "#m": "max_budget",
                "#d": "budget_duration",
                "#r": "reset_at",
                "#t": "budget_duration_text",
            }
            values: dict[str, Any] = {
                ":kind": _KIND,
                ":key": key_id,
                ":spend": spend,
                ":holds": current.holds,
                ":headroom": (max_budget or _ZERO) - spend - current.holds,
            }
            sets = ["kind = :kind", "key_id = :key", "#s = :spend", "#h = :holds", "headroom = :headroom"]
            removes = []
            if max_budget is None:
                removes.append("#m")
            else:
                sets.append("#m = :max")
                values[":max"] = max_budget
            if duration_seconds is None:
                removes.extend(["#d", "#r", "#t"])
            else:
                same_period = current.budget_duration == duration_seconds and current.reset_at is not None
                sets.extend(["#d = :duration", "#r = :reset", "#t = :text"])
                values[":duration"] = duration_seconds
                values[":text"] = duration_text or f"{duration_seconds}s"
                values[":reset"] = current.next_reset(now) if same_period else now + duration_seconds
            expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
            condition, read = _unchanged(
                item, {"#s": "spend", "#h": "holds", "#m": "max_budget", "#r": "reset_at"}
            )
            params: dict[str, Any] = {
                "TableName": self.table,
                "Key": self._key(key_id),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _typed(values) | read,
            }
            if written(self._db.update_item, **params):
                return self.get(key_id) or current

    def hold(self, key_id: str, estimate: Decimal, batch_id: str, now: int | None = None) -> None:
        """Reserves `estimate` for `batch_id` about to start; BudgetExceededError when it does not
        fit. Once per batch (its id joins `held_batches`): a retried create holds nothing more."""
        self.close_ended_period(key_id, int(time.time()) if now is None else now)
        estimate = usd(estimate)
        granted = self._update(
            key_id,
            "SET kind = :kind, key_id = :key ADD holds :estimate, headroom :negative, held_batches :ids",
            {"#m": "max_budget", "#b": "held_batches"},
            {
                ":estimate": estimate,
                ":negative": -estimate,
                ":kind": _KIND,
                ":key": key_id,
                ":id": batch_id,
            }
            | {":ids": {batch_id}},
            "(attribute_not_exists(#m) OR headroom >= :estimate) AND NOT contains(#b, :id)",
        )
        if not granted:
            budget = self.get(key_id) or Budget(key_id=key_id)
            if batch_id not in budget.held_batches:
                raise BudgetExceededError(budget, estimate)

    def release(self, key_id: str, batch_id: str, held: Decimal) -> None:
        """Gives back the hold of a batch that never started (once: it leaves `held_batches`)."""
        held = usd(held)
        self._update(
            key_id,
            "ADD holds :negative, headroom :held DELETE held_batches :ids",
            {"#b": "held_batches"},
            {":negative": -held, ":held": held, ":id": batch_id} | {":ids": {batch_id}},
            "contains(#b, :id)",
        )

    def settlement_update(
        self, key_id: str, batch_id: str, held: Decimal, cost: Decimal, *, holding: bool = True
    ) -> dict[str, Any]:
        """The TransactWriteItems element that books `cost`, in place of the batch's hold while
        the budget still holds it (`holding`), or on its own for a batch whose hold was never
        taken (its create died between the record and the hold). Close an ended period first
        (`close_ended_period`): the cost is the new period's spend."""
        held, cost = usd(held), usd(cost)
        values: dict[str, Any] = {":cost": cost, ":kind": _KIND, ":key": key_id}
        if holding:
            expression = "SET kind = :kind, key_id = :key ADD spend :cost, holds :negative, headroom :back"
            expression += " DELETE held_batches :ids"
            values |= {":negative": -held, ":back": held - cost, ":id": batch_id, ":ids": {batch_id}}
        else:
            expression = "SET kind = :kind, key_id = :key ADD spend :cost, headroom :back"
            values |= {":back": -cost}
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(key_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": _typed(values),
        }
        if holding:
            update["ConditionExpression"] = "contains(#b, :id)"
            update["ExpressionAttributeNames"] = {"#b": "held_batches"}
        return {"Update": update}

    def close_ended_period(self, key_id: str, now: int) -> None:
        """At the end of a budget period spend starts again from zero (holds stay held)."""
        budget = self.get(key_id)
        if (
            budget is None
            or budget.reset_at is None
            or budget.budget_duration is None
            or budget.reset_at > now
        ):
            return
        self._update(  # a lost race means another call reset it already
            key_id,
            "SET headroom = headroom + spend, spend = :zero, #r = :next",
            {"#r": "reset_at"},
            {":zero": _ZERO, ":next": budget.next_reset(now), ":due": budget.reset_at},
            "#r = :due",
        )

    def _update(
        self, key_id: str, expression: str, names: dict[str, str], values: dict[str, Any], condition: str
    ) -> bool:
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(key_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _typed(values),
        }
        if names:
            params["ExpressionAttributeNames"] = names
        return written(self._db.update_item, **params)

    @staticmethod
    def _key(key_id: str) -> dict[str, dict[str, str]]:
        return {resources.TABLE_PARTITION_KEY: {"S": budget_pk(key_id)}}


def _unchanged(item: dict[str, Any] | None, names: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A condition that the item is as read (`item`, as DynamoDB typed it; None: not there):
    each of `names` (alias -> attribute) still holds the value read, or is still absent."""
    if item is None:
        return f"attribute_not_exists({resources.TABLE_PARTITION_KEY})", {}
    parts, values = [], {}
    for alias, name in names.items():
        if name in item:
            parts.append(f"{alias} = :read{alias[1:]}")
            values[f":read{alias[1:]}"] = item[name]
        else:
            parts.append(f"attribute_not_exists({alias})")
    return " AND ".join(parts), values
