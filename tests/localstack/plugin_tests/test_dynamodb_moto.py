"""`dynamodb:moto` (tests/localstack/dynamodb_moto.py): each DynamoDB call the gateway relies on,
served by moto through the provider's dispatch table, as LocalStack's gateway would hand it on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from dynamodb_moto import MotoDynamoDBProvider
from localstack.aws.forwarder import create_aws_request_context
from localstack.services.plugins import PLUGIN_NAMESPACE, Service
from plux import PluginManager


@pytest.fixture(scope="module")
def service() -> Service:
    """Found as LocalStack finds PROVIDER_OVERRIDE_DYNAMODB=moto: setup.sh's entry point."""
    manager: PluginManager[Any] = PluginManager(PLUGIN_NAMESPACE)
    assert "dynamodb:moto" in manager.list_names()
    loaded = manager.load("dynamodb:moto").load()
    assert isinstance(loaded, Service)
    return loaded


def call(service: Service, action: str, parameters: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    context = create_aws_request_context("dynamodb", action, parameters=parameters)
    response = service.skeleton.invoke(context)
    return response.status_code, json.loads(response.data or b"{}")


@pytest.fixture
def table(service: Service) -> str:
    name = f"plugin-test-{uuid.uuid4().hex[:8]}"
    status, _ = call(
        service,
        "CreateTable",
        {
            "TableName": name,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    assert status == 200
    return name


def test_the_provider_implements_nothing_itself_so_every_operation_reaches_moto() -> None:
    own = {name for name in vars(MotoDynamoDBProvider) if not name.startswith("_")}
    assert own == set()


def test_the_plugin_is_the_dynamodb_service(service: Service) -> None:
    assert service.name() == "dynamodb"


def test_an_item_written_is_read_back(service: Service, table: str) -> None:
    item = {"pk": {"S": "batch_1"}, "status": {"S": "pending"}}
    assert call(service, "PutItem", {"TableName": table, "Item": item})[0] == 200
    status, body = call(service, "GetItem", {"TableName": table, "Key": {"pk": {"S": "batch_1"}}})
    assert status == 200
    assert body["Item"] == item


def test_a_conditional_write_whose_condition_fails_is_refused(service: Service, table: str) -> None:
    """The gateway's write-ahead records depend on it (attribute_not_exists on the id map)."""
    item = {"pk": {"S": "file_1"}, "owner": {"S": "a"}}
    condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    assert call(service, "PutItem", {"TableName": table, "Item": item, **condition})[0] == 200
    second = {"pk": {"S": "file_1"}, "owner": {"S": "b"}}
    status, body = call(service, "PutItem", {"TableName": table, "Item": second, **condition})
    assert status == 400
    assert body["__type"].endswith("ConditionalCheckFailedException")
    _, kept = call(service, "GetItem", {"TableName": table, "Key": {"pk": {"S": "file_1"}}})
    assert kept["Item"]["owner"] == {"S": "a"}


def test_a_transaction_with_a_failing_condition_writes_nothing(service: Service, table: str) -> None:
    call(service, "PutItem", {"TableName": table, "Item": {"pk": {"S": "taken"}}})
    status, body = call(
        service,
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        },
    )
    assert status == 400
    assert body["__type"].endswith("TransactionCanceledException")
    _, missing = call(service, "GetItem", {"TableName": table, "Key": {"pk": {"S": "new"}}})
    assert "Item" not in missing
