"""What only a deployment shows, run by `make localstack-test` against the stacks in LocalStack.

LocalStack stores EventBridge Scheduler's schedule but never fires it: the watcher function is
invoked directly, once, as the schedule would. The batch is an Anthropic one on the simulator's
stepped clock, so it ends when the test says, and nobody polls it before the watcher does.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from handlers.console import CONTENT_SECURITY_POLICY

from devserver.simulator import SteppedClock
from tests.e2e.conftest import Target
from tests.integration.receiver import webhook_receiver
from tests.localstack import simulator_plugin

pytestmark = pytest.mark.skipif(
    not os.environ.get("LOCALSTACK_ENDPOINT"), reason="runs in make localstack-test (LOCALSTACK_ENDPOINT)"
)

WATCHER_HANDLER = "handlers.batch_watcher.handler"
# How long LocalStack's SQS poller may take to hand the webhook message to the consumer function.
DELIVERY_SECONDS = 60


def lambda_client() -> Any:
    return boto3.client("lambda", endpoint_url=os.environ["LOCALSTACK_ENDPOINT"])


def test_the_console_is_served_with_its_content_security_policy(target: Target) -> None:
    """The console's function, its route (/console beside /console/{asset}) and files, deployed."""
    page = httpx.get(f"{target.url}/console", timeout=60)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<html" in page.text.lower() and "console/" in page.text
    script = httpx.get(f"{target.url}/console/app.js", timeout=60)
    assert script.status_code == 200, script.text
    assert script.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(f"{target.url}/console/no-such-file.js", timeout=60)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"


def function_named_by_handler(handler: str) -> str:
    """The deployed function whose handler this is (its name is the CDK's, not ours)."""
    names = [
        function["FunctionName"]
        for page in lambda_client().get_paginator("list_functions").paginate()
        for function in page["Functions"]
        if function.get("Handler") == handler
    ]
    assert len(names) == 1, f"functions with handler {handler}: {names}"
    return names[0]


@pytest.fixture
def stepped_anthropic() -> Iterator[tuple[SteppedClock, float]]:
    simulator = simulator_plugin.running
    assert simulator is not None, "the simulator plugin did not start the simulator"
    batches = simulator.state.anthropic
    # Ahead of the gateway's clock, as in tests/integration/test_anthropic_batches.py.
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, batches.clock = batches.clock, clock
    try:
        yield clock, simulator.config.batch_phase_seconds
    finally:
        batches.clock = saved


def batch_lines(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"watched-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]},
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


def test_the_watcher_finishes_a_batch_nobody_polled_and_its_webhook_arrives_through_sqs(
    target: Target, stepped_anthropic: tuple[SteppedClock, float]
) -> None:
    plain = openai.OpenAI(base_url=f"{target.url}/v1", api_key=target.api_key, max_retries=2, timeout=60)
    anthropic = openai.OpenAI(
        base_url=f"{target.url}/anthropic/v1", api_key=target.api_key, max_retries=2, timeout=60
    )
    # Where the functions reach this machine: loopback, or Docker's bridge (run.py's Run.host).
    with webhook_receiver(host=os.environ.get("LOCALSTACK_TEST_HOST") or "127.0.0.1") as receiver:
        arrived = threading.Event()
        endpoint = plain.webhooks.create(url=receiver.url, name="localstack", event_types=["batch.completed"])
        try:
            file = anthropic.files.create(file=("watched.jsonl", io.BytesIO(batch_lines(2))), purpose="batch")
            batch = anthropic.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            clock, phase = stepped_anthropic
            clock.step(2 * phase)  # the provider has ended the batch; the gateway does not know yet

            answer = lambda_client().invoke(
                FunctionName=function_named_by_handler(WATCHER_HANDLER), Payload=b"{}"
            )
            assert "FunctionError" not in answer, answer["Payload"].read()
            summary = json.loads(answer["Payload"].read())
            assert summary, "the watcher pass reported nothing"

            deadline = time.monotonic() + DELIVERY_SECONDS
            while not arrived.is_set() and time.monotonic() < deadline:
                if any(json.loads(d.body).get("data", {}).get("id") == batch.id for d in receiver.deliveries):
                    arrived.set()
                else:
                    arrived.wait(0.5)  # LocalStack's SQS poller runs on its own schedule
            assert arrived.is_set(), f"no batch.completed webhook for {batch.id} in {DELIVERY_SECONDS}s"
            delivery = next(d for d in receiver.deliveries if json.loads(d.body)["data"]["id"] == batch.id)
            event = openai.OpenAI(api_key="unused", webhook_secret=endpoint.signing_secret).webhooks.unwrap(
                delivery.body, delivery.headers
            )
            assert event.type == "batch.completed"

            finished = plain.batches.retrieve(batch.id)
            assert finished.status == "completed", finished
            assert finished.output_file_id is not None
            lines = plain.files.content(finished.output_file_id).text.splitlines()
            assert sorted(json.loads(line)["custom_id"] for line in lines) == ["watched-0", "watched-1"]
        finally:
            plain.webhooks.delete(endpoint.id)
