"""Virtual keys, stored only as peppered HMAC-SHA256 hashes.

Item: pk="key#<hash>", kind="key", owner_kind="keys#key", created_key, key_id, key_alias,
providers (string set, absent = all), metadata (JSON), expires_at, created_at, key_hint,
batch_retry (JSON: the key's default `retry` of its batches' lines, absent = none).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import Item, dynamodb_client, marshal, query_items, unmarshal, written

_KIND = "key"


def hash_key(plain_key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), plain_key.encode(), hashlib.sha256).hexdigest()


@dataclass
class KeyRecord:
    key_hash: str
    key_id: str
    created_at: int
    key_alias: str | None = None
    providers: list[str] | None = None  # None: every provider
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: int | None = None
    key_hint: str = ""  # "sk-...abcd", safe to show
    # the `retry` its batches take when a create sends none (models.retry.RetryOptions' JSON)
    batch_retry: dict[str, Any] | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def to_item(self) -> Item:
        return {
            resources.TABLE_PARTITION_KEY: f"key#{self.key_hash}",
            "kind": _KIND,
            "owner_kind": f"keys#{_KIND}",
            "created_key": f"{self.created_at:012d}#{self.key_id}",
            "key_id": self.key_id,
            "key_alias": self.key_alias,
            "providers": self.providers if self.providers is not None else None,
            "all_providers": self.providers is None,
            "metadata": json.dumps(self.metadata),
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "key_hint": self.key_hint,
            "batch_retry": json.dumps(self.batch_retry) if self.batch_retry is not None else None,
        }

    @classmethod
    def from_item(cls, item: Item) -> KeyRecord:
        providers = None if item.get("all_providers", True) else list(item.get("providers") or [])
        return cls(
            key_hash=item[resources.TABLE_PARTITION_KEY].removeprefix("key#"),
            key_id=item["key_id"],
            created_at=int(item["created_at"]),
            key_alias=item.get("key_alias"),
            providers=providers,
            metadata=json.loads(item.get("metadata") or "{}"),
            expires_at=item.get("expires_at"),
            key_hint=item.get("key_hint", ""),
            batch_retry=json.loads(item["batch_retry"]) if item.get("batch_retry") else None,
        )


class KeyStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self._db = dynamodb_client()

    def get(self, key_hash: str) -> KeyRecord | None:
        response = self._db.get_item(
            TableName=self.table, Key={resources.TABLE_PARTITION_KEY: {"S": f"key#{key_hash}"}}
        )
        item = response.get("Item")
        return KeyRecord.from_item(unmarshal(item)) if item else None

    def put(self, record: KeyRecord) -> None:
        """Store a new key."""
        self._db.put_item(TableName=self.table, Item=marshal(record.to_item()))

    def replace(self, record: KeyRecord) -> bool:
        """Store an updated key only if it still exists: False when it was deleted meanwhile
        (a revoked key never comes back through a concurrent update)."""
        return written(
            self._db.put_item,
            TableName=self.table,
            Item=marshal(record.to_item()),
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#pk": resources.TABLE_PARTITION_KEY},
        )

    def delete(self, record: KeyRecord) -> None:
        self._db.delete_item(
            TableName=self.table, Key={resources.TABLE_PARTITION_KEY: {"S": f"key#{record.key_hash}"}}
        )

    def all(self) -> list[KeyRecord]:
        items = query_items(
            self._db.query,
            TableName=self.table,
            IndexName=resources.INDEX_BY_KIND,
            KeyConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": "kind"},
            ExpressionAttributeValues={":k": {"S": _KIND}},
        )
        return [KeyRecord.from_item(item) for item in items]
