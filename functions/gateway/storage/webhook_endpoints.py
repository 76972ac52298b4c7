"""Webhook endpoint items written under optimistic concurrency: a `version` number attribute
counts the writes, and a write holds only if the version is still the one read.

Two requests that change one endpoint (an update and a secret rotation) each read it, change
their copy and write it back; without the condition the later write would put back what the
earlier one changed (a rotation undone by a rename). The loser re-reads and applies its change
again (`service.webhook_endpoints`). An item written before versions existed has none: it reads
as version 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.dynamo import dynamodb_client, set_expression, unmarshal, written
from gateway.storage.id_map import ObjectRecord

VERSION_ATTRIBUTE = "version"


@dataclass
class VersionedEndpoint:
    record: ObjectRecord
    version: int


class EndpointStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self._db = dynamodb_client()

    def read(self, endpoint_id: str) -> VersionedEndpoint | None:
        """The endpoint as stored now (a strongly consistent read), with its version."""
        response = self._db.get_item(
            TableName=self.table,
            Key={resources.TABLE_PARTITION_KEY: {"S": endpoint_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item or "kind" not in item or "object" not in item:
            return None
        plain = unmarshal(item)
        return VersionedEndpoint(ObjectRecord.from_item(plain), int(plain.get(VERSION_ATTRIBUTE, 0)))

    def save(self, endpoint: VersionedEndpoint) -> bool:
        """Writes the record's object and state if the stored version is still the one read
        (and the endpoint was not deleted): True, and `endpoint.version` is the new one."""
        record = endpoint.record
        update = set_expression({**record.saved_item(), VERSION_ATTRIBUTE: endpoint.version + 1})
        names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
        names.update({"#pk": resources.TABLE_PARTITION_KEY, "#kind": "kind", "#version": VERSION_ATTRIBUTE})
        condition = "attribute_exists(#pk) AND attribute_exists(#kind) AND "
        if endpoint.version:
            values[":read_version"] = {"N": str(endpoint.version)}
            condition += "#version = :read_version"
        else:
            condition += "attribute_not_exists(#version)"
        if not written(
            self._db.update_item,
            TableName=self.table,
            Key={resources.TABLE_PARTITION_KEY: {"S": record.id}},
            ConditionExpression=condition,
            **update,
        ):
            return False
        endpoint.version += 1
        record.mark_stored()
        return True
