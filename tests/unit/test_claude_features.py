"""OpenAI's `reasoning_effort` and `response_format` json_schema <-> Claude's thinking, effort and
structured outputs, per model, in both directions.

The Claude sides are the documented examples: extended thinking's `{"type": "enabled",
"budget_tokens": 10000}` with `max_tokens` 16000 and its response of a thinking block then a text
block (platform.claude.com/docs/en/build-with-claude/extended-thinking), adaptive thinking with
`output_config.effort` (docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-
thinking.html), and structured outputs' contact schema with `additionalProperties: false`
(platform.claude.com/docs/en/build-with-claude/structured-outputs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.providers.anthropic.claude_features import ClaudeModel, claude_model
from gateway.providers.anthropic.messages import TranslationError, chat_completion, messages_request
from gateway.providers.bedrock.records import model_input

HELLO = [{"role": "user", "content": "Are there an infinite number of prime numbers such that n mod 4 == 3?"}]
CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["Free", "Pro", "Enterprise"]},
    },
    "required": ["name", "email", "plan"],
    "additionalProperties": False,
}


def request(model: str, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", HELLO)
    return messages_request({"model": model, **body}, default_max_tokens=1024)


def refused(model: str, field: str, **body: Any) -> str:
    with pytest.raises(TranslationError) as raised:
        request(model, **body)
    assert raised.value.field == field, raised.value
    return raised.value.message


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "contact", "strict": True, "schema": schema}}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-3-7-sonnet-20250219", ClaudeModel("sonnet", (3, 7))),
        ("claude-3-5-haiku-20241022", ClaudeModel("haiku", (3, 5))),
        ("claude-3-opus-20240229", ClaudeModel("opus", (3, 0))),
        ("claude-sonnet-4-5-20250929", ClaudeModel("sonnet", (4, 5))),
        ("us.anthropic.claude-opus-4-6-v1", ClaudeModel("opus", (4, 6))),
        ("anthropic.claude-opus-4-20250514-v1:0", ClaudeModel("opus", (4, 0))),
        ("claude-fable-5-1", ClaudeModel("fable", (5, 1))),
        ("anthropic.claude-mythos-preview", ClaudeModel("mythos", (4, 7), preview=True)),
        ("gpt-4o", None),
    ],
)
def test_model_names_and_bedrock_ids_name_a_claude_version(model: str, expected: ClaudeModel | None) -> None:
    assert claude_model(model) == expected


# reasoning_effort -> thinking --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192), ("max", 16384)],
)
def test_a_model_that_thinks_with_a_budget_gets_the_levels_budget(effort: str, budget: int) -> None:
    params = request("claude-sonnet-4-5-20250929", reasoning_effort=effort, max_completion_tokens=32000)
    assert params["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert params["max_tokens"] == 32000  # the line's own limit is kept: it counts thinking too
    assert "output_config" not in params


def test_without_a_limit_of_its_own_the_default_is_raised_by_the_budget() -> None:
    params = request("claude-3-7-sonnet-20250219", reasoning_effort="high")
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert params["max_tokens"] == 1024 + 4096


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
def test_a_limit_that_leaves_no_room_above_the_budget_is_refused_naming_it(field: str) -> None:
    message = refused("claude-haiku-4-5", f"body.{field}", reasoning_effort="medium", **{field: 2048})
    assert "2048" in message and "reasoning_effort" in message
    assert request("claude-haiku-4-5", reasoning_effort="medium", **{field: 2049})["max_tokens"] == 2049


@pytest.mark.parametrize(
    ("model", "effort", "level"),
    [
        ("claude-opus-4-6", "minimal", "low"),
        ("claude-sonnet-4-6", "medium", "medium"),
        ("claude-opus-4-6", "max", "max"),
        ("claude-opus-4-7", "xhigh", "xhigh"),
        ("claude-opus-5", "high", "high"),
        ("claude-fable-5", "low", "low"),
    ],
)
def test_a_model_with_adaptive_thinking_gets_the_effort_level(model: str, effort: str, level: str) -> None:
    params = request(model, reasoning_effort=effort, max_completion_tokens=500)
    assert params["thinking"]["type"] == "adaptive"
    assert params["output_config"] == {"effort": level}
    assert params["max_tokens"] == 500  # no budget to fit: effort spends within the limit


@pytest.mark.parametrize(
    ("model", "display"),
    [
        ("claude-opus-4-6", None),
        ("claude-sonnet-4-6", None),
        ("claude-opus-4-7", "summarized"),
        ("claude-fable-5", "summarized"),
    ],
)
def test_thinking_text_is_asked_for_where_the_model_omits_it_by_default(
    model: str, display: str | None
) -> None:
    thinking = request(model, reasoning_effort="low")["thinking"]
    assert thinking.get("display") == display


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-sonnet-4-6", "claude-mythos-preview"])
def test_xhigh_is_refused_where_the_model_has_no_such_level(model: str) -> None:
    assert "'xhigh'" in refused(model, "body.reasoning_effort", reasoning_effort="xhigh")


@pytest.mark.parametrize(
    "model",
    ["claude-3-5-haiku-20241022", "claude-3-5-sonnet-20241022", "claude-3-haiku-20240307", "my-alias"],
)
def test_a_model_that_does_not_think_is_refused(model: str) -> None:
    assert "does not think" in refused(model, "body.reasoning_effort", reasoning_effort="low")


def test_none_asks_for_no_thinking_and_an_unknown_level_is_refused() -> None:
    assert "thinking" not in request("claude-3-5-haiku-20241022", reasoning_effort="none")
    assert "thinking" not in request("claude-opus-4-6", reasoning_effort=None)
    refused("claude-opus-4-6", "body.reasoning_effort", reasoning_effort="extreme")


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("body.temperature", {"temperature": 0.2}),
        ("body.top_p", {"top_p": 0.5}),
        ("body.tool_choice", {"tool_choice": "required"}),
        ("body.tool_choice", {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
        ("body.messages", {"messages": [*HELLO, {"role": "assistant", "content": "Yes, because"}]}),
    ],
)
@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-opus-4-6"])
def test_what_claude_refuses_with_thinking_is_refused_naming_the_field(
    model: str, field: str, body: dict[str, Any]
) -> None:
    if "tool_choice" in body:
        body["tools"] = [{"type": "function", "function": {"name": "f"}}]
    refused(model, field, reasoning_effort="low", max_completion_tokens=4000, **body)
    request(model, max_completion_tokens=4000, **body)  # the same line without thinking runs


def test_answering_a_tool_call_with_thinking_is_refused_as_the_history_has_no_thinking_block() -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turns = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
    ]
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert "tool call" in refused(
        "claude-opus-4-6", "body.messages", messages=turns, tools=tools, reasoning_effort="low"
    )
    request("claude-opus-4-6", messages=turns, tools=tools)  # without thinking it runs
    later = [*turns, {"role": "assistant", "content": "It is 42."}, {"role": "user", "content": "Thanks!"}]
    assert request("claude-opus-4-6", messages=later, tools=tools, reasoning_effort="low")["thinking"]


def test_neutral_sampling_and_tool_choice_pass_with_thinking() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    params = request(
        "claude-sonnet-4-5",
        reasoning_effort="low",
        temperature=1,
        top_p=0.95,
        tools=tools,
        tool_choice="auto",
    )
    assert "temperature" not in params and params["top_p"] == 0.95
    assert params["tool_choice"] == {"type": "auto"}


def test_bedrocks_record_thinks_as_the_bedrock_model_takes_it() -> None:
    body = {"model": "opus", "messages": HELLO, "reasoning_effort": "high"}
    adaptive = model_input(body, default_max_tokens=1000, model_id="global.anthropic.claude-opus-4-6-v1")
    assert adaptive["anthropic_version"] == "bedrock-2023-05-31"
    assert (adaptive["thinking"], adaptive["output_config"]) == ({"type": "adaptive"}, {"effort": "high"})
    budget = model_input(body, default_max_tokens=1000, model_id="anthropic.claude-sonnet-4-20250514-v1:0")
    assert budget["thinking"] == {"type": "enabled", "budget_tokens": 4096} and budget["max_tokens"] == 5096
    with pytest.raises(TranslationError) as raised:
        model_input(body, default_max_tokens=1000, model_id="anthropic.claude-3-5-haiku-20241022-v1:0")
    assert raised.value.field == "body.reasoning_effort"


# thinking -> the chat completion ----------------------------------------------------------------
DOCUMENTED_THINKING_MESSAGE = {
    "id": "msg_01ThinkingExample",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {
            "type": "thinking",
            "thinking": "Let me analyze this step by step...",
            "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL",
        },
        {
            "type": "redacted_thinking",
            "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP...",
        },
        {"type": "text", "text": "Based on my analysis, yes: there are infinitely many such primes."},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 30, "output_tokens": 420},
}


def test_thinking_blocks_become_reasoning_content_and_the_answer_is_kept() -> None:
    completion = chat_completion(DOCUMENTED_THINKING_MESSAGE, created=0)
    message = completion["choices"][0]["message"]
    assert message["content"] == "Based on my analysis, yes: there are infinitely many such primes."
    assert message["reasoning_content"] == "Let me analyze this step by step..."
    assert completion["usage"]["completion_tokens"] == 420  # thinking counted, as OpenAI counts reasoning
    assert "completion_tokens_details" not in completion["usage"]  # Anthropic does not split them


def test_adaptive_thinking_with_its_text_omitted_adds_no_reasoning_content() -> None:
    content = [{"type": "thinking", "thinking": "", "signature": "sig"}, {"type": "text", "text": "42"}]
    message = chat_completion({**DOCUMENTED_THINKING_MESSAGE, "content": content}, created=0)
    assert message["choices"][0]["message"] == {"role": "assistant", "content": "42", "refusal": None}


# response_format json_schema -> output_config.format ----------------------------------------------
@pytest.mark.parametrize(
    "model",
    [
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-5",
        "claude-opus-4-5-20251101",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-mythos-preview",
    ],
)
def test_a_json_schema_becomes_output_config_format_on_the_models_that_take_it(model: str) -> None:
    params = request(model, response_format=json_schema(CONTACT_SCHEMA))
    assert params["output_config"] == {"format": {"type": "json_schema", "schema": CONTACT_SCHEMA}}


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-3-7-sonnet"]
)
def test_a_json_schema_is_refused_where_the_model_has_no_structured_outputs(model: str) -> None:
    assert "structured outputs" in refused(
        model, "body.response_format", response_format=json_schema(CONTACT_SCHEMA)
    )


def test_bedrock_takes_the_json_schema_for_its_claude_4_5_models_only() -> None:
    body = {"model": "m", "messages": HELLO, "response_format": json_schema(CONTACT_SCHEMA)}
    record = model_input(body, default_max_tokens=100, model_id="us.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert record["output_config"] == {"format": {"type": "json_schema", "schema": CONTACT_SCHEMA}}
    with pytest.raises(TranslationError) as raised:
        model_input(body, default_max_tokens=100, model_id="anthropic.claude-3-5-haiku-20241022-v1:0")
    assert raised.value.field == "body.response_format"


def test_effort_and_format_share_output_config() -> None:
    params = request("claude-opus-4-7", reasoning_effort="low", response_format=json_schema(CONTACT_SCHEMA))
    assert params["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": CONTACT_SCHEMA},
    }


def test_objects_without_additional_properties_are_closed_as_claude_requires() -> None:
    loose = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}
        },
        "$defs": {"tag": {"type": "object", "properties": {}}},
        "anyOf": [{"type": "object"}, {"type": "null"}],
    }
    schema = request("claude-sonnet-4-5", response_format=json_schema(loose))["output_config"]["format"][
        "schema"
    ]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["items"]["items"]["additionalProperties"] is False
    assert schema["$defs"]["tag"]["additionalProperties"] is False
    assert (
        schema["anyOf"][0]["additionalProperties"] is False
        and "additionalProperties" not in schema["anyOf"][1]
    )
    assert "additionalProperties" not in loose  # the line's own body is not changed


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "object", "additionalProperties": True}, ".additionalProperties"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, ".additionalProperties"),
        (
            {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}},
            ".properties.age.minimum",
        ),
        ({"type": "string", "maxLength": 5}, ".maxLength"),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2}, ".minItems"),
    ],
)
def test_what_structured_outputs_do_not_enforce_is_refused_naming_where(
    schema: dict[str, Any], where: str
) -> None:
    field = "body.response_format.json_schema.schema" + where
    refused("claude-sonnet-4-5", field, response_format=json_schema(schema))


def test_a_recursive_schema_is_refused_naming_the_definition() -> None:
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    }
    tree = {"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}}, "$defs": {"node": node}}
    refused(
        "claude-sonnet-4-5",
        "body.response_format.json_schema.schema.$defs.node",
        response_format=json_schema(tree),
    )
    pair = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/a"}},
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}},
    }
    refused(
        "claude-sonnet-4-5",
        "body.response_format.json_schema.schema.$defs.a",
        response_format=json_schema(pair),
    )
    itself = {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}}
    refused(
        "claude-sonnet-4-5", "body.response_format.json_schema.schema", response_format=json_schema(itself)
    )
    shared = {
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/address"}, "work": {"$ref": "#/$defs/address"}},
        "$defs": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    assert request("claude-sonnet-4-5", response_format=json_schema(shared))[
        "output_config"
    ]  # reused, not recursive


def test_json_object_is_refused_with_the_way_to_json() -> None:
    message = refused("claude-sonnet-4-5", "body.response_format", response_format={"type": "json_object"})
    assert "json_schema" in message and "JSON mode" in message


def test_structured_output_text_comes_back_as_the_content() -> None:
    answer = {"name": "John Smith", "email": "john@example.com", "plan": "Enterprise"}
    message = {**DOCUMENTED_THINKING_MESSAGE, "content": [{"type": "text", "text": json.dumps(answer)}]}
    assert json.loads(chat_completion(message, created=0)["choices"][0]["message"]["content"]) == answer
