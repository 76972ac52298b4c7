"""The DynamoDB client and a small marshaller for the flat items this project stores."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

Item = dict[str, Any]


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    return boto3.client("dynamodb")


def marshal(item: Item) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in item.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, int | float | Decimal):
            out[name] = {"N": number_text(value)}
        elif isinstance(value, str):
            out[name] = {"S": value}
        elif isinstance(value, list | tuple | set):
            out[name] = {"SS": sorted(str(v) for v in value)} if value else {"NULL": True}
        else:
            raise TypeError(f"cannot store attribute {name} of type {type(value).__name__}")
    return out


def number_text(value: int | float | Decimal) -> str:
    """A number as DynamoDB takes it: plain digits, never exponent form (`1E-7` or `1e+20`, which
    the local table refuses), and never NaN or infinity (no DynamoDB number is)."""
    if isinstance(value, int):
        return str(value)
    exact = Decimal(repr(value)) if isinstance(value, float) else value
    if not exact.is_finite():
        raise ValueError(f"cannot store the number {value}")
    return format(exact, "f")


def unmarshal(item: dict[str, dict[str, Any]]) -> Item:
    out: Item = {}
    for name, typed in item.items():
        (kind, value), *_ = typed.items()
        if kind == "N":
            out[name] = int(value) if value.lstrip("-").isdigit() else float(value)
        elif kind == "SS":
            out[name] = sorted(value)
        elif kind == "NULL":
            out[name] = None
        else:
            out[name] = value
    return out


def set_expression(item: Item) -> dict[str, Any]:
    """UpdateItem parameters that SET every attribute of `item` (plain values, marshalled here)."""
    typed = marshal(item)
    names = {f"#a{index}": name for index, name in enumerate(typed)}
    return {
        "UpdateExpression": "SET " + ", ".join(f"{alias} = :v{alias[2:]}" for alias in names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":v{alias[2:]}": typed[name] for alias, name in names.items()},
    }


def condition_failed(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


def written(write: Callable[..., Any], **params: Any) -> bool:
    """One conditional write (`write(**params)`): True if written, False if its condition did not
    hold; any other error is raised."""
    try:
        write(**params)
    except ClientError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True


def update_with_puts(update: dict[str, Any], puts: Sequence[Item]) -> bool:
    """One TransactWriteItems: the UpdateItem `update` (TableName, Key, its condition) and a Put of
    each item of `puts` (plain values). True if written, False if the update's condition did not
    hold; any other error is raised. The Puts are unconditional: an outbox item of the same id
    is the same event, not yet published, and must not block the change it belongs to."""
    items: list[dict[str, Any]] = [{"Update": update}]
    items += [{"Put": {"TableName": update["TableName"], "Item": marshal(item)}} for item in puts]
    try:
        dynamodb_client().transact_write_items(TransactItems=items)
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            return False
        raise
    return True


def query_items(query: Callable[..., Any], **params: Any) -> Iterator[Item]:
    """Every item (plain values) a Query matches, page after page: `query` is the client's
    `query` method, `params` its arguments."""
    while True:
        response = query(**params)
        yield from (unmarshal(item) for item in response.get("Items", []))
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return
        params["ExclusiveStartKey"] = last_key


BATCH_GET_KEYS = 100  # BatchGetItem's most keys a call
_UNPROCESSED_RETRIES = 8  # DynamoDB hands back keys it did not read (throttled): asked again


def batch_get(client: Any, table: str, key_name: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The items (as DynamoDB types them) of these partition keys that exist, by key: strongly
    consistent BatchGetItems of BATCH_GET_KEYS keys. Keys DynamoDB leaves unprocessed are asked
    again after a growing pause; a RuntimeError if some stay unread (never read as missing)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {
                "Keys": [{key_name: {"S": key}} for key in wanted[start : start + BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
        }
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            answer = client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table, ()):
                found[item[key_name]["S"]] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt == _UNPROCESSED_RETRIES:
                raise RuntimeError(f"DynamoDB left {len(request[table]['Keys'])} keys unread")
            time.sleep(min(0.05 * 2**attempt, 1.0))
    return found
