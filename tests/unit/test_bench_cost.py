"""bench/cost.py's rules: DynamoDB's units for what a request wrote or read, which S3 requests
are billed in which class, a price table whose every entry names its source, and the dollars
of a function's use."""

from __future__ import annotations

import json

import pytest

from bench import _aws_meter as meter
from bench import cost


def test_write_units_follow_dynamodbs_rule_for_the_items_written() -> None:
    small, large = {"pk": {"S": "a"}}, {"pk": {"S": "a"}, "v": {"S": "x" * 2500}}
    assert meter._write_units("PutItem", {"Item": small}) == 1
    assert meter._write_units("PutItem", {"Item": large}) == 3  # 2.5 KB: 3 units
    assert meter._write_units("UpdateItem", {"Key": small}) == 1
    transaction = {
        "TransactItems": [{"Put": {"Item": large}}, {"Update": {"Key": small}}, {"ConditionCheck": {}}]
    }
    assert meter._write_units("TransactWriteItems", transaction) == 2 * 3 + 2 * 1
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": small}}, {"DeleteRequest": {"Key": small}}]}}
    assert meter._write_units("BatchWriteItem", batch) == 2


def test_read_units_follow_dynamodbs_rule_for_what_was_returned() -> None:
    item = {"pk": {"S": "a"}, "v": {"S": "x" * 5000}}  # 5 KB: two 4 KB blocks
    assert meter._read_units("GetItem", {}, {"Item": item}) == 1.0
    assert meter._read_units("GetItem", {"ConsistentRead": True}, {"Item": item}) == 2.0
    assert meter._read_units("GetItem", {}, {}) == 0.5  # a miss costs a read too
    assert meter._read_units("Query", {}, {"Items": [], "Count": 0}) == 0.5
    assert meter._read_units("Query", {}, {"Items": [item, item]}) == 0.5 * 3  # 10 KB summed


def test_s3_classes_and_a_moto_capacity_figure_never_lowering_a_write() -> None:
    use = meter.FunctionUse()
    meter._book(use, "s3", "PutObject", {"Body": b"abc"}, {})
    meter._book(use, "s3", "ListObjectsV2", {}, {})
    meter._book(use, "s3", "HeadObject", {}, {})
    meter._book(use, "s3", "GetObject", {}, {"ContentLength": 7})
    meter._book(use, "s3", "DeleteObject", {}, {})
    assert (use.s3_put_class, use.s3_get_class, use.s3_bytes_in, use.s3_bytes_out) == (2, 2, 3, 7)
    meter._book(
        use, "dynamodb", "PutItem", {"Item": {"pk": {"S": "a"}}}, {"ConsumedCapacity": {"CapacityUnits": 4.0}}
    )
    meter._book(
        use,
        "dynamodb",
        "UpdateItem",
        {"Key": {"pk": {"S": "a"}}},
        {"ConsumedCapacity": {"CapacityUnits": 0.5}},
    )
    assert use.write_units == 4.0 + 1.0


def test_every_price_names_its_source_and_date() -> None:
    table = json.loads(cost.PRICES_FILE.read_text())
    assert table["region"] == "us-east-1"
    for name, entry in table["prices"].items():
        assert entry["usd"] > 0 and entry["source"].startswith("https://aws.amazon.com/"), name
        assert entry["as_of"] and entry["per"], name


def test_a_functions_dollars() -> None:
    price = cost.prices()
    use = meter.FunctionUse(invocations=2, milliseconds=[100.0, 300.0], read_units=4, write_units=2)
    use.secrets_calls, use.response_bytes = 1, 1000
    dollars = cost.function_dollars("batches_retrieve", use, price)  # 512 MB, routed
    gb_seconds = 0.4 * 0.5
    assert dollars["lambda"] == pytest.approx(
        2 * price["lambda_request"] + gb_seconds * price["lambda_arm64_gb_second"]
    )
    assert dollars["api_gateway"] == pytest.approx(2 * price["apigateway_rest_request"])
    assert dollars["dynamodb"] == pytest.approx(
        4 * price["dynamodb_read_request_unit"] + 2 * price["dynamodb_write_request_unit"]
    )
    assert dollars["secrets_manager"] == pytest.approx(price["secretsmanager_api_call"])
    assert cost.function_dollars("batch_watcher", use, price)["api_gateway"] == 0  # not behind API Gateway
    consumer = cost.function_dollars(
        "webhook_deliver", meter.FunctionUse(invocations=1, sqs_requests=0), price
    )
    assert consumer["sqs"] == pytest.approx(2 * price["sqs_standard_request"])  # its receive and delete
