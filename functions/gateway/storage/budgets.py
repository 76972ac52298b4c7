"""A key's money: what it spent, what its running batches hold, and what it may still spend.

Item: pk="budget#<key id>", kind="budget", key_id, spend, holds, headroom, and when the key
has a budget: max_budget, budget_duration (seconds), reset_at.

DynamoDB conditions cannot add, so the item keeps `headroom` = max_budget - spend - holds
(maintained by every update with ADD) and a hold is granted by the condition
`headroom >= :estimate`: two simultaneous creates can never both take the last dollar.
Kept apart from the key item on purpose: the functions that talk to providers book spend
here, and may not write `key#…` items at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway import resources
from gateway.settings import get_settings
from gateway.storage.dynamo import dynamodb_client, marshal, written

_KIND = "budget"
_ZERO = Decimal(0)


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
        item = self._db.get_item(TableName=self.table, Key=self._key(key_id), ConsistentRead=True).get("Item")
        return Budget.from_item(item) if item else None

    def configure(
        self,
        key_id: str,
        max_budget: Decimal | None,
        duration_seconds: int | None,
        now: int | None = None,
        duration_text: str | None = None,
    ) -> Budget:
        """Sets (or, with None, lifts) the key's budget; headroom moves by the change, so spend
        and holds already booked keep counting."""
        now = int(time.time()) if now is None else now
        while True:
            current = self.get(key_id) or Budget(key_id=key_id)
            delta = (max_budget or _ZERO) - (current.max_budget or _ZERO)
            names = {
                "#m": "max_budget",
                "#d": "budget_duration",
                "#r": "reset_at",
                "#t": "budget_duration_text",
            }
            values: dict[str, Any] = {":delta": delta, ":kind": _KIND, ":key": key_id}
            sets = ["kind = :kind", "key_id = :key", "spend = if_not_exists(spend, :zero)"]
            sets.append("holds = if_not_exists(holds, :zero)")
            sets.append("headroom = if_not_exists(headroom, :zero) + :delta")
            values[":zero"] = _ZERO
            removes = []
            if max_budget is None:
                removes.append("#m")
            else:
                sets.append("#m = :max")
                values[":max"] = max_budget
            if duration_seconds is None:
                removes.extend(["#d", "#r", "#t"])
            else:
                sets.extend(["#d = :duration", "#r = :reset", "#t = :text"])
                values[":duration"] = duration_seconds
                values[":text"] = duration_text or f"{duration_seconds}s"
                values[":reset"] = now + duration_seconds
            expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
            condition = "attribute_not_exists(#m)" if current.max_budget is None else "#m = :old"
            if current.max_budget is not None:
                values[":old"] = current.max_budget
            if self._update(key_id, expression, names, values, condition):
                return self.get(key_id) or current

    def hold(self, key_id: str, estimate: Decimal, batch_id: str, now: int | None = None) -> None:
        """Reserves `estimate` for `batch_id` about to start; BudgetExceededError when it does not
        fit. Once per batch (its id joins `held_batches`): a retried create holds nothing more."""
        self._reset_if_due(key_id, int(time.time()) if now is None else now)
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
        taken (its create died between the record and the hold)."""
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

    def _reset_if_due(self, key_id: str, now: int) -> None:
        """At the end of a budget period spend starts again from zero (holds stay held)."""
        budget = self.get(key_id)
        if (
            budget is None
            or budget.reset_at is None
            or budget.budget_duration is None
            or budget.reset_at > now
        ):
            return
        periods = (now - budget.reset_at) // budget.budget_duration + 1
        self._update(  # a lost race means another call reset it already
            key_id,
            "SET headroom = headroom + spend, spend = :zero, #r = :next",
            {"#r": "reset_at"},
            {
                ":zero": _ZERO,
                ":next": budget.reset_at + periods * budget.budget_duration,
                ":due": budget.reset_at,
            },
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
