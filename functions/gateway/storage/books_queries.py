"""The reads the books' invariants need (service.books): every item of the table (a full Scan,
for tests and audits), or the items of chosen keys (strongly consistent BatchGetItems, the read
the watcher's role has, for its check of what its pass touched). Items come as DynamoDB types them
(`{"N": "1.5"}`): money is compared as exact decimals, never as floats."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gateway.runtime import resources
from gateway.storage.dynamo import batch_get, dynamodb_client

TypedItem = dict[str, dict[str, Any]]
_PK = resources.TABLE_PARTITION_KEY


def every_item(table: str, client: Any | None = None) -> Iterator[TypedItem]:
    """Each item of the table, page after page: cost grows with the table. `client`: the
    DynamoDB client to read through (default: the cached one)."""
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    db = client or dynamodb_client()
    while True:
        response = db.scan(**params)
        yield from response.get("Items", [])
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return
        params["ExclusiveStartKey"] = last_key


def items_by_key(table: str, keys: Iterable[str]) -> dict[str, TypedItem]:
    """The items of these partition keys that exist, by key: strongly consistent BatchGetItems
    (a pass reads hundreds of keys: a round trip each was most of its time)."""
    return batch_get(dynamodb_client(), table, _PK, keys)
