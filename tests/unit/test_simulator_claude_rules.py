"""The simulator's Messages responder keeps the documented rules of thinking, effort and
structured outputs per Claude model (devserver/simulator/claude_rules.py), and answers as the
API does: a thinking block before the text, JSON that follows the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devserver.simulator.anthropic_messages import MessageError, message_for
from devserver.simulator.bedrock_models import respond

HELLO = [{"role": "user", "content": "Are there an infinite number of prime numbers such that n mod 4 == 3?"}]
CONTACT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["Free", "Pro", "Enterprise"]},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
    },
    "required": ["name", "email", "plan"],
    "additionalProperties": False,
    "$defs": {
        "tag": {"type": "object", "properties": {"k": {"type": "integer"}}, "additionalProperties": False}
    },
}


def params(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16000, "messages": HELLO, **extra}


def broken(model: str, **extra: Any) -> str:
    with pytest.raises(MessageError) as raised:
        message_for(params(model, **extra))
    assert raised.value.type == "invalid_request_error" and raised.value.status == 400
    return raised.value.message


def test_the_documented_thinking_request_answers_a_thinking_block_then_text() -> None:
    message = message_for(params("claude-sonnet-4-5", thinking={"type": "enabled", "budget_tokens": 10000}))
    thinking, text = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] and thinking["signature"]
    assert text["type"] == "text" and text["text"]
    plain = message_for(params("claude-sonnet-4-5"))
    assert message["usage"]["output_tokens"] > plain["usage"]["output_tokens"]  # thinking is billed output


@pytest.mark.parametrize(
    ("model", "thinking", "expected"),
    [
        ("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 1023}, "greater than or equal to 1024"),
        ("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 16000}, "`max_tokens` must be greater"),
        (
            "claude-3-5-haiku-20241022",
            {"type": "enabled", "budget_tokens": 2000},
            "does not support thinking",
        ),
        ("claude-opus-4-7", {"type": "enabled", "budget_tokens": 2000}, "thinking.type.adaptive"),
        ("claude-sonnet-4-5", {"type": "adaptive"}, "thinking.type.enabled"),
        ("claude-fable-5", {"type": "disabled"}, "disabled is not supported"),
        ("claude-opus-4-6", {"type": "sometimes"}, "Input tag"),
    ],
)
def test_thinking_the_model_does_not_take_is_refused(
    model: str, thinking: dict[str, Any], expected: str
) -> None:
    assert expected in broken(model, thinking=thinking)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"temperature": 0.5}, "`temperature` may only be set to 1"),
        ({"top_p": 0.9}, "`top_p` must be greater than or equal to 0.95"),
        ({"top_k": 5}, "`top_k` must be unset"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "any"}}, "forces tool use"),
        ({"messages": [*HELLO, {"role": "assistant", "content": "Yes"}]}, "Prefilling"),
    ],
)
@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 2000}, {"type": "adaptive"}])
def test_what_thinking_forbids_is_refused(
    extra: dict[str, Any], expected: str, thinking: dict[str, Any]
) -> None:
    assert expected in broken("claude-opus-4-6", thinking=thinking, **extra)
    message_for(params("claude-opus-4-6", **extra))  # the same request without thinking runs


def test_a_tool_result_with_thinking_needs_the_calls_thinking_block() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}
    turns = [*HELLO, {"role": "assistant", "content": [call]}, result]
    assert "must start with a thinking block" in broken(
        "claude-opus-4-6", messages=turns, thinking={"type": "adaptive"}
    )
    thought = {"type": "thinking", "thinking": "I need f.", "signature": "sig"}
    turns[1] = {"role": "assistant", "content": [thought, call]}
    message_for(params("claude-opus-4-6", messages=turns, thinking={"type": "adaptive"}))


@pytest.mark.parametrize(
    ("model", "display", "shown"),
    [
        ("claude-opus-4-6", None, True),
        ("claude-opus-4-7", None, False),
        ("claude-fable-5", None, False),
        ("claude-opus-4-7", "summarized", True),
        ("claude-opus-4-6", "omitted", False),
    ],
)
def test_thinking_text_is_omitted_by_default_from_opus_4_7(
    model: str, display: str | None, shown: bool
) -> None:
    thinking = {"type": "adaptive"} | ({"display": display} if display else {})
    message = message_for(params(model, thinking=thinking))
    assert bool(message["content"][0]["thinking"]) is shown and message["content"][0]["signature"]


def test_display_takes_summarized_or_omitted_on_claude_4_models() -> None:
    assert "thinking.display" in broken("claude-opus-4-7", thinking={"type": "adaptive", "display": "full"})
    budget = {"type": "enabled", "budget_tokens": 2000, "display": "summarized"}
    assert "thinking.display" in broken("claude-3-7-sonnet-20250219", thinking=budget)


def test_thinking_takes_temperature_1_and_top_p_from_095() -> None:
    for sampling in ({"temperature": 1}, {"top_p": 0.95}):  # Opus 4.6 takes one of them
        message_for(params("claude-opus-4-6", thinking={"type": "adaptive"}, **sampling))


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("claude-sonnet-4-5", "low", "does not support the effort parameter"),
        ("claude-opus-4-5-20251101", "max", "not supported by model"),
        ("claude-opus-4-6", "xhigh", "not supported by model"),
        ("claude-mythos-preview", "xhigh", "not supported by model"),
        ("claude-opus-4-7", "extreme", "Input should be"),
    ],
)
def test_effort_the_model_does_not_take_is_refused(model: str, effort: str, expected: str) -> None:
    assert expected in broken(model, output_config={"effort": effort})


@pytest.mark.parametrize(
    ("model", "effort"),
    [("claude-opus-4-5-20251101", "low"), ("claude-sonnet-4-6", "max"), ("claude-opus-4-7", "xhigh")],
)
def test_effort_the_model_takes_runs(model: str, effort: str) -> None:
    assert message_for(params(model, output_config={"effort": effort}))["stop_reason"] == "end_turn"


def test_a_json_schema_format_answers_json_that_follows_it() -> None:
    fmt = {"type": "json_schema", "schema": CONTACT}
    message = message_for(params("claude-haiku-4-5", output_config={"format": fmt}))
    answer = json.loads(message["content"][-1]["text"])
    assert answer == {"name": "simulated", "email": "sim@example.com", "plan": "Free", "tags": [{"k": 1}]}


@pytest.mark.parametrize(
    ("model", "schema", "expected"),
    [
        ("claude-sonnet-4-20250514", CONTACT, "structured outputs are not supported"),
        (
            "claude-sonnet-4-5",
            {"type": "object", "properties": {}},
            "'additionalProperties' must be explicitly",
        ),
        (
            "claude-sonnet-4-5",
            {**CONTACT, "properties": {"n": {"type": "integer", "minimum": 1}}},
            "'minimum'",
        ),
        ("claude-sonnet-4-5", {"type": "array", "items": {"type": "string"}, "minItems": 3}, "'minItems'"),
    ],
)
def test_a_format_the_model_or_schema_cannot_follow_is_refused(
    model: str, schema: dict[str, Any], expected: str
) -> None:
    assert expected in broken(model, output_config={"format": {"type": "json_schema", "schema": schema}})


def test_a_recursive_schema_is_refused() -> None:
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "additionalProperties": False,
    }
    tree = {**node, "$defs": {"node": node}}
    fmt = {"type": "json_schema", "schema": tree}
    assert "recursive" in broken("claude-sonnet-4-5", output_config={"format": fmt})
    message_for(
        params("claude-sonnet-4-5", output_config={"format": {"type": "json_schema", "schema": CONTACT}})
    )


def test_output_config_takes_no_other_keys() -> None:
    assert "Extra inputs" in broken("claude-opus-4-6", output_config={"verbosity": "low"})


def test_bedrock_records_keep_the_same_rules_for_the_jobs_model() -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": HELLO}
    kind, output = respond("global.anthropic.claude-opus-4-6-v1", {**body, "thinking": {"type": "adaptive"}})
    assert kind == "output" and output["content"][0]["type"] == "thinking"
    kind, error = respond(
        "anthropic.claude-3-5-haiku-20241022-v1:0", {**body, "output_config": {"effort": "low"}}
    )
    assert kind == "error" and error["errorCode"] == 400 and "effort" in error["errorMessage"]
