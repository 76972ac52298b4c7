"""Shared by the create fault-injection suites: moto and the provider simulator behind the real
handlers, a DynamoDB fault injector on the gateway's client, and table inspection."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway.providers import registry
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.storage.dynamo import dynamodb_client, unmarshal

from devserver.simulator import Simulator, SimulatorConfig
from tests.unit.conftest import MASTER_KEY, FakeContext, event

PK = resources.TABLE_PARTITION_KEY


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(batch_phase_seconds=5, azure_file_processing_seconds=0)) as s:
        yield s


@pytest.fixture
def gateway(aws: None, sim: Simulator) -> Iterator[Simulator]:
    """moto, with the providers pointed at the simulator."""
    import os

    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {
            "openai": {"type": "openai", "api_base": sim.openai_api_base},
            "azure": {"type": "azure", "api_base": sim.azure_api_base},
        }
    )
    reset_settings()
    registry.reset_clients()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET,
        SecretString=json.dumps({"openai": "sim-openai-key", "azure": "sim-azure-key"}),
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    sim.clear_faults()
    yield sim
    sim.clear_faults()
    registry.reset_clients()


class TableFaults:
    """Makes the gateway's DynamoDB calls fail: the `times` next calls of `operation` whose key
    (`pk`) starts with `prefix` raise a throttling error, as DynamoDB does under load."""

    _KEY_ARGUMENT = {"put_item": "Item", "update_item": "Key", "delete_item": "Key", "get_item": "Key"}

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._client = dynamodb_client()
        self._rules: list[dict[str, Any]] = []
        for operation, argument in self._KEY_ARGUMENT.items():
            real = getattr(self._client, operation)
            monkeypatch.setattr(self._client, operation, self._wrap(operation, argument, real))

    def fail(self, operation: str, prefix: str, *, times: int = 1) -> None:
        self._rules.append({"operation": operation, "prefix": prefix, "times": times})

    def unused(self) -> int:
        """How many injected failures have not happened yet."""
        return sum(rule["times"] for rule in self._rules)

    def _wrap(self, operation: str, argument: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            pk = kwargs.get(argument, {}).get(PK, {}).get("S", "")
            for rule in self._rules:
                if rule["operation"] == operation and pk.startswith(rule["prefix"]) and rule["times"] > 0:
                    rule["times"] -= 1
                    raise ClientError(
                        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}},
                        operation,
                    )
            return real(**kwargs)

        return call


@pytest.fixture
def table_faults(gateway: Simulator, monkeypatch: pytest.MonkeyPatch) -> TableFaults:
    return TableFaults(monkeypatch)


def items() -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": resources.DEFAULT_TABLE_NAME}
    while True:
        page = client.scan(**params)
        found += [unmarshal(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def records(kind: str) -> list[dict[str, Any]]:
    return [item for item in items() if item.get("kind") == kind]


def assert_settled(kind: str) -> None:
    """No state that no call can leave: every record of `kind` holds its upstream id, and its
    reverse item points back at it."""
    reverse = {item[PK]: item.get("gateway_id") for item in items() if item[PK].startswith("upstream#")}
    for record in records(kind):
        state = json.loads(record.get("state") or "{}")
        assert record.get("upstream_id"), record
        assert "pending" not in state, record
        assert reverse[f"upstream#{record['provider']}#{record['upstream_id']}"] == record[PK]


def with_key(request: dict[str, Any], key: str | None) -> dict[str, Any]:
    if key is not None:
        request["headers"]["Idempotency-Key"] = key
        request["multiValueHeaders"]["Idempotency-Key"] = [key]
    return request


def file_event(
    filename: str,
    content: bytes,
    *,
    purpose: str = "batch",
    key: str | None = None,
    api_key: str = MASTER_KEY,
    provider: str | None = None,
) -> dict[str, Any]:
    boundary = "----fault" + base64.b16encode(filename.encode()).decode()[:16]
    fields = {"purpose": purpose} | ({"custom_llm_provider": provider} if provider else {})
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    )
    body = head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = event("POST", "/v1/files", key=api_key)
    request["headers"]["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request["multiValueHeaders"]["Content-Type"] = [request["headers"]["Content-Type"]]
    request["body"] = base64.b64encode(body).decode()
    request["isBase64Encoded"] = True
    return with_key(request, key)


class ShortContext(FakeContext):
    """A function with little time left: an attempt cut off here stops blocking its key at once."""

    def get_remaining_time_in_millis(self) -> int:
        return 1


LINE = (
    json.dumps(
        {
            "custom_id": "r0",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
    ).encode()
    + b"\n"
)
