"""OpenAI chat completions <-> Anthropic Messages, field by field, in both directions.

The Anthropic sides are the documented examples of the Messages API reference (the "Hello,
Claude" turns, the get_weather tool, the example Message with its usage); the OpenAI sides are
those of the Chat Completions reference."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from gateway.providers.anthropic.messages import TranslationError, chat_completion, messages_request

MODEL = "claude-sonnet-4-5-20250929"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}
    },
    "required": ["location"],
}


def request(**body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "Hello, Claude"}])
    return messages_request({"model": MODEL, **body}, default_max_tokens=1024)


def refused(field: str, **body: Any) -> TranslationError:
    with pytest.raises(TranslationError) as raised:
        request(**body)
    assert raised.value.field == field, raised.value
    assert str(raised.value).startswith(field + ": ")
    return raised.value


# OpenAI -> Anthropic ---------------------------------------------------------------------------
def test_single_user_message() -> None:
    assert request() == {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }


def test_multiple_turns() -> None:
    turns = [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": "Hi, I'm Claude. How can I help you?"},
        {"role": "user", "content": "Can you explain LLMs in plain English?"},
    ]
    assert request(messages=turns)["messages"] == turns


def test_system_and_developer_messages_become_the_system_prompt() -> None:
    params = request(
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello, Claude"},
        ]
    )
    assert params["system"] == "You are a helpful assistant.\n\nAnswer in French."
    assert params["messages"] == [{"role": "user", "content": "Hello, Claude"}]


def test_consecutive_messages_of_one_role_are_one_turn() -> None:
    params = request(messages=[{"role": "user", "content": "One."}, {"role": "user", "content": "Two."}])
    assert params["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]}
    ]


def test_text_and_image_parts() -> None:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
        {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg", "detail": "low"}},
    ]
    assert request(messages=[{"role": "user", "content": content}])["messages"][0]["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/a.jpg"}},
    ]


def test_unsupported_image_and_part_types_name_the_part() -> None:
    bmp = [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]
    refused("body.messages[0].content[0].image_url.url", messages=[{"role": "user", "content": bmp}])
    audio = [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]
    refused("body.messages[0].content[0]", messages=[{"role": "user", "content": audio}])
    refused("body.messages[0].role", messages=[{"role": "function", "content": "x", "name": "f"}])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, 1024),  # the deployment's default: Anthropic requires max_tokens
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ],
)
def test_max_tokens(body: dict[str, Any], expected: int) -> None:
    assert request(**body)["max_tokens"] == expected


def test_sampling_fields() -> None:
    older = "claude-3-5-haiku-20241022"  # takes temperature and top_p together
    params = request(model=older, temperature=0.5, top_p=0.9, stop="\n\nHuman:")
    assert (params["temperature"], params["top_p"], params["stop_sequences"]) == (0.5, 0.9, ["\n\nHuman:"])
    assert request(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert request(top_p=0.9)["top_p"] == 0.9
    refused("body.temperature", temperature=1.5)  # OpenAI's range is 0-2, Anthropic's 0-1
    refused("body.max_tokens", max_tokens=0)


def test_whitespace_only_stop_sequences_are_dropped() -> None:
    # Anthropic refuses a stop sequence that is only whitespace; "\n" is common in OpenAI batches.
    assert "stop_sequences" not in request(stop=["\n"])
    assert "stop_sequences" not in request(stop=" \t\n")
    assert request(stop=["\n", "END", "\n\n", ""])["stop_sequences"] == ["END"]


@pytest.mark.parametrize(
    ("model", "both"),
    [
        ("claude-sonnet-4-5-20250929", False),
        ("claude-sonnet-4-5", False),
        ("claude-haiku-4-5", False),
        ("claude-opus-4-1-20250805", False),
        ("claude-opus-4-5", False),
        ("claude-sonnet-4-6", False),
        ("claude-sonnet-5", False),
        ("claude-opus-4-20250514", True),
        ("claude-sonnet-4-20250514", True),
        ("claude-3-7-sonnet-20250219", True),
        ("claude-3-5-haiku-latest", True),
    ],
)
def test_newer_claude_models_get_temperature_without_top_p(model: str, both: bool) -> None:
    params = request(model=model, temperature=0.2, top_p=0.9)
    assert params["temperature"] == 0.2
    assert ("top_p" in params) is both


def test_the_model_that_runs_decides_the_sampling_rule() -> None:
    body = {
        "model": "my-alias",
        "temperature": 0.2,
        "top_p": 0.9,
        "messages": [{"role": "user", "content": "x"}],
    }
    assert "top_p" in messages_request(body, default_max_tokens=10)
    bedrock_id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert "top_p" not in messages_request(body, default_max_tokens=10, model_id=bedrock_id)


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ]
    params = request(tools=tools, tool_choice="auto")
    assert params["tools"] == [
        {"name": "get_weather", "description": "Get the current weather", "input_schema": WEATHER_SCHEMA}
    ]
    assert params["tool_choice"] == {"type": "auto"}
    assert request(tools=tools, tool_choice="required")["tool_choice"] == {"type": "any"}
    assert request(tools=tools, tool_choice="none")["tool_choice"] == {"type": "none"}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert request(tools=tools, tool_choice=named)["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert request(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    refused("body.tools[0]", tools=[{"type": "custom", "custom": {"name": "x"}}])


def test_tool_calls_and_tool_results() -> None:
    messages = [
        {"role": "user", "content": "What's the weather like in San Francisco?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "San Francisco, CA"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
    ]
    assert request(messages=messages)["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"location": "San Francisco, CA"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "15 degrees",
                }
            ],
        },
    ]
    broken = [
        messages[0],
        {
            **messages[1],
            "tool_calls": [{**messages[1]["tool_calls"][0], "function": {"name": "f", "arguments": "{"}}],
        },
    ]  # type: ignore[dict-item]
    refused("body.messages[1].tool_calls[0].function.arguments", messages=broken)
    refused("body.messages[1].tool_call_id", messages=[messages[0], {"role": "tool", "content": "x"}])


def _tool_turns(call_id: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "15 degrees"},
    ]


def test_tool_call_ids_of_other_providers_are_mapped_to_anthropics_pattern_consistently() -> None:
    foreign = "functions.get_weather:0"  # e.g. Kimi's or another OpenAI-compatible provider's ids
    params = request(messages=_tool_turns(foreign))
    use_id = params["messages"][1]["content"][0]["id"]
    result_id = params["messages"][2]["content"][0]["tool_use_id"]
    assert use_id == result_id and use_id != foreign
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", use_id)
    assert use_id.startswith("functions_get_weather_0_")
    assert request(messages=_tool_turns(foreign))["messages"][1]["content"][0]["id"] == use_id  # stable
    # Two ids that sanitize alike stay apart; an id of the request that equals a mapped one too.
    other = "functions.get_weather/0"
    assert request(messages=_tool_turns(other))["messages"][1]["content"][0]["id"] != use_id
    both = _tool_turns(use_id) + _tool_turns(foreign)[1:]
    turns = request(messages=both)["messages"]
    assert turns[1]["content"][0]["id"] == use_id
    assert turns[3]["content"][0]["id"] not in (use_id, foreign)
    assert turns[3]["content"][0]["id"] == turns[4]["content"][0]["tool_use_id"]


def test_empty_text_blocks_are_dropped() -> None:
    parts = [{"type": "text", "text": ""}, {"type": "text", "text": "Hello"}, {"type": "text", "text": " "}]
    assert request(messages=[{"role": "user", "content": parts}])["messages"] == [
        {"role": "user", "content": "Hello"}
    ]
    turns = request(
        messages=[
            {"role": "system", "content": ""},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "", "tool_calls": _tool_turns("call_1")[1]["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_1", "content": ""},
        ]
    )
    assert "system" not in turns
    assert turns["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    ]
    assert turns["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1"}]


def test_a_message_left_without_content_is_refused() -> None:
    refused("body.messages[0].content", messages=[{"role": "user", "content": ""}])
    refused(
        "body.messages[0].content", messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]
    )
    refused(
        "body.messages[1].content",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}],
    )


def test_image_urls_are_refused_where_the_provider_takes_base64_only() -> None:
    url = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}, {"role": "user", "content": url}]}
    with pytest.raises(TranslationError) as raised:
        messages_request(body, default_max_tokens=10, image_urls=False)
    assert raised.value.field == "body.messages[1].content[0].image_url.url"
    assert "base64" in raised.value.message


def test_user_becomes_metadata_user_id() -> None:
    assert request(user="user-1234")["metadata"] == {"user_id": "user-1234"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logit_bias", {"50256": -100}),
        ("frequency_penalty", 0.5),
        ("presence_penalty", 1),
        ("n", 2),
        ("logprobs", True),
        ("seed", 7),
        ("response_format", {"type": "json_object"}),
        ("stream", True),
        ("modalities", ["text", "audio"]),
        ("no_such_field", 1),
    ],
)
def test_fields_without_an_anthropic_equivalent_name_the_field(field: str, value: Any) -> None:
    refused(f"body.{field}", **{field: value})


def test_a_json_schema_response_format_becomes_anthropics_output_config() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "place", "strict": True, "schema": schema},
    }
    assert request(response_format=response_format)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    refused(
        "body.response_format.json_schema.schema", response_format={"type": "json_schema", "json_schema": {}}
    )
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x"}],
        "response_format": response_format,
    }
    with pytest.raises(TranslationError) as raised:  # where the provider has no structured outputs
        messages_request(body, default_max_tokens=10, structured_outputs=False)
    assert raised.value.field == "body.response_format"


def test_neutral_values_of_unsupported_fields_pass() -> None:
    params = request(n=1, frequency_penalty=0, logprobs=False, stream=False, response_format={"type": "text"})
    assert set(params) == {"model", "max_tokens", "messages"}


def test_messages_and_model_are_required() -> None:
    refused("body.messages", messages=[])
    refused("body.messages", messages=[{"role": "system", "content": "only a system prompt"}])
    with pytest.raises(TranslationError) as raised:
        messages_request({"messages": [{"role": "user", "content": "x"}]}, default_max_tokens=1)
    assert raised.value.field == "body.model"


# Anthropic -> OpenAI ---------------------------------------------------------------------------
DOCUMENTED_MESSAGE = {
    "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "model": MODEL,
    "role": "assistant",
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "type": "message",
    "usage": {"input_tokens": 2095, "output_tokens": 503},
}


def test_documented_message_becomes_a_chat_completion() -> None:
    assert chat_completion(DOCUMENTED_MESSAGE, created=1700000000) == {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi! My name is Claude.", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 2095,
            "completion_tokens": 503,
            "total_tokens": 2598,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    message = {**DOCUMENTED_MESSAGE, "stop_reason": stop_reason}
    assert chat_completion(message, created=0)["choices"][0]["finish_reason"] == finish_reason


def test_tool_use_becomes_tool_calls() -> None:
    message = {
        **DOCUMENTED_MESSAGE,
        "content": [
            {"type": "text", "text": "I'll check the weather."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA"},
            },
        ],
        "stop_reason": "tool_use",
    }
    choice = chat_completion(message, created=0)["choices"][0]
    assert choice["message"]["content"] == "I'll check the weather."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA"}


def test_cached_prompt_tokens_count_in_the_prompt() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 40,
    }
    completion = chat_completion({**DOCUMENTED_MESSAGE, "usage": usage}, created=0)
    assert completion["usage"] == {
        "prompt_tokens": 150,
        "completion_tokens": 5,
        "total_tokens": 155,
        "prompt_tokens_details": {"cached_tokens": 40},
    }
