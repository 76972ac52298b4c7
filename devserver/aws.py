"""The AWS side of the local server: an embedded moto server and resource bootstrap.

`start_moto()` runs moto's server in a daemon thread of this process; `bootstrap()` creates
what the CDK stack creates (the DynamoDB table with its GSIs and TTL, the S3 bucket and
both secrets) on whatever endpoint boto3 is pointed at: embedded moto, LocalStack or AWS.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as secrets_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from gateway.runtime import resources

logger = logging.getLogger("devserver.aws")

DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

__all__ = [
    "BootstrapResult",
    "EmbeddedMoto",
    "bootstrap",
    "ensure_bucket",
    "ensure_event_bus",
    "ensure_secret",
    "ensure_table",
    "start_moto",
]


@dataclass
class EmbeddedMoto:
    """moto's server running in a daemon thread of this process."""

    url: str
    server: Any = field(repr=False)

    def stop(self) -> None:
        self.server.stop()


def start_moto(host: str = "127.0.0.1", port: int = 0) -> EmbeddedMoto:
    """Start moto's server on `host:port` (0: a free port) and return its URL."""
    from devserver.moto_server import KeepAliveMotoServer

    server = KeepAliveMotoServer(host, port).start()
    return EmbeddedMoto(url=server.url, server=server)


def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def ensure_table(dynamodb: Any, table_name: str = resources.DEFAULT_TABLE_NAME) -> bool:
    """Create the table the stack creates, unless it exists; True when created."""
    key_attributes = {resources.TABLE_PARTITION_KEY}
    for partition, sort in resources.TABLE_INDEXES.values():
        key_attributes.update((partition, sort))
    created = True
    try:
        dynamodb.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in sorted(key_attributes)
            ],
            KeySchema=[{"AttributeName": resources.TABLE_PARTITION_KEY, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": partition, "KeyType": "HASH"},
                        {"AttributeName": sort, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, (partition, sort) in resources.TABLE_INDEXES.items()
            ],
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
        created = False
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": resources.TABLE_TTL_ATTRIBUTE},
        )
    return created


def ensure_event_bus(events: Any, name: str = resources.DEFAULT_EVENT_BUS_NAME) -> bool:
    """Create the EventBridge bus batch events go to, unless it exists; True when created."""
    try:
        events.create_event_bus(Name=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceAlreadyExistsException":
            raise
        return False
    return True


def ensure_bucket(s3: Any, bucket_name: str = resources.DEFAULT_BUCKET_NAME) -> bool:
    """Create the bucket unless it exists; True when created."""
    try:
        s3.head_bucket(Bucket=bucket_name)
        return False  # (us-east-1 answers CreateBucket on an owned bucket with 200)
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": bucket_name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if _error_code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False
        raise
    return True


def ensure_secret(secretsmanager: Any, name: str, value: str, *, overwrite: bool = True) -> bool:
    """Create the secret; if it exists, put `value` as its current version (or keep the old
    value when not `overwrite`). True when created."""
    try:
        secretsmanager.create_secret(Name=name, SecretString=value)
    except ClientError as exc:
        if _error_code(exc) != "ResourceExistsException":
            raise
        if overwrite:
            secretsmanager.put_secret_value(SecretId=name, SecretString=value)
        return False
    return True


@dataclass(frozen=True)
class BootstrapResult:
    table_name: str
    bucket_name: str
    master_key_secret: str
    provider_keys_secret: str
    key_pepper_secret: str
    created: tuple[str, ...]  # what did not exist before


def bootstrap(
    *,
    master_key: str,
    provider_keys: Mapping[str, str],
    endpoint_url: str | None = None,
    region: str | None = None,
    table_name: str = resources.DEFAULT_TABLE_NAME,
    bucket_name: str = resources.DEFAULT_BUCKET_NAME,
    master_key_secret: str = resources.DEFAULT_MASTER_KEY_SECRET,
    provider_keys_secret: str = resources.DEFAULT_PROVIDER_KEYS_SECRET,
    key_pepper_secret: str = resources.DEFAULT_KEY_PEPPER_SECRET,
    event_bus_name: str = resources.DEFAULT_EVENT_BUS_NAME,
) -> BootstrapResult:
    """Create the gateway's resources (idempotent) and put the current secret values.

    The master key secret holds the key as a plain string; the provider keys secret a
    JSON object {"<provider>": "<api key>"}. Both are always rewritten, so a restart with
    new keys takes effect. The key pepper (HMAC secret of virtual key hashes) is random
    and created once: changing it would invalidate every virtual key.
    """
    created: list[str] = []
    if ensure_table(_client("dynamodb", endpoint_url, region), table_name):
        created.append(f"table {table_name}")
    if ensure_bucket(_client("s3", endpoint_url, region), bucket_name):
        created.append(f"bucket {bucket_name}")
    secrets = _client("secretsmanager", endpoint_url, region)
    if ensure_secret(secrets, master_key_secret, master_key):
        created.append(f"secret {master_key_secret}")
    if ensure_secret(secrets, provider_keys_secret, json.dumps(dict(provider_keys))):
        created.append(f"secret {provider_keys_secret}")
    if ensure_secret(secrets, key_pepper_secret, secrets_module.token_urlsafe(32), overwrite=False):
        created.append(f"secret {key_pepper_secret}")
    if ensure_event_bus(_client("events", endpoint_url, region), event_bus_name):
        created.append(f"event bus {event_bus_name}")
    if created:
        logger.info("created %s", ", ".join(created))
    return BootstrapResult(
        table_name=table_name,
        bucket_name=bucket_name,
        master_key_secret=master_key_secret,
        provider_keys_secret=provider_keys_secret,
        key_pepper_secret=key_pepper_secret,
        created=tuple(created),
    )
