"""The reads the books' invariants need (service.books): every item of the table (a full Scan,
for tests and audits), or the items of chosen keys (BatchGetItem, strongly consistent, for the
watcher's check of what its pass touched). Items come as DynamoDB types them (`{"N": "1.5"}`):
money is compared as exact decimals, never as floats."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from typing import Any

from gateway import resources
from gateway.storage.dynamo import dynamodb_client

TypedItem = dict[str, dict[str, Any]]

_BATCH_GET_LIMIT = 100  # BatchGetItem's largest request
_BATCH_GET_ATTEMPTS = 5


def every_item(table: str) -> Iterator[TypedItem]:
    """Each item of the table, page after page: cost grows with the table."""
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = dynamodb_client().scan(**params)
        yield from response.get("Items", [])
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return
        params["ExclusiveStartKey"] = last_key


def items_by_key(table: str, keys: Iterable[str]) -> dict[str, TypedItem]:
    """The items of these partition keys that exist, by key."""
    wanted = sorted(set(keys))
    found: dict[str, TypedItem] = {}
    for start in range(0, len(wanted), _BATCH_GET_LIMIT):
        chunk = wanted[start : start + _BATCH_GET_LIMIT]
        request: dict[str, Any] = {
            table: {
                "Keys": [{resources.TABLE_PARTITION_KEY: {"S": key}} for key in chunk],
                "ConsistentRead": True,
            }
        }
        for attempt in range(_BATCH_GET_ATTEMPTS):
            response = dynamodb_client().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found[item[resources.TABLE_PARTITION_KEY]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**attempt * (0.5 + random.random()))
    return found
