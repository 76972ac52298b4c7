"""Unit tests: the real handlers against moto in-process, no network."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.http import auth
from gateway.providers import registry
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.storage.id_map import IdMap, ObjectRecord
from moto import mock_aws

from devserver import aws as local_aws

MASTER_KEY = "sk-test-master"


class FakeContext:
    function_name = "test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "lambda-request"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    key: str | None = MASTER_KEY,
    query: dict[str, str] | None = None,
    body: Any = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "body": json.dumps(body) if body is not None and not isinstance(body, str) else body,
        "isBase64Encoded": False,
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "prod"},
    }


def call(handler: Any, request: dict[str, Any]) -> tuple[int, Any, dict[str, list[str]]]:
    result = handler(request, FakeContext())
    body = json.loads(result["body"]) if result.get("body") else None
    return result["statusCode"], body, dict(result["multiValueHeaders"])


def store_file(
    file_id: str,
    *,
    owner: str = "master",
    provider: str = "openai",
    created_at: int = 1000,
    size: int = 3,
    filename: str = "a.jsonl",
    purpose: str = "batch",
) -> None:
    """A processed file the provider holds as `up-<file_id>`, written straight to the table."""
    obj = {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner=owner,
            provider=provider,
            created_at=created_at,
            object=obj,
            upstream_id=f"up-{file_id}",
            purpose=purpose,
        )
    )


@pytest.fixture
def aws() -> Iterator[None]:
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_DEV="false",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {
            "openai": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"},
            "azure": {"type": "azure", "api_base": "http://127.0.0.1:9"},
        }
    )
    reset_settings()
    registry.reset_clients()
    auth.clear_key_cache()
    from gateway.storage.dynamo import dynamodb_client

    dynamodb_client.cache_clear()
    with mock_aws():
        # The same table and secrets the stack and the local server create.
        local_aws.ensure_table(boto3.client("dynamodb"))
        secrets = boto3.client("secretsmanager")
        local_aws.ensure_secret(secrets, resources.DEFAULT_MASTER_KEY_SECRET, MASTER_KEY)
        local_aws.ensure_secret(secrets, resources.DEFAULT_KEY_PEPPER_SECRET, "pepper")
        local_aws.ensure_secret(secrets, resources.DEFAULT_PROVIDER_KEYS_SECRET, "{}")
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
        yield
        dynamodb_client.cache_clear()


class AtomicCalls:
    """DynamoDB applies each request atomically; moto in-process checks a condition and writes
    without a lock. This proxy serializes the client's calls, as the real service would."""

    def __init__(self, client: Any) -> None:
        self._client, self._lock = client, threading.Lock()
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return locked


@pytest.fixture
def atomic_dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """For concurrency tests: the storage modules' DynamoDB client with per-request atomicity."""
    from gateway.storage import dynamo

    atomic = AtomicCalls(dynamo.dynamodb_client())
    for module in ("gateway.storage.settlements", "gateway.storage.id_map", "gateway.storage.budgets"):
        monkeypatch.setattr(f"{module}.dynamodb_client", lambda: atomic)


@pytest.fixture
def kept_bucket(aws: None) -> Iterator[None]:
    """The bucket of the gateway-kept files (moto), for an adapter built in the test."""
    from gateway.storage.s3 import s3_client

    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    yield
    s3_client.cache_clear()


@pytest.fixture
def batch_phase() -> float:
    """Seconds of simulated time a batch spends in each state (tests.unit.stepped_simulator)."""
    return 10.0
