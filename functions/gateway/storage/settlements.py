"""A finished batch's usage and cost, written exactly once.

The batch item gets a `settlement` attribute (JSON) beside its object, never rewritten by
later snapshots; a `settling` timestamp claims the work so that concurrent retrieves read the
output file once. The settlement, the owner's budget update and a spend entry (pk
`spend#<batch id>`, kind `spend`, listed by the `by_kind` index in settlement order, for
/spend/report) are written in one transaction, conditional on no settlement yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import Item, dynamodb_client, marshal, query_items, written

SPEND_KIND = "spend"


class SettlementStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self._db = dynamodb_client()

    def claim(self, batch_id: str, now: int, stale_after: int) -> bool:
        """True when this caller may settle: nobody has, and nobody is at it (or their claim is stale)."""
        return written(
            self._db.update_item,
            TableName=self.table,
            Key=self._key(batch_id),
            UpdateExpression="SET settling = :now",
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(settlement) "
                "AND (attribute_not_exists(settling) OR settling < :stale)"
            ),
            ExpressionAttributeValues=marshal({":now": now, ":stale": now - stale_after}),
        )

    def release_claim(self, batch_id: str) -> None:
        self._db.update_item(
            TableName=self.table,
            Key=self._key(batch_id),
            UpdateExpression="REMOVE settling",
            ConditionExpression="attribute_exists(pk)",
        )

    def commit(
        self,
        batch_id: str,
        settlement: dict[str, Any],
        spend_entry: Item,
        budget_update: dict[str, Any] | None,
        budget_fallback: dict[str, Any] | None = None,
        *,
        unwatch: bool = True,
    ) -> bool:
        """Writes all three at once; False when the batch was settled already (nothing written).
        When the budget refuses `budget_update` (the batch's hold is not held), `budget_fallback`
        takes its place. `unwatch`: the batch leaves the watcher's sparse index in the same
        transaction (when its stored status is final; else the write that stores it does)."""
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(batch_id),
                    "UpdateExpression": "SET settlement = :settlement REMOVE settling"
                    + (", #watch" if unwatch else ""),
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(settlement)",
                    **(
                        {"ExpressionAttributeNames": {"#watch": resources.WATCH_ATTRIBUTE}} if unwatch else {}
                    ),
                    "ExpressionAttributeValues": marshal({":settlement": json.dumps(settlement)}),
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": marshal(self.spend_item(batch_id, spend_entry)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if budget_update is not None:
            items.append(budget_update)
        try:
            self._db.transact_write_items(TransactItems=items)
        except self._db.exceptions.TransactionCanceledException as exc:
            failed = [
                index
                for index, reason in enumerate(exc.response.get("CancellationReasons") or [])
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            if failed == [2] and budget_fallback is not None:
                return self.commit(batch_id, settlement, spend_entry, budget_fallback, unwatch=unwatch)
            if failed:
                return False
            raise
        return True

    @staticmethod
    def spend_item(batch_id: str, spend_entry: Item) -> Item:
        """A batch's spend entry as the table holds it (listed by `by_kind`, kind `spend`)."""
        return {**spend_entry, resources.TABLE_PARTITION_KEY: f"spend#{batch_id}", "kind": SPEND_KIND}

    def settlement_of(self, batch_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self.table,
            Key=self._key(batch_id),
            ProjectionExpression="settlement",
            ConsistentRead=True,
        ).get("Item")
        return json.loads(item["settlement"]["S"]) if item and "settlement" in item else None

    def spend_entries(self, start_us: int, end_us: int) -> Iterator[Item]:
        """Every spend entry settled in [start_us, end_us), oldest first."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": resources.INDEX_BY_KIND,
            "KeyConditionExpression": "#k = :k AND created_key BETWEEN :start AND :end",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": marshal(
                {":k": SPEND_KIND, ":start": f"{start_us:016d}", ":end": f"{end_us:016d}"}
            ),
        }
        yield from query_items(self._db.query, **params)

    @staticmethod
    def _key(batch_id: str) -> dict[str, dict[str, str]]:
        return {resources.TABLE_PARTITION_KEY: {"S": batch_id}}
