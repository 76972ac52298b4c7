"""`reasoning_effort` and `response_format` json_schema on Claude, through the unchanged openai SDK
on `<gateway>/anthropic/v1` and `<gateway>/bedrock/v1`: upload, create, the simulator's clock
stepped, download (the JSON answer, the thinking as `reasoning_content`, the custom_ids back), a
cancel midway, and the lines a model cannot run failed with their numbers at create."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway.runtime.settings import get_settings

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import client, error_of

CONTACT = {  # no additionalProperties: the gateway closes the object, as Claude requires
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["Free", "Pro", "Enterprise"]},
    },
    "required": ["name", "email", "plan"],
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "contact", "strict": True, "schema": CONTACT},
}


def line(
    custom_id: str, model: str, text: str = "Extract: Jane Doe, jane@co.com, Pro.", **body: Any
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


def upload(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    content = "".join(json.dumps(one) + "\n" for one in lines).encode()
    return sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch").id


def create(sdk: openai.OpenAI, file_id: str) -> openai.types.Batch:
    return sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")


def results(sdk: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    lines = [json.loads(raw) for raw in sdk.files.content(file_id).text.splitlines()]
    return {one["custom_id"]: one["response"]["body"] for one in lines}


def sent_params(gateway: LocalGateway, before: set[str]) -> dict[str, dict[str, Any]]:
    """The params of each request of the Anthropic batch made since `before`, by position."""
    assert gateway.simulator is not None
    state = gateway.simulator.state.anthropic
    with state.lock:
        [new] = [batch for key, batch in state.batches.items() if key not in before]
    return {str(index): request["params"] for index, request in enumerate(new.requests)}


def anthropic_batch_ids(gateway: LocalGateway) -> set[str]:
    assert gateway.simulator is not None
    with gateway.simulator.state.anthropic.lock:
        return set(gateway.simulator.state.anthropic.batches)


@pytest.fixture
def anthropic_clock(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Anthropic batches on a clock the test steps (a little ahead of the
    gateway's, a skew it tolerates), and their phase."""
    assert local_gateway.simulator is not None
    batches = local_gateway.simulator.state.anthropic
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, batches.clock = batches.clock, clock
    try:
        yield clock, local_gateway.simulator.config.batch_phase_seconds
    finally:
        batches.clock = saved


@pytest.fixture
def bedrock_clock(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Bedrock jobs on a clock the test steps, with a phase of 2 s."""
    assert local_gateway.simulator is not None
    config, jobs = local_gateway.simulator.config, local_gateway.simulator.bedrock_jobs
    clock = SteppedClock(float(int(time.time())))
    saved = config.batch_phase_seconds, jobs.clock
    config.batch_phase_seconds, jobs.clock = 2.0, clock
    try:
        yield clock, config.batch_phase_seconds
    finally:
        config.batch_phase_seconds, jobs.clock = saved


def test_adaptive_thinking_and_a_json_schema_run_on_anthropic(
    local_gateway: LocalGateway, anthropic_clock: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    model = "claude-opus-4-6"
    lines = [
        line("both/1", model, reasoning_effort="high", response_format=RESPONSE_FORMAT),
        line("think only", model, "Is 7 prime?", reasoning_effort="minimal", max_completion_tokens=300),
        line("json-only", model, response_format=RESPONSE_FORMAT),
    ]
    before = anthropic_batch_ids(local_gateway)
    created = create(sdk, upload(sdk, lines))
    assert created.status == "in_progress", created
    params = sent_params(local_gateway, before)
    closed = {**CONTACT, "additionalProperties": False}
    assert params["0"]["thinking"] == {"type": "adaptive"}
    assert params["0"]["output_config"] == {
        "effort": "high",
        "format": {"type": "json_schema", "schema": closed},
    }
    assert (params["1"]["output_config"], params["1"]["max_tokens"]) == ({"effort": "low"}, 300)
    assert "thinking" not in params["2"] and params["2"]["output_config"]["format"]["schema"] == closed
    clock, phase = anthropic_clock
    clock.step(2 * phase)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 0)
    bodies = results(sdk, done.output_file_id)
    assert sorted(bodies) == ["both/1", "json-only", "think only"]  # custom_ids round trip
    for custom_id in ("both/1", "json-only"):
        answer = json.loads(bodies[custom_id]["choices"][0]["message"]["content"])
        assert set(answer) == {"name", "email", "plan"} and answer["plan"] in ("Free", "Pro", "Enterprise")
    thinking = bodies["think only"]["choices"][0]["message"]
    assert (
        thinking["reasoning_content"].startswith("Simulated reasoning")
        and "Is 7 prime?" in thinking["content"]
    )
    assert "reasoning_content" not in bodies["json-only"]["choices"][0]["message"]
    assert (
        bodies["think only"]["usage"]["completion_tokens"]
        > bodies["json-only"]["usage"]["completion_tokens"]
        > 0
    )


def test_a_thinking_budget_raises_the_default_limit_on_anthropic(
    local_gateway: LocalGateway, anthropic_clock: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    before = anthropic_batch_ids(local_gateway)
    created = create(sdk, upload(sdk, [line("b-1", "claude-sonnet-4-5", reasoning_effort="medium")]))
    params = sent_params(local_gateway, before)["0"]
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    default = get_settings().providers["anthropic"].default_max_tokens
    assert params["max_tokens"] == default + 2048
    clock, phase = anthropic_clock
    clock.step(2 * phase)
    done = sdk.batches.retrieve(created.id)
    [body] = results(sdk, done.output_file_id).values()
    assert body["choices"][0]["message"]["reasoning_content"] and body["choices"][0]["message"]["content"]


def test_cancel_midway_keeps_the_thinking_answers_that_ran(
    local_gateway: LocalGateway, anthropic_clock: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    clock, phase = anthropic_clock
    lines = [line(f"c-{n}", "claude-opus-4-6", f"n {n}", reasoning_effort="low") for n in range(20)]
    created = create(sdk, upload(sdk, lines))
    clock.step(phase * 1.52)  # half way through the second phase: 10 of the 20 have run
    assert sdk.batches.cancel(created.id).status == "cancelling"
    clock.step(phase)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled" and done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        20,
        10,
        0,
    )
    bodies = results(sdk, done.output_file_id)
    assert len(bodies) == 10 and all(
        body["choices"][0]["message"]["reasoning_content"] for body in bodies.values()
    )


def test_lines_claude_cannot_run_fail_the_batch_with_their_numbers_on_anthropic(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    model = "claude-opus-4-6"
    lines = [
        line("ok", model, reasoning_effort="high"),
        line("xhigh", model, reasoning_effort="xhigh"),  # Opus 4.6 has no xhigh
        line("hot", model, reasoning_effort="low", temperature=0.3),
        line("json mode", model, response_format={"type": "json_object"}),
        line(
            "open",
            model,
            response_format={
                **RESPONSE_FORMAT,
                "json_schema": {"name": "o", "schema": {"type": "object", "additionalProperties": True}},
            },
        ),
    ]
    before = anthropic_batch_ids(local_gateway)
    batch = create(sdk, upload(sdk, lines))
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    found = {error.line: (error.code, error.message or "") for error in batch.errors.data}
    assert set(found) == {2, 3, 4, 5} and {code for code, _ in found.values()} == {"untranslatable_line"}
    assert found[2][1].startswith("body.reasoning_effort") and "'xhigh'" in found[2][1]
    assert found[3][1].startswith("body.temperature")
    assert found[4][1].startswith("body.response_format") and "JSON mode" in found[4][1]
    assert found[5][1].startswith("body.response_format.json_schema.schema.additionalProperties")
    assert anthropic_batch_ids(local_gateway) == before  # nothing reached Anthropic


def _bedrock_lines(model: str, count: int = 100, **body: Any) -> list[dict[str, Any]]:
    return [line(f"q/{n}", model, f"Contact {n}?", **body) for n in range(count)]


def test_thinking_and_a_json_schema_run_on_bedrock(
    local_gateway: LocalGateway, bedrock_clock: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="bedrock")
    lines = _bedrock_lines(
        "claude-haiku-4-5",
        reasoning_effort="low",
        max_completion_tokens=3000,
        response_format=RESPONSE_FORMAT,
    )
    lines[1]["body"] = {**lines[1]["body"], "model": "claude-haiku-4-5", "reasoning_effort": "none"}
    created = create(sdk, upload(sdk, lines))
    clock, phase = bedrock_clock
    clock.step(phase * 2.25)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (100, 0), done.error_file_id
    bodies = results(sdk, done.output_file_id)
    assert sorted(bodies) == sorted(f"q/{n}" for n in range(100))
    for custom_id, body in bodies.items():
        message = body["choices"][0]["message"]
        assert set(json.loads(message["content"])) == {"name", "email", "plan"}
        assert ("reasoning_content" in message) == (custom_id != "q/1")


def test_adaptive_thinking_with_effort_runs_on_bedrock(
    local_gateway: LocalGateway, bedrock_clock: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="bedrock")
    created = create(sdk, upload(sdk, _bedrock_lines("claude-opus-4-6", reasoning_effort="max")))
    clock, phase = bedrock_clock
    clock.step(phase * 2.25)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.completed == 100
    assert all(
        body["choices"][0]["message"]["reasoning_content"]
        for body in results(sdk, done.output_file_id).values()
    )


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        ("claude-sonnet-4", {"response_format": RESPONSE_FORMAT}, "body.response_format"),
        ("claude-3-5-haiku", {"reasoning_effort": "low"}, "body.reasoning_effort"),
        ("claude-sonnet-4", {"reasoning_effort": "high", "max_tokens": 4096}, "body.max_tokens"),
    ],
)
def test_lines_the_bedrock_model_cannot_run_are_refused_with_their_number(
    local_gateway: LocalGateway, model: str, body: dict[str, Any], field: str
) -> None:
    sdk = client(local_gateway, provider="bedrock")
    lines = _bedrock_lines(model)
    lines[6]["body"] = {**lines[6]["body"], **body}
    # Refused before Bedrock sees it: at upload, or at create as the failed batch's error for that line.
    try:
        file_id = upload(sdk, lines)
    except openai.BadRequestError as refused:
        assert f"line 7: {field}" in error_of(refused)["message"]
        return
    failed = create(sdk, file_id)
    assert failed.status == "failed" and failed.errors and failed.errors.data
    [error] = failed.errors.data
    assert error.line == 7 and (error.message or "").startswith(field)
