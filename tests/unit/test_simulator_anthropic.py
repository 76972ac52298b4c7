"""The simulator's Anthropic form: Message Batches with Anthropic's shapes, progressing along the
simulator's clock, which these tests step (no waiting for a timed state)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devserver.simulator import Simulator, SimulatorConfig, SteppedClock
from devserver.simulator.anthropic_messages import MessageError, message_for

KEY = "sim-anthropic-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
PHASE = 0.5


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def api(clock: SteppedClock) -> Iterator[httpx.Client]:
    with (
        Simulator(SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock)) as sim,
        httpx.Client(base_url=sim.anthropic_api_base, headers=HEADERS, timeout=10) as http,
    ):
        yield http


def request(custom_id: str, text: str = "Hello, world", **params: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


def ended(api: httpx.Client, clock: SteppedClock, batch_id: str) -> dict[str, Any]:
    """The batch after the clock has passed its two phases."""
    clock.step(2 * PHASE)
    batch = api.get(f"/v1/messages/batches/{batch_id}").json()
    assert batch["processing_status"] == "ended"
    return dict(batch)


def test_a_batch_runs_and_its_results_are_jsonl(api: httpx.Client, clock: SteppedClock) -> None:
    created = api.post("/v1/messages/batches", json={"requests": [request("a"), request("b", max_tokens=0)]})
    assert created.status_code == 200
    batch = created.json()
    assert batch["type"] == "message_batch" and batch["id"].startswith("msgbatch_")
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    assert batch["request_counts"] == {
        "processing": 2,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch["created_at"].endswith("Z") and batch["expires_at"] > batch["created_at"]
    early = api.get(f"/v1/messages/batches/{batch['id']}/results")
    assert early.status_code == 400 and early.json()["type"] == "error"
    done = ended(api, clock, batch["id"])
    assert done["request_counts"]["succeeded"] == 1 and done["request_counts"]["errored"] == 1
    assert done["results_url"].endswith(f"/v1/messages/batches/{batch['id']}/results")
    lines = [
        json.loads(line) for line in api.get(f"/v1/messages/batches/{batch['id']}/results").text.splitlines()
    ]
    results = {line["custom_id"]: line["result"] for line in lines}
    message = results["a"]["message"]
    assert (
        results["a"]["type"] == "succeeded"
        and message["type"] == "message"
        and message["role"] == "assistant"
    )
    assert message["stop_reason"] == "end_turn" and message["usage"]["input_tokens"] > 0
    assert results["b"] == {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            "request_id": results["b"]["error"]["request_id"],
        },
    }


def test_cancel_leaves_finished_requests_and_cancels_the_rest(api: httpx.Client, clock: SteppedClock) -> None:
    batch = api.post("/v1/messages/batches", json={"requests": [request(f"r{i}") for i in range(10)]}).json()
    clock.step(PHASE * 1.5)  # half way through the second phase
    cancelling = api.post(f"/v1/messages/batches/{batch['id']}/cancel").json()
    assert cancelling["processing_status"] == "canceling" and cancelling["cancel_initiated_at"]
    counts = ended(api, clock, batch["id"])["request_counts"]
    assert (counts["succeeded"], counts["canceled"]) == (5, 5)
    results = api.get(f"/v1/messages/batches/{batch['id']}/results").text.splitlines()
    assert sum(json.loads(line)["result"]["type"] == "canceled" for line in results) == counts["canceled"]


def test_requests_the_real_api_refuses_are_errored_results(api: httpx.Client, clock: SteppedClock) -> None:
    # Anthropic checks each request's params while the batch runs: the create takes them.
    tool_turns = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "fn.w:0", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "fn.w:0", "content": "15"}]},
    ]
    requests = [
        request("stop", stop_sequences=["\n"]),
        request("sampling", temperature=0.5, top_p=0.9),  # claude-sonnet-4-5 takes one of them
        request("tool", messages=tool_turns),
        request("empty", messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        request("ok", temperature=0.5, stop_sequences=["END"]),
    ]
    batch = api.post("/v1/messages/batches", json={"requests": requests}).json()
    assert ended(api, clock, batch["id"])["request_counts"]["errored"] == 4
    lines = api.get(f"/v1/messages/batches/{batch['id']}/results").text.splitlines()
    results = {line["custom_id"]: line["result"] for line in map(json.loads, lines)}
    assert results.pop("ok")["type"] == "succeeded"
    messages = {name: result["error"]["error"]["message"] for name, result in results.items()}
    assert "stop_sequences.0" in messages["stop"]
    assert messages["sampling"].startswith("`temperature` and `top_p` cannot both be specified")
    assert messages["tool"].startswith("messages.1.content.0.id: String should match pattern")
    assert messages["empty"].startswith("messages.0.content.0: text content blocks")


def test_list_pages_newest_first(api: httpx.Client) -> None:
    ids = [api.post("/v1/messages/batches", json={"requests": [request("x")]}).json()["id"] for _ in range(3)]
    page = api.get("/v1/messages/batches", params={"limit": 2}).json()
    assert [b["id"] for b in page["data"]] == ids[:0:-1] and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[2], ids[1])
    rest = api.get("/v1/messages/batches", params={"limit": 2, "after_id": page["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False


def test_errors_have_anthropics_shape(api: httpx.Client) -> None:
    wrong_key = api.get("/v1/messages/batches", headers={"x-api-key": "nope"})
    assert wrong_key.status_code == 401
    assert wrong_key.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    no_version = httpx.get(str(api.base_url).rstrip("/") + "/v1/messages/batches", headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    bad_id = api.post("/v1/messages/batches", json={"requests": [request("not ok!")]})
    assert bad_id.status_code == 400 and "custom_id" in bad_id.json()["error"]["message"]
    duplicate = api.post("/v1/messages/batches", json={"requests": [request("d"), request("d")]})
    assert duplicate.status_code == 400
    missing = api.get("/v1/messages/batches/msgbatch_nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_the_messages_responder_checks_and_answers_like_the_api() -> None:
    message = message_for(
        {"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "a long prompt"}]}
    )
    assert message["stop_reason"] == "max_tokens" and message["usage"]["output_tokens"] <= 3
    tool = message_for(
        {
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},
        }
    )
    assert tool["stop_reason"] == "tool_use" and tool["content"][0]["name"] == "get_weather"
    with pytest.raises(MessageError) as raised:
        message_for({"model": "sim-fail", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})
    assert raised.value.type == "not_found_error"
