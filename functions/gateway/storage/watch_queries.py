"""What the watcher looks at: every batch that needs watching (pending whatever its status,
unfinished, or finished but not settled) and every file still waiting for its provider (a
create that never heard back, a transfer under way).

Queries on the sparse `by_watch` index (storage.watch): an object is in it only while it needs
watching, so a pass reads live work, never the history. Items written before that index
existed lack the attribute: `backfill` gives it to those the old query found (unfinished
batches, waiting files), once per table, and then marks the table done.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.models.batches import TERMINAL_BATCH_STATUSES
from gateway.runtime import resources
from gateway.storage.dynamo import dynamodb_client, query_items, written
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import PENDING, WATCH_ATTRIBUTE, needs_watching, shard_of, shard_values

# The table's marker that every item written before the by_watch index was backfilled (no
# `kind`, so no index sees it).
BACKFILL_MARKER = "watch#backfilled"


def watched_batches(id_map: IdMap) -> Iterator[ObjectRecord]:
    yield from _watched(id_map, "batch")


def waiting_files(id_map: IdMap) -> Iterator[ObjectRecord]:
    """Files `uploaded` with no upstream id: a pending create or a transfer."""
    yield from _watched(id_map, "file")


def _watched(id_map: IdMap, kind: str) -> Iterator[ObjectRecord]:
    for shard in shard_values(kind):
        params: dict[str, Any] = {
            "TableName": id_map.table,
            "IndexName": resources.INDEX_BY_WATCH,
            "KeyConditionExpression": "#watch = :shard",
            "ExpressionAttributeNames": {"#watch": WATCH_ATTRIBUTE},
            "ExpressionAttributeValues": {":shard": {"S": shard}},
        }
        for item in query_items(id_map.client.query, **params):
            if "kind" in item and "object" in item:
                yield ObjectRecord.from_item(item)


def unwatch(id_map: IdMap, record: ObjectRecord) -> bool:
    """Drop a record the index still lists though it needs no watching (a snapshot that raced
    the settlement wrote the attribute back): conditional on the stored item agreeing."""
    if record.kind == "batch":
        condition = "attribute_exists(settlement)"
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
    else:
        condition = "attribute_exists(#up) OR #st <> :uploaded"
        names = {"#up": "upstream_id", "#st": "status"}
        values = {":uploaded": {"S": "uploaded"}}
    params: dict[str, Any] = {
        "TableName": id_map.table,
        "Key": {resources.TABLE_PARTITION_KEY: {"S": record.id}},
        "UpdateExpression": "REMOVE #watch",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#watch": WATCH_ATTRIBUTE, **names},
    }
    if values:
        params["ExpressionAttributeValues"] = values
    return written(dynamodb_client().update_item, **params)


def backfill_done(id_map: IdMap) -> bool:
    response = dynamodb_client().get_item(
        TableName=id_map.table,
        Key={resources.TABLE_PARTITION_KEY: {"S": BACKFILL_MARKER}},
        ProjectionExpression="#pk",
        ExpressionAttributeNames={"#pk": resources.TABLE_PARTITION_KEY},
    )
    return "Item" in response


def backfill(id_map: IdMap, out_of_time: Any) -> int | None:
    """Give the watch attribute to every item written before the by_watch index that needs
    it (what the old filtered by_kind queries found, and finished batches never settled); then
    mark the table done. How many were
    given it, or None when `out_of_time()` stopped it first (the next pass starts again)."""
    client = dynamodb_client()
    given = 0
    finished = sorted(TERMINAL_BATCH_STATUSES)
    aliases = {f":s{index}": {"S": status} for index, status in enumerate(finished)}
    # a batch cancelled while pending is finished but still pending: its state names it
    pending_batch = "(attribute_not_exists(upstream_id) AND contains(#state, :pending))"
    # a finished batch an older gateway left unsettled: the watcher books it
    unsettled = "attribute_not_exists(settlement)"
    queries = (
        (
            "batch",
            f"(NOT (#st IN ({', '.join(aliases)})) OR {pending_batch} OR {unsettled})",
            {**aliases, ":pending": {"S": f'"{PENDING}":'}},
        ),
        ("file", "#st = :uploaded AND attribute_not_exists(upstream_id)", {":uploaded": {"S": "uploaded"}}),
    )
    for kind, condition, values in queries:
        params: dict[str, Any] = {
            "TableName": id_map.table,
            "IndexName": resources.INDEX_BY_KIND,
            "KeyConditionExpression": "#kind = :kind",
            "FilterExpression": f"{condition} AND attribute_not_exists(#watch)",
            "ExpressionAttributeNames": {
                "#kind": "kind",
                "#st": "status",
                "#watch": WATCH_ATTRIBUTE,
                **({"#state": "state"} if kind == "batch" else {}),
            },
            "ExpressionAttributeValues": {":kind": {"S": kind}, **values},
        }
        for item in query_items(client.query, **params):
            if out_of_time():
                return None
            record = ObjectRecord.from_item(item)
            if needs_watching(record) and _watch(id_map, record):
                given += 1
    client.put_item(
        TableName=id_map.table,
        Item={resources.TABLE_PARTITION_KEY: {"S": BACKFILL_MARKER}, "count": {"N": str(given)}},
    )
    return given


def _watch(id_map: IdMap, record: ObjectRecord) -> bool:
    """SET the attribute while the item is still an object and has none (a concurrent write
    set or removed it knowing better)."""
    return written(
        dynamodb_client().update_item,
        TableName=id_map.table,
        Key={resources.TABLE_PARTITION_KEY: {"S": record.id}},
        UpdateExpression="SET #watch = :shard",
        ConditionExpression="attribute_exists(#kind) AND attribute_not_exists(#watch)",
        ExpressionAttributeNames={"#watch": WATCH_ATTRIBUTE, "#kind": "kind"},
        ExpressionAttributeValues={":shard": {"S": shard_of(record.kind, record.id)}},
    )
