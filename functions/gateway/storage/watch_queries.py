"""What the watcher looks at: every unfinished batch, and every file still waiting for its
provider (a create that never heard back, a transfer under way). Queries on the by_kind index,
filtered by status, so a finished object costs read capacity but is never returned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway import resources
from gateway.models.batches import TERMINAL_BATCH_STATUSES
from gateway.storage.dynamo import dynamodb_client, query_items
from gateway.storage.id_map import IdMap, ObjectRecord


def unfinished_batches(id_map: IdMap) -> Iterator[ObjectRecord]:
    finished = sorted(TERMINAL_BATCH_STATUSES)
    aliases = {f":s{index}": {"S": status} for index, status in enumerate(finished)}
    yield from _query(
        id_map,
        "batch",
        f"NOT (#st IN ({', '.join(aliases)}))",
        {"#st": "status"},
        aliases,
    )


def waiting_files(id_map: IdMap) -> Iterator[ObjectRecord]:
    """Files `uploaded` with no upstream id: a pending create or a transfer."""
    yield from _query(
        id_map,
        "file",
        "#st = :uploaded AND attribute_not_exists(#up)",
        {"#st": "status", "#up": "upstream_id"},
        {":uploaded": {"S": "uploaded"}},
    )


def _query(
    id_map: IdMap, kind: str, condition: str, names: dict[str, str], values: dict[str, Any]
) -> Iterator[ObjectRecord]:
    params: dict[str, Any] = {
        "TableName": id_map.table,
        "IndexName": resources.INDEX_BY_KIND,
        "KeyConditionExpression": "#kind = :kind",
        "FilterExpression": condition,
        "ExpressionAttributeNames": {"#kind": "kind", **names},
        "ExpressionAttributeValues": {":kind": {"S": kind}, **values},
    }
    for item in query_items(dynamodb_client().query, **params):
        yield ObjectRecord.from_item(item)
