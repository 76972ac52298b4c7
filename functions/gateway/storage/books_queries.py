"""The reads the books' invariants need (service.books): every item of the table (a full Scan,
for tests and audits), or the items of chosen keys (strongly consistent BatchGetItems, the read
the watcher's role has, for its check of what its pass touched). Items come as DynamoDB types them
(`{"N": "1.5"}`): money is compared as exact decimals, never as floats."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.runtime import resources
from gateway.storage.dynamo import dynamodb_client

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


BATCH_GET_KEYS = 100  # BatchGetItem's most keys a call
_UNPROCESSED_RETRIES = 8  # DynamoDB hands back keys it did not read (throttled): asked again


def items_by_key(table: str, keys: Iterable[str]) -> dict[str, TypedItem]:
    """The items of these partition keys that exist, by key: strongly consistent BatchGetItems
    of BATCH_GET_KEYS keys (a pass reads hundreds of keys: a round trip each was most of its
    time). Keys DynamoDB leaves unprocessed are asked again, after a growing pause."""
    found: dict[str, TypedItem] = {}
    wanted = sorted(set(keys))
    db = dynamodb_client()
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {
                "Keys": [{_PK: {"S": key}} for key in wanted[start : start + BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
        }
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            answer = db.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table, ()):
                found[item[_PK]["S"]] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt == _UNPROCESSED_RETRIES:
                raise RuntimeError(f"DynamoDB left {len(request[table]['Keys'])} keys unread")
            time.sleep(min(0.05 * 2**attempt, 1.0))
    return found
