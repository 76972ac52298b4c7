"""The simulator's Anthropic form: per-batch caps, the processing-queue quota (429
`rate_limit_error`), the `sim-expire` / `sim-fail-<code>` directives as Anthropic's own results,
and the same through the gateway's adapter (QuotaRefused; OpenAI error lines with their codes).
Time is the SteppedClock's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway.providers.anthropic.client import AnthropicClient
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused

from devserver.simulator import Simulator, SteppedClock
from devserver.simulator.limits import SimulatorLimits
from tests.unit import stepped_simulator

KEY = "sim-anthropic-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
PHASE = 1.0
BATCHES = "/v1/messages/batches"

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


@pytest.fixture
def batch_phase() -> float:
    return PHASE


@pytest.fixture
def api(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.anthropic_api_base, headers=HEADERS, timeout=10) as http:
        yield http


def _requests(*custom_ids: str) -> dict[str, Any]:
    return {
        "requests": [
            {
                "custom_id": custom_id,
                "params": {
                    "model": "claude-sonnet-4-5",
                    "max_tokens": 256,
                    "messages": [{"role": "user", "content": "Hello"}],
                },
            }
            for custom_id in custom_ids
        ]
    }


def _results(api: httpx.Client, batch_id: str) -> dict[str, dict[str, Any]]:
    answer = api.get(f"{BATCHES}/{batch_id}/results")
    assert answer.status_code == 200
    lines = [json.loads(raw) for raw in answer.text.splitlines() if raw.strip()]
    return {line["custom_id"]: line["result"] for line in lines}


def test_a_batch_over_the_request_or_byte_cap_is_refused_as_anthropic_does(
    api: httpx.Client, sim: Simulator
) -> None:
    sim.set_limits(SimulatorLimits(max_requests=2))
    assert api.post(BATCHES, json=_requests("a", "b")).status_code == 200
    over = api.post(BATCHES, json=_requests("a", "b", "c"))
    assert over.status_code == 400
    assert over.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "requests: List should have at most 2 items"},
    }
    sim.set_limits(SimulatorLimits(max_bytes=100))
    large = api.post(BATCHES, json=_requests("a"))
    assert large.status_code == 413 and large.json()["error"]["type"] == "request_too_large"


def test_the_processing_queue_quota_answers_429_until_requests_are_processed(
    api: httpx.Client, sim: Simulator, clock: SteppedClock
) -> None:
    sim.set_limits(SimulatorLimits(queued_requests=4))
    first = api.post(BATCHES, json=_requests("a1", "a2")).json()["id"]
    assert api.post(BATCHES, json=_requests("b1", "b2")).status_code == 200
    refused = api.post(BATCHES, json=_requests("c1"))
    assert refused.status_code == 429 and refused.headers["retry-after"]
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "limit of 4 message batch requests in the processing queue" in body["error"]["message"]

    clock.step(1.5 * PHASE)  # half of each batch's requests processed: 2 still queued
    assert api.post(BATCHES, json=_requests("c1")).status_code == 200  # 3 queued now
    assert api.post(BATCHES, json=_requests("d1", "d2")).status_code == 429
    clock.step(PHASE)  # the first two batches have ended
    assert api.get(f"{BATCHES}/{first}").json()["processing_status"] == "ended"
    assert api.post(BATCHES, json=_requests("d1", "d2")).status_code == 200


def test_directives_give_expired_and_errored_results_on_the_first_attempt_only(
    api: httpx.Client, clock: SteppedClock
) -> None:
    ids = ("plain", "r-sim-expire", "r-sim-fail-rate_limit_exceeded", "r-sim-fail-server_error")
    first = api.post(BATCHES, json=_requests(*ids)).json()["id"]
    clock.step(2 * PHASE)
    ended = api.get(f"{BATCHES}/{first}").json()
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": 1,
        "errored": 2,
        "canceled": 0,
        "expired": 1,
    }
    results = _results(api, first)
    assert results["plain"]["type"] == "succeeded"
    assert results["r-sim-expire"] == {"type": "expired"}
    limited = results["r-sim-fail-rate_limit_exceeded"]
    assert limited["type"] == "errored" and limited["error"]["type"] == "error"
    assert limited["error"]["error"]["type"] == "rate_limit_error"
    assert results["r-sim-fail-server_error"]["error"]["error"]["type"] == "api_error"

    again = api.post(BATCHES, json=_requests(*ids)).json()["id"]
    clock.step(2 * PHASE)
    assert {result["type"] for result in _results(api, again).values()} == {"succeeded"}


# Through the gateway's adapter ---------------------------------------------------------------


def _adapter(sim: Simulator) -> AnthropicClient:
    deployment = ProviderDeployment(name="anthropic", type="anthropic", api_base=sim.anthropic_api_base)
    return AnthropicClient(deployment, lambda refresh: KEY, timeout=5)


def _create(client: AnthropicClient, gateway_id: str, *custom_ids: str) -> dict[str, Any]:
    content = b"".join(
        json.dumps(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
            }
        ).encode()
        + b"\n"
        for custom_id in custom_ids
    )
    uploaded = client.create_file(filename="in.jsonl", content=content, purpose="batch")
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    return client.create_batch(body, gateway_id=gateway_id)


def test_the_adapter_raises_quota_refused_for_the_queue_and_translates_directed_results(
    sim: Simulator, clock: SteppedClock, kept_bucket: None
) -> None:
    client = _adapter(sim)
    sim.set_limits(SimulatorLimits(queued_requests=3))
    ids = ("ok", "e-sim-expire", "f-sim-fail-rate_limit_exceeded")
    batch = _create(client, "batch_first", *ids)
    with pytest.raises(QuotaRefused) as refused:
        _create(client, "batch_second", "another")
    error = refused.value
    assert error.status_code == 429 and error.error_type == "rate_limit_error"
    assert "Retry-After" in error.headers
    assert not client.quota_refused(batch)  # Anthropic refuses at create, never after

    clock.step(2 * PHASE)
    ended = client.retrieve_batch(batch["id"])
    assert ended["status"] == "completed"
    assert ended["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
    lines = client.file_content(ended["error_file_id"]).decode().splitlines()
    errors = {line["custom_id"]: line for line in map(json.loads, lines)}
    assert errors["e-sim-expire"]["error"]["code"] == "batch_expired"
    failed = errors["f-sim-fail-rate_limit_exceeded"]["response"]
    assert failed["status_code"] == 429 and failed["body"]["error"]["code"] == "rate_limit_exceeded"
    # the queue has room again, and a retry of the lines runs them
    retried = _create(client, "batch_retry", "e-sim-expire", "f-sim-fail-rate_limit_exceeded")
    clock.step(2 * PHASE)
    done = client.retrieve_batch(retried["id"])
    assert (
        done["request_counts"] == {"total": 2, "completed": 2, "failed": 0} and done["error_file_id"] is None
    )
