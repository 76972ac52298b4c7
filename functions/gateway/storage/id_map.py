"""The id mapping: gateway id -> provider deployment, upstream id, owner, last object seen.

Item shapes (one table, partition key `pk`):
- object:  pk=<gateway id>, kind, owner, owner_kind="<owner>#<kind>",
           created_key="<created_us:016d>#<id>", provider, upstream_id, created_at,
           purpose, status, object (JSON of the last client-facing object), state (JSON), ttl
- reverse: pk="upstream#<provider>#<upstream id>", gateway_id   (no kind: stays out of the indexes)
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from gateway.errors import NotFoundError, ServiceUnavailableError
from gateway.formats.ids import storable_id
from gateway.observability import logger
from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import (
    Item,
    batch_get,
    dynamodb_client,
    marshal,
    set_expression,
    unmarshal,
    update_with_puts,
    written,
)
from gateway.storage.status_rank import statuses_ahead_of
from gateway.storage.watch import WATCH_ATTRIBUTE, apply_to_update, watch_value

# The `provider` of objects the gateway serves itself (webhook endpoints): no provider is called.
NO_PROVIDER = "gateway"
Kind = Literal["file", "batch", "batch_part", "upload", "webhook_endpoint", "webhook_delivery"]

_SAVED_ATTRIBUTES = ("object", "status", "state", "upstream_id")
_JSON_ATTRIBUTES = ("object", "state")
# BatchWriteItem may leave items unprocessed (throttling): retried with backoff this many times.
_BATCH_WRITE_ATTEMPTS = 5


@dataclass
class ObjectRecord:
    id: str
    kind: Kind
    owner: str
    provider: str
    created_at: int
    object: dict[str, Any]
    upstream_id: str | None = None
    purpose: str | None = None
    ttl: int | None = None
    # Kind-specific bookkeeping the client never sees (upload parts, transfer progress, ...).
    state: dict[str, Any] = field(default_factory=dict)
    # Sort key of the list indexes, in microseconds: objects created within the same second
    # keep their creation order. 0 means "now, within created_at's second".
    created_us: int = 0
    # The attributes `save_if_changed` compares, as stored when the record was read (or last
    # written by this process); None for a record not read from the table.
    stored: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # A finished batch's usage and cost (storage.settlements): written once, never by snapshots.
    settlement: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.created_us:
            self.created_us = self.created_at * 1_000_000 + (time.time_ns() // 1000) % 1_000_000

    @property
    def status(self) -> str | None:
        return self.object.get("status")

    @property
    def created_key(self) -> str:
        return f"{self.created_us:016d}#{self.id}"

    def to_item(self) -> Item:
        return {
            resources.TABLE_PARTITION_KEY: self.id,
            "kind": self.kind,
            "owner": self.owner,
            "owner_kind": f"{self.owner}#{self.kind}",
            "created_key": self.created_key,
            "provider": self.provider,
            "upstream_id": self.upstream_id,
            "created_at": self.created_at,
            "purpose": self.purpose,
            "status": self.status,
            "object": json.dumps(self.object, separators=(",", ":")),
            "state": json.dumps(self.state, separators=(",", ":")) if self.state else None,
            resources.TABLE_TTL_ATTRIBUTE: self.ttl,
            WATCH_ATTRIBUTE: watch_value(self),
        }

    @classmethod
    def from_item(cls, item: Item) -> ObjectRecord:
        return cls(
            id=item[resources.TABLE_PARTITION_KEY],
            kind=item["kind"],
            owner=item["owner"],
            provider=item["provider"],
            created_at=int(item["created_at"]),
            object=json.loads(item["object"]),
            upstream_id=item.get("upstream_id"),
            purpose=item.get("purpose"),
            ttl=item.get(resources.TABLE_TTL_ATTRIBUTE),
            state=json.loads(item["state"]) if item.get("state") else {},
            created_us=int(str(item["created_key"]).split("#", 1)[0]),
            stored={name: item.get(name) for name in _SAVED_ATTRIBUTES},
            settlement=json.loads(item["settlement"]) if item.get("settlement") else None,
        )

    def _saved_values(self) -> dict[str, Any]:
        """What `IdMap.save_object` writes: the object, its status, and state and upstream id if any."""
        values: dict[str, Any] = {"object": self.object, "status": self.status or "unknown"}
        if self.state:
            values["state"] = self.state
        if self.upstream_id:
            values["upstream_id"] = self.upstream_id
        return values

    def stored_object(self) -> dict[str, Any] | None:
        """The client-facing object as the table held it when read (None: not read)."""
        raw = (self.stored or {}).get("object")
        return json.loads(raw) if raw else None

    def changed_since_stored(self) -> bool:
        """True unless `save_object` would write exactly what the table already holds."""
        if self.stored is None:
            return True
        for name, value in self._saved_values().items():
            stored = self.stored.get(name)
            if name in _JSON_ATTRIBUTES:
                stored = json.loads(stored) if stored else None
            if stored != value:
                return True
        return False

    def saved_item(self) -> Item:
        """`_saved_values` as the table holds them: the JSON attributes serialized."""
        values = self._saved_values()
        for name in _JSON_ATTRIBUTES:
            if name in values:
                values[name] = json.dumps(values[name], separators=(",", ":"))
        return values

    def mark_stored(self) -> None:
        """The table now holds what `save_object` writes (after a put or save)."""
        self.stored = {**(self.stored or {}), **self.saved_item()}


@dataclass(frozen=True)
class PageQuery:
    kind: Kind
    limit: int
    owner: str | None = None  # None: every owner (master key)
    ascending: bool = False
    after: ObjectRecord | None = None
    provider: str | None = None
    purpose: str | None = None


def _object_record(item: dict[str, Any] | None) -> ObjectRecord | None:
    """A read item as an object record; None for no item, a discarded record (no `kind`) or
    an item that is no object (an outbox event has no `object`)."""
    if not item or "kind" not in item or "object" not in item:
        return None
    return ObjectRecord.from_item(unmarshal(item))


class IdMap:
    def __init__(self, table_name: str | None = None, client: Any | None = None) -> None:
        """The table of the settings through the cached client, unless told which (an audit of
        another process's table: tests/integration/devserver_process.py)."""
        self.table = table_name or get_settings().table_name
        self._db = client or dynamodb_client()

    @property
    def client(self) -> Any:
        return self._db

    # Single objects ----------------------------------------------------------------------
    def get(self, gateway_id: str) -> ObjectRecord | None:
        if not storable_id(gateway_id):
            return None
        response = self._db.get_item(
            TableName=self.table, Key={resources.TABLE_PARTITION_KEY: {"S": gateway_id}}
        )
        return _object_record(response.get("Item"))

    def get_many(self, gateway_ids: Iterable[str]) -> dict[str, ObjectRecord]:
        """The records of these ids that exist, by id, read 100 at a time (strongly consistent)."""
        wanted = [gateway_id for gateway_id in gateway_ids if storable_id(gateway_id)]
        items = batch_get(self._db, self.table, resources.TABLE_PARTITION_KEY, wanted)
        return {gateway_id: record for gateway_id, item in items.items() if (record := _object_record(item))}

    def put(self, record: ObjectRecord, *, reverse: bool = True) -> None:
        """Create or replace an object; a new upstream id also gets its reverse entry
        (`reverse=False`: already claimed with `claim_upstream`).

        Object and reverse item go in one BatchWriteItem: one round trip, and unlike
        TransactWriteItems no double write cost; neither item is conditional, and a partial
        write (UnprocessedItems under throttling) is retried until both are stored.
        """
        item = marshal(record.to_item())
        if not (record.upstream_id and reverse):
            self._db.put_item(TableName=self.table, Item=item)
        else:
            reverse_item = {
                resources.TABLE_PARTITION_KEY: _reverse_key(record.provider, record.upstream_id),
                "gateway_id": record.id,
                resources.TABLE_TTL_ATTRIBUTE: record.ttl,
            }
            self._put_all([item, marshal(reverse_item)])
        record.mark_stored()

    def _put_all(self, items: list[dict[str, Any]]) -> None:
        """BatchWriteItem (at most 25 items), retrying UnprocessedItems with backoff."""
        requests: dict[str, Any] = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        for attempt in range(_BATCH_WRITE_ATTEMPTS):
            unprocessed = self._db.batch_write_item(RequestItems=requests).get("UnprocessedItems")
            if not unprocessed:
                return
            requests = unprocessed
            if attempt + 1 < _BATCH_WRITE_ATTEMPTS:
                time.sleep(0.05 * 2**attempt * (0.5 + random.random()))
        raise ServiceUnavailableError("The id mapping table is throttling writes; retry shortly.")

    def save_object(
        self, record: ObjectRecord, *, with_puts: Sequence[Item] = (), if_unchanged: bool = False
    ) -> bool:
        """Store the last object seen (and state) of an existing record: True if written.

        Conditional: the item must still exist whole (a deleted object stays deleted; no half
        item without kind or ttl is re-created) and its stored status must not be ahead of the
        record's (an older snapshot never overwrites a newer status). A lost condition is not
        the caller's error: `record` then holds what the table holds (False), or NotFoundError
        when the object was deleted.

        `with_puts`: new items (an outbox's events) written in the same transaction, which then
        also requires the stored object to be exactly the one `record` was read with: of two
        writers that saw one change, only the first records it (and its events). `if_unchanged`:
        that condition without new items."""
        update = apply_to_update(set_expression(record.saved_item()), record)
        names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
        names.update({"#pk": resources.TABLE_PARTITION_KEY, "#kind": "kind"})
        condition = "attribute_exists(#pk) AND attribute_exists(#kind)"
        ahead = statuses_ahead_of(record.kind, record.status)
        if ahead:
            names["#st"] = "status"
            aliases = [f":ahead{index}" for index in range(len(ahead))]
            values.update({alias: {"S": status} for alias, status in zip(aliases, ahead, strict=True)})
            condition += f" AND NOT (#st IN ({', '.join(aliases)}))"
        params = {
            "TableName": self.table,
            "Key": {resources.TABLE_PARTITION_KEY: {"S": record.id}},
            "ConditionExpression": condition,
            **update,
        }
        if with_puts or if_unchanged:
            self._require_stored_object(record, params)
        if with_puts:
            written_all = update_with_puts(params, with_puts)
        else:
            written_all = written(self._db.update_item, **params)
        if not written_all:
            self._take_stored(record)
            return False
        record.mark_stored()
        return True

    @staticmethod
    def _require_stored_object(record: ObjectRecord, update: dict[str, Any]) -> None:
        """The update, also conditional on the stored object being the one `record` was read with."""
        stored_object = (record.stored or {}).get("object")
        update["ExpressionAttributeNames"]["#obj"] = "object"
        update["ExpressionAttributeValues"][":stored_object"] = {"S": stored_object or ""}
        update["ConditionExpression"] += " AND #obj = :stored_object"

    def _take_stored(self, record: ObjectRecord) -> None:
        """After a lost conditional write: `record` becomes what the table holds now."""
        stored = self.get_consistent(record.id)
        if stored is None:
            raise NotFoundError(f"No such {record.kind.capitalize()} object: {record.id}", param="id")
        logger.info("a newer snapshot is stored; serving it", extra={"id": record.id})
        record.object, record.state, record.upstream_id = stored.object, stored.state, stored.upstream_id
        record.ttl, record.stored = stored.ttl, stored.stored

    def get_consistent(self, gateway_id: str) -> ObjectRecord | None:
        """`get` with a strongly consistent read (right after a conditional write lost)."""
        response = self._db.get_item(
            TableName=self.table,
            Key={resources.TABLE_PARTITION_KEY: {"S": gateway_id}},
            ConsistentRead=True,
        )
        return _object_record(response.get("Item"))

    def save_if_changed(self, record: ObjectRecord) -> bool:
        """`save_object` unless the table already holds this object, status, state and upstream
        id (as read): an unchanged retrieve costs no write. True if it wrote; after False,
        `record.object` is what to serve (a newer stored object when the write lost).

        A record read from the table is written only while the table still holds the object it
        was read with: a writer that recorded a change (and its event) meanwhile is never
        overwritten by this older snapshot."""
        if not record.changed_since_stored():
            return False
        return self.save_object(record, if_unchanged=record.stored is not None)

    def put_new(self, record: ObjectRecord) -> bool:
        """Create the object item unless it exists (no reverse item): False if it existed."""
        if not written(
            self._db.put_item,
            TableName=self.table,
            Item=marshal(record.to_item()),
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": resources.TABLE_PARTITION_KEY},
        ):
            return False
        record.mark_stored()
        return True

    def delete(self, record: ObjectRecord) -> None:
        self._db.delete_item(TableName=self.table, Key={resources.TABLE_PARTITION_KEY: {"S": record.id}})
        if record.upstream_id:
            key = _reverse_key(record.provider, record.upstream_id)
            self._db.delete_item(TableName=self.table, Key={resources.TABLE_PARTITION_KEY: {"S": key}})

    # Upstream ids ------------------------------------------------------------------------
    def gateway_id_for(self, provider: str, upstream_id: str) -> str | None:
        response = self._db.get_item(
            TableName=self.table,
            Key={resources.TABLE_PARTITION_KEY: {"S": _reverse_key(provider, upstream_id)}},
        )
        item = response.get("Item")
        return item["gateway_id"]["S"] if item else None

    def claim_upstream(self, provider: str, upstream_id: str, gateway_id: str) -> str:
        """Reserve `gateway_id` for an upstream id; returns the id that won if one existed.

        One conditional PutItem: a lost race returns the existing item with the failure."""
        try:
            self._db.put_item(
                TableName=self.table,
                Item=marshal(
                    {
                        resources.TABLE_PARTITION_KEY: _reverse_key(provider, upstream_id),
                        "gateway_id": gateway_id,
                    }
                ),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": resources.TABLE_PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item") or {}
            existing = old["gateway_id"]["S"] if "gateway_id" in old else None
            existing = existing or self.gateway_id_for(provider, upstream_id)
            if existing:
                return str(existing)
        return gateway_id

    # Lists -------------------------------------------------------------------------------
    def page(self, query: PageQuery) -> tuple[list[ObjectRecord], bool]:
        """One page of objects, newest or oldest first, with an exact `has_more`."""
        items, has_more = self._page_items(query)
        return [ObjectRecord.from_item(item) for item in items], has_more

    def page_objects(self, query: PageQuery) -> tuple[list[dict[str, Any]], bool]:
        """The same page, only the client-facing objects: the Query projects just `object`
        (a smaller response; what a list that refreshes nothing needs)."""
        items, has_more = self._page_items(query, projection=("object",))
        return [json.loads(item["object"]) for item in items], has_more

    def _page_items(self, query: PageQuery, projection: tuple[str, ...] = ()) -> tuple[list[Item], bool]:
        if query.owner is not None:
            index = resources.INDEX_BY_OWNER
            partition_name, partition_value = "owner_kind", f"{query.owner}#{query.kind}"
        else:
            index = resources.INDEX_BY_KIND
            partition_name, partition_value = "kind", query.kind
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition_name},
            "ExpressionAttributeValues": {":p": {"S": partition_value}},
            "ScanIndexForward": query.ascending,
        }
        filters = []
        for attribute, value in (("provider", query.provider), ("purpose", query.purpose)):
            if value is not None:
                params["ExpressionAttributeNames"][f"#{attribute}"] = attribute
                params["ExpressionAttributeValues"][f":{attribute}"] = {"S": value}
                filters.append(f"#{attribute} = :{attribute}")
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        if projection:
            names = {f"#a{position}": attribute for position, attribute in enumerate(projection)}
            params["ExpressionAttributeNames"].update(names)
            params["ProjectionExpression"] = ", ".join(names)
        if query.after is not None:
            after_item = marshal(query.after.to_item())
            params["ExclusiveStartKey"] = {
                name: after_item[name]
                for name in (resources.TABLE_PARTITION_KEY, partition_name, "created_key")
            }

        wanted = query.limit + 1  # one more than asked tells whether there is more
        items: list[Item] = []
        while True:
            params["Limit"] = max(wanted - len(items), 1) if not filters else 500
            response = self._db.query(**params)
            items.extend(unmarshal(item) for item in response.get("Items", []))
            if len(items) >= wanted:
                return items[: query.limit], True
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return items, False
            params["ExclusiveStartKey"] = last_key


def _reverse_key(provider: str, upstream_id: str) -> str:
    return f"upstream#{provider}#{upstream_id}"
