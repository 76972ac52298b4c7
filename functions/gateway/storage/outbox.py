"""The transactional outbox of batch events.

A recorded change and its events are written in one transaction (IdMap.save_object with
`with_puts`); the recorder then publishes each event and deletes its item. Whatever a crash
leaves between those steps stays here, and the watcher publishes it again: event ids are
derived from the change, so a second publication is a duplicate receivers drop.

Item: pk="event#<event id>", kind="outbox" (in the by_kind index, oldest first by
created_key), event_owner, provider, detail_type, event (the webhook event JSON), detail (the
EventBridge detail JSON), ttl. No `object`: IdMap.get never takes it for an object.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import Item, dynamodb_client, unmarshal

OUTBOX_KIND = "outbox"
KEY_PREFIX = "event#"
# Long after any publisher gave up: an unpublished event is dropped after this long.
KEEP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class OutboxEvent:
    event: dict[str, Any]  # OpenAI's webhook event object (gateway ids)
    detail_type: str
    detail: dict[str, Any]  # what the bus gets
    owner: str
    provider: str
    created_us: int = 0

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.event_id

    def to_item(self) -> Item:
        created_us = self.created_us or time.time_ns() // 1000
        return {
            resources.TABLE_PARTITION_KEY: self.key,
            "kind": OUTBOX_KIND,
            "created_key": f"{created_us:016d}#{self.event_id}",
            "event_owner": self.owner,
            "provider": self.provider,
            "detail_type": self.detail_type,
            "event": json.dumps(self.event, separators=(",", ":")),
            "detail": json.dumps(self.detail, separators=(",", ":")),
            resources.TABLE_TTL_ATTRIBUTE: created_us // 1_000_000 + KEEP_SECONDS,
        }

    @classmethod
    def from_item(cls, item: Item) -> OutboxEvent:
        return cls(
            event=json.loads(item["event"]),
            detail_type=str(item["detail_type"]),
            detail=json.loads(item["detail"]),
            owner=str(item["event_owner"]),
            provider=str(item["provider"]),
            created_us=int(str(item["created_key"]).split("#", 1)[0]),
        )


def delete(event: OutboxEvent) -> None:
    dynamodb_client().delete_item(
        TableName=get_settings().table_name, Key={resources.TABLE_PARTITION_KEY: {"S": event.key}}
    )


def left_behind(older_than_seconds: float, limit: int = 100) -> list[OutboxEvent]:
    """Events recorded more than `older_than_seconds` ago and still here (oldest first): their
    publisher died or failed. One Query on the by_kind index."""
    cutoff_us = int((time.time() - older_than_seconds) * 1_000_000)
    response = dynamodb_client().query(
        TableName=get_settings().table_name,
        IndexName=resources.INDEX_BY_KIND,
        KeyConditionExpression="#k = :k AND #c < :c",
        ExpressionAttributeNames={"#k": "kind", "#c": "created_key"},
        ExpressionAttributeValues={":k": {"S": OUTBOX_KIND}, ":c": {"S": f"{cutoff_us:016d}"}},
        ScanIndexForward=True,
        Limit=limit,
    )
    return [OutboxEvent.from_item(unmarshal(item)) for item in response.get("Items", [])]
