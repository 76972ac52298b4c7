"""Write-ahead records of creates that call a provider: the conditional writes of their life.

A create first stores its record with no upstream id and a `pending` entry in `state` (when it
tried the provider, a hash of the request, how it tagged the upstream object). The record is
then finished once (`attach_upstream`), settled without an upstream object (`settle`), or
discarded when the provider refused the create (`discard`). Each write is conditional, so a
retry, a concurrent cancel and the watcher that adopts stranded records never undo each other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import (
    Item,
    dynamodb_client,
    marshal,
    set_expression,
    unmarshal,
    update_with_puts,
    written,
)
from gateway.storage.id_map import ObjectRecord
from gateway.storage.watch import WATCH_ATTRIBUTE, apply_to_update

PENDING = "pending"  # the key in `state`


def is_pending(record: ObjectRecord) -> bool:
    return record.upstream_id is None and PENDING in record.state


def pending_state(record: ObjectRecord) -> dict[str, Any]:
    return dict(record.state.get(PENDING) or {})


def put_new(
    record: ObjectRecord, *, with_puts: Sequence[Item] = (), extra: Item | None = None
) -> ObjectRecord | None:
    """Store a new record unless its id exists; the existing record if it does (a retry).
    `with_puts` (a final batch's events and spend entry) go in the same transaction, `extra`
    attributes (its settlement) in the record's item."""
    put = {
        "TableName": get_settings().table_name,
        "Item": marshal({**record.to_item(), **(extra or {})}),
        # a discarded record (no `kind`) is free to be written again
        "ConditionExpression": "attribute_not_exists(#pk) OR attribute_not_exists(#kind)",
        "ExpressionAttributeNames": {"#pk": resources.TABLE_PARTITION_KEY, "#kind": "kind"},
    }
    try:
        if with_puts:
            items = [
                {"Put": put},
                *({"Put": {"TableName": put["TableName"], "Item": marshal(item)}} for item in with_puts),
            ]
            dynamodb_client().transact_write_items(TransactItems=items)
        else:
            dynamodb_client().put_item(**put, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or [{}]
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException" and (
            reasons[0].get("Code") != "ConditionalCheckFailed"
        ):
            raise
        old = exc.response.get("Item")
        if old and "kind" in old:
            return ObjectRecord.from_item(unmarshal(old))
        existing = dynamodb_client().get_item(
            TableName=get_settings().table_name,
            Key={resources.TABLE_PARTITION_KEY: {"S": record.id}},
            ConsistentRead=True,
        )
        item = existing.get("Item")
        if item and "kind" in item:
            return ObjectRecord.from_item(unmarshal(item))
        raise
    record.mark_stored()
    return None


def attach_upstream(
    record: ObjectRecord, *, expected_status: str | None, with_puts: Sequence[Item] = ()
) -> bool:
    """Store the record with its upstream id (object, status, state, upstream id, ttl) if it
    has none yet and, when given, its stored status is still `expected_status`; `with_puts`
    (its events) in the same transaction."""
    item = record.to_item()
    names = ("object", "status", "state", "upstream_id", resources.TABLE_TTL_ATTRIBUTE)
    update = apply_to_update(set_expression({name: item.get(name) for name in names}), record)
    # `kind`, not just the key: a discarded record (its create refused) is gone for every reader
    condition = "attribute_exists(#kind) AND attribute_not_exists(#u)"
    update["ExpressionAttributeNames"].update({"#kind": "kind", "#u": "upstream_id"})
    if expected_status is not None:
        condition += " AND #st = :expected"
        update["ExpressionAttributeNames"]["#st"] = "status"
        update["ExpressionAttributeValues"][":expected"] = {"S": expected_status}
    done = _conditional(record.id, with_puts, ConditionExpression=condition, **update)
    if done:
        record.mark_stored()
    return done


def settle(record: ObjectRecord, *, expected_status: str, with_puts: Sequence[Item] = ()) -> bool:
    """Store the record's object, status and state while it has no upstream id and its stored
    status is `expected_status` (a pending batch cancelled, a stranded create given up);
    `with_puts` (its events) in the same transaction."""
    item = record.to_item()
    values: dict[str, Any] = {"object": item["object"], "status": item["status"]}
    update = set_expression(values)
    if item.get("state"):
        update = set_expression({**values, "state": item["state"]})
    else:
        update["UpdateExpression"] += " REMOVE #state"
        update["ExpressionAttributeNames"]["#state"] = "state"
    update = apply_to_update(update, record)
    update["ExpressionAttributeNames"].update({"#kind": "kind", "#u": "upstream_id", "#st": "status"})
    update["ExpressionAttributeValues"][":expected"] = {"S": expected_status}
    done = _conditional(
        record.id,
        with_puts,
        ConditionExpression="attribute_exists(#kind) AND attribute_not_exists(#u) AND #st = :expected",
        **update,
    )
    if done:
        record.mark_stored()
    return done


def discard(record: ObjectRecord) -> bool:
    """Forget a pending record that never reached the provider (it refused the create): drop
    `kind` and the index key, so no read or list sees it, and let the TTL remove the rest. An
    UpdateItem, not a DeleteItem: a create function is granted no deletes on object items."""
    return _conditional(
        record.id,
        (),
        UpdateExpression="SET #ttl = :now REMOVE #kind, #ok, #watch",
        ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(#u) AND #st = :expected",
        ExpressionAttributeNames={
            "#pk": resources.TABLE_PARTITION_KEY,
            "#u": "upstream_id",
            "#st": "status",
            "#ttl": resources.TABLE_TTL_ATTRIBUTE,
            "#kind": "kind",
            "#ok": "owner_kind",
            "#watch": WATCH_ATTRIBUTE,
        },
        ExpressionAttributeValues={
            ":expected": {"S": str(record.status)},
            ":now": {"N": str(int(time.time()))},
        },
    )


def _conditional(record_id: str, with_puts: Sequence[Item], **params: Any) -> bool:
    """One conditional UpdateItem, or with `with_puts` one transaction with their Puts."""
    update = {
        "TableName": get_settings().table_name,
        "Key": {resources.TABLE_PARTITION_KEY: {"S": record_id}},
        **params,
    }
    if with_puts:
        return update_with_puts(update, with_puts)
    return written(dynamodb_client().update_item, **update)
