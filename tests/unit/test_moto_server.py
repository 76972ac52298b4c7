"""The embedded moto server's keep-alive front end: same answers, one connection."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator

import boto3
import pytest

from devserver.moto_server import KeepAliveMotoServer


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    server = KeepAliveMotoServer().start()
    yield server.url
    server.stop()


def _connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=10)


def test_requests_share_one_connection(moto_url: str) -> None:
    conn = _connection(moto_url)
    answers = []
    for _ in range(3):
        conn.request("GET", "/moto-api/data.json")
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Connection"), json.loads(response.read())))
        assert conn.sock is not None  # still open: the server kept the connection alive
    assert all(status == 200 and connection != "close" for status, connection, _ in answers)
    conn.close()


def test_aws_calls_through_the_sdk(moto_url: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket="keep-alive-test")
    body = os.urandom(3 * 1024 * 1024)  # large enough for the SDK to send Expect: 100-continue
    s3.put_object(Bucket="keep-alive-test", Key="blob", Body=body)
    assert s3.get_object(Bucket="keep-alive-test", Key="blob")["Body"].read() == body
    assert s3.head_object(Bucket="keep-alive-test", Key="blob")["ContentLength"] == len(body)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="keep-alive-test", Key="missing")


def test_a_chunked_request_body_still_works(moto_url: str) -> None:
    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket="chunked-test")
    conn = _connection(moto_url)
    conn.putrequest("PUT", "/chunked-test/chunked")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"5\r\nhello\r\n0\r\n\r\n")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    conn.close()
    fetched = boto3.client("s3", endpoint_url=moto_url).get_object(Bucket="chunked-test", Key="chunked")
    assert fetched["Body"].read() == b"hello"


def test_concurrent_transactions_and_writes_never_fail(moto_url: str) -> None:
    """DynamoDB takes concurrent requests; moto's backend does not (a TransactWriteItems copies
    tables that another request may be changing). The front end makes them take turns."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    dynamodb = boto3.client(
        "dynamodb", endpoint_url=moto_url, config=Config(retries={"max_attempts": 1, "mode": "standard"})
    )
    dynamodb.create_table(
        TableName="turns",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def write(n: int) -> None:
        item = {"pk": {"S": f"item-{n}"}, "payload": {"S": "x" * 200}}
        if n % 2:
            dynamodb.put_item(TableName="turns", Item=item)
        else:
            dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "turns", "Item": item}}])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(600)))  # raises what any call raised
    assert dynamodb.scan(TableName="turns", Select="COUNT")["Count"] == 600


def test_table_items_reads_every_attribute_type_as_a_scan_does(moto_url: str) -> None:
    from devserver.moto_server import table_items

    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    dynamodb.create_table(
        TableName="typed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [
        {
            "pk": {"S": "a"},
            "n": {"N": "12.5"},
            "b": {"B": b"\x00\xff"},
            "bs": {"BS": [b"1", b"\x02"]},
            "ss": {"SS": ["x", "y"]},
            "ns": {"NS": ["1", "2"]},
            "flag": {"BOOL": False},
            "none": {"NULL": True},
            "m": {"M": {"inner": {"B": b"\x01"}, "l": {"L": [{"N": "1"}, {"BS": [b"q"]}, {"S": "s"}]}}},
        },
        {"pk": {"S": "b"}, "object": {"S": "{}"}},
    ]
    for item in items:
        dynamodb.put_item(TableName="typed", Item=item)
    # changed in place by an update expression too
    dynamodb.update_item(
        TableName="typed",
        Key={"pk": {"S": "b"}},
        UpdateExpression="SET added = :blob ADD tally :one",
        ExpressionAttributeValues={":blob": {"B": b"\x03"}, ":one": {"N": "1"}},
    )

    def by_pk(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return sorted(rows, key=lambda row: str(row["pk"]))

    scanned = dynamodb.scan(TableName="typed")["Items"]
    read = table_items("typed", "us-east-1")
    assert read is not None
    assert by_pk(read) == by_pk(scanned)
    assert table_items("no-such-table", "us-east-1") is None
