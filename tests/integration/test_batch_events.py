"""The watcher under `make serve`: a batch nobody polls is recorded as it moves, and each change
is announced once, on the EventBridge bus (moto's) and to its owner's webhook endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import openai
import pytest
from gateway.runtime import resources
from gateway.storage.id_map import IdMap

from devserver.server import LocalGateway
from tests.integration.receiver import Receiver, webhook_receiver
from tests.integration.tenancy import generate_key, sdk, upload_input

WATCH_INTERVAL_SECONDS = 0.3


@pytest.fixture
def watching(local_gateway: LocalGateway) -> Iterator[None]:
    """The watcher every WATCH_INTERVAL_SECONDS for this test, as `make serve` runs it."""
    assert local_gateway.watcher is not None
    local_gateway.watcher.start(WATCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        local_gateway.watcher.stop()


@pytest.fixture
def bus_queue() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """An SQS queue behind a rule on the gateway's bus for batch.completed (the README's rule);
    yields a function draining it."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=f"completed-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"completed-{time.time_ns()}"
    events.put_rule(
        Name=rule,
        EventBusName=resources.DEFAULT_EVENT_BUS_NAME,
        EventPattern=json.dumps({"source": [resources.EVENT_SOURCE], "detail-type": ["batch.completed"]}),
    )
    events.put_targets(
        Rule=rule, EventBusName=resources.DEFAULT_EVENT_BUS_NAME, Targets=[{"Id": "queue", "Arn": arn}]
    )
    received: list[dict[str, Any]] = []

    def drain() -> list[dict[str, Any]]:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"]))
        return received

    try:
        yield drain
    finally:
        events.remove_targets(Rule=rule, EventBusName=resources.DEFAULT_EVENT_BUS_NAME, Ids=["queue"])
        events.delete_rule(Name=rule, EventBusName=resources.DEFAULT_EVENT_BUS_NAME)
        sqs.delete_queue(QueueUrl=url)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def stored_status(batch_id: str) -> str | None:
    record = IdMap().get(batch_id)
    return record.status if record else None


def completed_deliveries(receiver: Receiver) -> list[Any]:
    return [d for d in receiver.deliveries if json.loads(d.body)["type"] == "batch.completed"]


def test_a_batch_nobody_polls_completes_in_the_store_and_its_owner_hears_once(
    local_gateway: LocalGateway, watching: None, bus_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    owner, stranger = generate_key(local_gateway), generate_key(local_gateway)
    client = sdk(local_gateway, owner.key)
    with webhook_receiver() as receiver, webhook_receiver() as bystander:
        endpoint = client.webhooks.create(
            url=receiver.url, name="mine", event_types=["batch.completed", "batch.in_progress"]
        )
        sdk(local_gateway, stranger.key).webhooks.create(
            url=bystander.url, name="theirs", event_types=["batch.completed", "batch.in_progress"]
        )
        batch = client.batches.create(
            input_file_id=upload_input(client).id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        wait_until(lambda: stored_status(batch.id) == "completed")  # no client call asked
        wait_until(lambda: len(completed_deliveries(receiver)) >= 1, timeout=10)
        passes = local_gateway.watcher.passes if local_gateway.watcher else 0
        wait_until(lambda: local_gateway.watcher is not None and local_gateway.watcher.passes >= passes + 3)
        (delivery,) = completed_deliveries(receiver)  # exactly one, however many passes ran
        event = openai.OpenAI(api_key="x", webhook_secret=endpoint.signing_secret).webhooks.unwrap(
            delivery.body, delivery.headers
        )
        assert (event.type, event.data.id) == ("batch.completed", batch.id)
        assert delivery.headers["webhook-id"] == event.id
        assert bystander.deliveries == []  # another key's endpoint hears nothing of this batch
        wait_until(lambda: any(e["detail"]["batch"]["id"] == batch.id for e in bus_queue()), timeout=10)
    (on_bus,) = [e for e in bus_queue() if e["detail"]["batch"]["id"] == batch.id]
    assert on_bus["detail-type"] == "batch.completed" and on_bus["source"] == resources.EVENT_SOURCE
    assert on_bus["detail"]["owner"] == owner.key_id
    assert on_bus["detail"]["provider"] == "openai"
    assert on_bus["detail"]["batch"]["status"] == "completed"
    assert on_bus["detail"]["event_id"] == event.id
    assert client.batches.retrieve(batch.id).status == "completed"  # and the client reads it so


def test_a_change_a_client_records_is_not_announced_again_by_the_watcher(
    local_gateway: LocalGateway, watching: None
) -> None:
    owner = generate_key(local_gateway)
    client = sdk(local_gateway, owner.key)
    with webhook_receiver() as receiver:
        client.webhooks.create(url=receiver.url, name="mine", event_types=["batch.completed"])
        batch = client.batches.create(
            input_file_id=upload_input(client).id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        wait_until(lambda: client.batches.retrieve(batch.id).status == "completed")
        wait_until(lambda: len(completed_deliveries(receiver)) >= 1, timeout=10)
        passes = local_gateway.watcher.passes if local_gateway.watcher else 0
        wait_until(lambda: local_gateway.watcher is not None and local_gateway.watcher.passes >= passes + 3)
        assert len(completed_deliveries(receiver)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",  # loopback over http: taken under make serve only
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
    ],
)
def test_in_the_aws_configuration_a_private_endpoint_is_refused(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """The functions as deployed (no loopback allowance): the same request the local server
    takes for loopback is a 400 naming `url`."""
    from gateway.runtime.settings import reset_settings

    client = sdk(local_gateway, generate_key(local_gateway).key)
    monkeypatch.setenv(resources.ENV_WEBHOOKS_ALLOW_LOOPBACK, "false")
    reset_settings()
    try:
        with pytest.raises(openai.BadRequestError) as refused:
            client.webhooks.create(url=url, name="private", event_types=["batch.completed"])
    finally:
        monkeypatch.undo()
        reset_settings()
    assert refused.value.body["param"] == "url"  # type: ignore[index]
