"""Conditional writes on object records: one winner when two requests race.

`IdMap.save_object` only keeps snapshots from moving backwards; these guard the steps that
must happen once (an upload completed or cancelled once, a transferred file given its upstream
id once, a transfer failed only while it has not succeeded).
"""

from __future__ import annotations

import json
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import dynamodb_client, set_expression, written
from gateway.storage.id_map import ObjectRecord
from gateway.storage.watch import apply_to_update


def _key(record_id: str) -> dict[str, Any]:
    return {resources.TABLE_PARTITION_KEY: {"S": record_id}}


def _conditional_update(record_id: str, **params: Any) -> bool:
    return written(
        dynamodb_client().update_item, TableName=get_settings().table_name, Key=_key(record_id), **params
    )


def claim_status(record_id: str, expected: str, new: str) -> bool:
    """Move the record's status from `expected` to `new`; False if it was not `expected`."""
    return _conditional_update(
        record_id,
        UpdateExpression="SET #s = :new",
        ConditionExpression="#s = :expected",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":new": {"S": new}, ":expected": {"S": expected}},
    )


_TRANSFERRED_ATTRIBUTES = ("object", "status", "state", "upstream_id", resources.TABLE_TTL_ATTRIBUTE)


def record_transferred(record: ObjectRecord) -> bool:
    """Store a transferred file (object, status, state, upstream id, ttl) unless it already has
    an upstream id, was failed (a stale transfer ended in `error`) or deleted meanwhile; False
    then."""
    item = record.to_item()
    update = apply_to_update(
        set_expression({name: item.get(name) for name in _TRANSFERRED_ATTRIBUTES}), record
    )
    update["ExpressionAttributeNames"].update(
        {"#pk": resources.TABLE_PARTITION_KEY, "#u": "upstream_id", "#st": "status"}
    )
    update["ExpressionAttributeValues"][":uploaded"] = {"S": "uploaded"}
    return _conditional_update(
        record.id,
        ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(#u) AND #st = :uploaded",
        **update,
    )


def current_status(record_id: str) -> str | None:
    """The record's status attribute as stored now (it leads the object's during a claim)."""
    response = dynamodb_client().get_item(
        TableName=get_settings().table_name,
        Key=_key(record_id),
        ProjectionExpression="#s",
        ExpressionAttributeNames={"#s": "status"},
        ConsistentRead=True,
    )
    value = response.get("Item", {}).get("status", {}).get("S")
    return str(value) if value is not None else None


# Completing an upload (service.uploads) ----------------------------------------------------
COMPLETING = "completing"


def claim_completion(record_id: str, completion: dict[str, Any]) -> bool:
    """pending -> completing, writing ahead what the completion will create (the file id, the
    parts): any later complete or cancel can then finish it. False if it was not pending."""
    return _conditional_update(
        record_id,
        UpdateExpression="SET #s = :new, #c = :c",
        ConditionExpression="#s = :expected",
        ExpressionAttributeNames={"#s": "status", "#c": "completion"},
        ExpressionAttributeValues={
            ":new": {"S": COMPLETING},
            ":expected": {"S": "pending"},
            ":c": {"S": json.dumps(completion, separators=(",", ":"))},
        },
    )


def pending_completion(record_id: str) -> dict[str, Any] | None:
    """The completion written ahead by `claim_completion`, while the upload is completing."""
    response = dynamodb_client().get_item(
        TableName=get_settings().table_name,
        Key=_key(record_id),
        ProjectionExpression="#s, #c",
        ExpressionAttributeNames={"#s": "status", "#c": "completion"},
        ConsistentRead=True,
    )
    item = response.get("Item", {})
    if item.get("status", {}).get("S") != COMPLETING or "completion" not in item:
        return None
    return dict(json.loads(item["completion"]["S"]))


def finish_completion(record: ObjectRecord) -> bool:
    """completing -> the record's (completed) object and state; False if another attempt did."""
    update = set_expression(record.saved_item())
    update["UpdateExpression"] += " REMOVE #c"
    update["ExpressionAttributeNames"].update({"#st": "status", "#c": "completion"})
    update["ExpressionAttributeValues"][":completing"] = {"S": COMPLETING}
    return _conditional_update(record.id, ConditionExpression="#st = :completing", **update)


# Failing a transfer (service.transfer) ----------------------------------------------------
def record_failed(record: ObjectRecord) -> bool:
    """Store a failed transfer's `error` object, only while the file still waits for its
    transfer (exists, `uploaded`, no upstream id): a transfer that succeeded, or a file
    deleted meanwhile, is left alone (False)."""
    update = apply_to_update(set_expression(record.saved_item()), record)
    update["ExpressionAttributeNames"].update(
        {"#pk": resources.TABLE_PARTITION_KEY, "#u": "upstream_id", "#st": "status"}
    )
    update["ExpressionAttributeValues"][":uploaded"] = {"S": "uploaded"}
    return _conditional_update(
        record.id,
        ConditionExpression="attribute_exists(#pk) AND attribute_not_exists(#u) AND #st = :uploaded",
        **update,
    )


# Write-ahead of a transfer's provider copy (service.transfer) ------------------------------
_SENT = "sent_upstream_id"
_WAITING = "attribute_exists(#pk) AND attribute_not_exists(#u) AND #st = :uploaded"  # for its transfer


def note_sent(record_id: str, upstream_id: str, replacing: str | None = None) -> bool:
    """Remember the provider copy a transfer made, before its commit: a retry reuses it and
    the on-failure function deletes it, instead of a second copy nobody knows. Only one copy is
    noted at a time (`replacing`: the noted copy this run found gone upstream). False if another
    run's copy is noted, or the file no longer waits (committed, failed or deleted meanwhile)."""
    names = {"#sent": _SENT, "#pk": resources.TABLE_PARTITION_KEY, "#u": "upstream_id", "#st": "status"}
    values = {":sent": {"S": upstream_id}, ":uploaded": {"S": "uploaded"}}
    noted = "attribute_not_exists(#sent)"
    if replacing is not None:
        values[":replacing"] = {"S": replacing}
        noted = f"({noted} OR #sent = :replacing)"
    return _conditional_update(
        record_id,
        UpdateExpression="SET #sent = :sent",
        ConditionExpression=f"{_WAITING} AND {noted}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def sent_upstream(record_id: str) -> str | None:
    """The provider copy an earlier run of this transfer made (`note_sent`), if any."""
    response = dynamodb_client().get_item(
        TableName=get_settings().table_name,
        Key=_key(record_id),
        ProjectionExpression="#sent",
        ExpressionAttributeNames={"#sent": _SENT},
        ConsistentRead=True,
    )
    value = response.get("Item", {}).get(_SENT, {}).get("S")
    return str(value) if value is not None else None
