"""OpenAI chat completions <-> Gemini generateContent, field by field, in both directions.

The Gemini sides follow the documented examples of https://ai.google.dev/api/generate-content
(the multi-turn chat, the inline image, the function calling get_weather exchange, a response
with usageMetadata); the OpenAI sides those of the Chat Completions reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.providers.gemini.content import (
    SKIP_THOUGHT_SIGNATURE,
    TranslationError,
    chat_completion,
    generate_content_request,
)
from hypothesis import given, settings
from hypothesis import strategies as st

MODEL = "gemini-2.5-flash"
_KEYS = [
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "tool_calls",
    "id",
    "function",
    "name",
    "arguments",
    "tool_call_id",
    "parameters",
    "json_schema",
    "schema",
    "description",
]
WEATHER = {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "The city and state"}},
    "required": ["location"],
}


def request(model: str = MODEL, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return generate_content_request({"model": model, **body}, model=model)


def refused(field: str, model: str = MODEL, **body: Any) -> TranslationError:
    with pytest.raises(TranslationError) as raised:
        request(model, **body)
    assert raised.value.field == field, raised.value
    return raised.value


# OpenAI -> Gemini ------------------------------------------------------------------------------
def test_a_user_message_is_one_user_turn_and_no_model_field() -> None:
    assert request() == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    translated = request(
        messages=[
            {"role": "system", "content": "You are a cat."},
            {"role": "developer", "content": [{"type": "text", "text": "Your name is Neko."}]},
            {"role": "user", "content": "Hello there"},
        ]
    )
    assert translated["systemInstruction"] == {"parts": [{"text": "You are a cat.\n\nYour name is Neko."}]}
    assert translated["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]


def test_turns_alternate_user_and_model_and_same_role_messages_merge() -> None:
    translated = request(
        messages=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Great to meet you. What would you like to know?"},
            {"role": "user", "content": "I have two dogs in my house."},
            {"role": "user", "content": "How many paws are in my house?"},
        ]
    )
    assert translated["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"text": "Great to meet you. What would you like to know?"}]},
        {
            "role": "user",
            "parts": [{"text": "I have two dogs in my house."}, {"text": "How many paws are in my house?"}],
        },
    ]


def test_a_base64_image_is_inline_data() -> None:
    translated = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Caption this image."},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                ],
            }
        ]
    )
    assert translated["contents"][0]["parts"] == [
        {"text": "Caption this image."},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
    ]


def test_an_image_by_url_and_an_unknown_image_type_are_refused() -> None:
    by_url = refused(
        "body.messages[0].content[0].image_url.url",
        messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
        ],
    )
    assert "base64" in by_url.message
    refused(
        "body.messages[0].content[0].image_url.url",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0"}}],
            }
        ],
    )


def test_generation_config_fields() -> None:
    translated = request(
        max_completion_tokens=800, temperature=1.5, top_p=0.9, stop=["Title", "\n"], seed=7, n=2
    )
    assert translated["generationConfig"] == {
        "maxOutputTokens": 800,
        "temperature": 1.5,
        "topP": 0.9,
        "stopSequences": ["Title", "\n"],
        "candidateCount": 2,
        "seed": 7,
    }
    assert request(max_tokens=50)["generationConfig"] == {"maxOutputTokens": 50}
    assert request(stop="END")["generationConfig"] == {"stopSequences": ["END"]}


def test_generation_config_limits() -> None:
    refused("body.stop", stop=["a", "b", "c", "d", "e", "f"])
    refused("body.temperature", temperature=2.5)
    refused("body.top_p", top_p=1.2)
    refused("body.max_tokens", max_tokens=0)
    refused("body.n", n=9)


def test_function_tools_and_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER},
        }
    ]
    translated = request(tools=tools, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert translated["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather", "parametersJsonSchema": WEATHER}
            ]
        }
    ]
    assert translated["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert request(tools=tools, tool_choice="auto")["toolConfig"] == {
        "functionCallingConfig": {"mode": "AUTO"}
    }
    assert request(tools=tools, tool_choice="required")["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY"}
    }
    assert request(tools=tools, tool_choice="none")["toolConfig"] == {
        "functionCallingConfig": {"mode": "NONE"}
    }
    refused("body.parallel_tool_calls", tools=tools, parallel_tool_calls=False)
    refused("body.tools[0]", tools=[{"type": "custom", "custom": {"name": "x"}}])


def _weather_exchange() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What's the weather in Boston?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Boston, MA"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 22, "unit": "celsius"}'},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


def test_tool_calls_and_results_become_function_call_and_function_response_parts() -> None:
    contents = request(messages=_weather_exchange())["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"location": "Boston, MA"}}}
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call_1",
                    "name": "get_weather",
                    "response": {"temperature": 22, "unit": "celsius"},
                }
            },
            {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"result": "sunny"}}},
        ],
    }


def test_gemini_3_replayed_calls_carry_the_documented_dummy_signature() -> None:
    contents = request("gemini-3-flash-preview", messages=_weather_exchange())["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == SKIP_THOUGHT_SIGNATURE


def test_a_tool_result_for_no_call_is_refused() -> None:
    refused(
        "body.messages[1].tool_call_id",
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "nope", "content": "x"},
        ],
    )


def test_response_format_json_schema_and_json_object() -> None:
    schema = {"type": "object", "properties": {"recipe": {"type": "string"}}, "required": ["recipe"]}
    translated = request(
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    )
    assert translated["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert request(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in request(response_format={"type": "text"})
    refused(
        "body.response_format.json_schema.schema", response_format={"type": "json_schema", "json_schema": {}}
    )
    refused("body.response_format", response_format={"type": "xml"})


@pytest.mark.parametrize(
    ("model", "effort", "config"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-pro", "high", {"thinkingBudget": 24576}),
        ("gemini-2.5-pro", "xhigh", {"thinkingBudget": 32768}),
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "low"}),
        ("gemini-3-pro-preview", "medium", {"thinkingLevel": "high"}),
        ("gemini-3.1-pro-preview", "medium", {"thinkingLevel": "medium"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal"}),
        ("gemini-3-flash-preview", "xhigh", {"thinkingLevel": "high"}),
    ],
)
def test_reasoning_effort_becomes_the_model_s_thinking_config(
    model: str, effort: str, config: dict[str, Any]
) -> None:
    assert request(model, reasoning_effort=effort)["generationConfig"] == {"thinkingConfig": config}


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gemini-2.5-pro", "none"),
        ("gemini-3-pro-preview", "none"),
        ("gemini-2.0-flash", "low"),
        ("gemini-2.5-flash", "max"),
    ],
)
def test_reasoning_effort_a_model_cannot_take_is_refused(model: str, effort: str) -> None:
    refused("body.reasoning_effort", model, reasoning_effort=effort)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logprobs", True),
        ("presence_penalty", 0.5),
        ("logit_bias", {"1": 2}),
        ("functions", []),
        ("verbosity", "low"),
    ],
)
def test_other_fields_are_refused_by_name(field: str, value: Any) -> None:
    refused(f"body.{field}", **{field: value})


def test_neutral_values_and_ignored_fields_pass() -> None:
    assert request(logprobs=False, presence_penalty=0, user="u-1", store=False, n=1) == request()


def test_stream_and_other_modalities_are_refused() -> None:
    refused("body.stream", stream=True)
    refused("body.modalities", modalities=["text", "audio"])


# Gemini -> OpenAI ------------------------------------------------------------------------------
RESPONSE = {
    "candidates": [
        {
            "content": {
                "parts": [{"text": "thinking...", "thought": True}, {"text": "Hello! How can I help?"}],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 10,
        "candidatesTokenCount": 7,
        "thoughtsTokenCount": 20,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 37,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc123",
}


def test_a_response_becomes_a_chat_completion_with_usage() -> None:
    completion = chat_completion(RESPONSE, model=MODEL, custom_id="req-1", created=1700000000)
    assert completion == {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 27,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
    }


def test_a_function_call_becomes_a_tool_call_with_a_stable_id() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}}],
                },
                "finishReason": "STOP",
            }
        ]
    }
    first = chat_completion(response, model=MODEL, custom_id="req-1", created=1)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": json.dumps({"location": "Boston"})}
    assert call["id"].startswith("call_")
    assert chat_completion(response, model=MODEL, custom_id="req-1", created=1) == first
    other = chat_completion(response, model=MODEL, custom_id="req-2", created=1)
    assert other["choices"][0]["message"]["tool_calls"][0]["id"] != call["id"]
    with_id = {
        "candidates": [{"content": {"parts": [{"functionCall": {"id": "fc-9", "name": "f", "args": {}}}]}}]
    }
    assert (
        chat_completion(with_id, model=MODEL, custom_id="x", created=1)["choices"][0]["message"][
            "tool_calls"
        ][0]["id"]
        == "fc-9"
    )


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    response = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert (
        chat_completion(response, model=MODEL, custom_id="c", created=1)["choices"][0]["finish_reason"]
        == finish
    )


def test_several_candidates_are_several_choices_and_a_blocked_prompt_one_filtered_choice() -> None:
    response = {
        "candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ]
    }
    choices = chat_completion(response, model=MODEL, custom_id="c", created=1)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "stop"),
        (1, "b", "length"),
    ]
    blocked = chat_completion(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}},
        model=MODEL,
        custom_id="c",
        created=1,
    )
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] is None
    assert blocked["model"] == MODEL and blocked["usage"]["prompt_tokens"] == 3


def test_a_function_name_gemini_refuses_is_refused() -> None:
    tool = {"type": "function", "function": {"name": "1st_tool", "parameters": WEATHER}}
    refused("body.tools[0].function.name", tools=[tool])


def test_a_tool_choice_naming_no_declared_function_is_refused() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    refused(
        "body.tool_choice.function.name",
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )


# Any JSON a client may send: only TranslationError (a line problem, a 4xx), never another error.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3)
    | st.sampled_from(
        [
            "",
            "x",
            "user",
            "assistant",
            "tool",
            "system",
            "text",
            "image_url",
            "function",
            "json_schema",
            "json_object",
            "auto",
            "required",
            "low",
            "data:image/png;base64,AA",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "messages",
                "tools",
                "tool_choice",
                "response_format",
                "stop",
                "n",
                "seed",
                "reasoning_effort",
                "max_tokens",
                "temperature",
                "parallel_tool_calls",
                "modalities",
            ]
        ),
        _JSON,
        max_size=4,
    )
)
def test_any_json_is_translated_or_refused_by_name(fields: dict[str, Any]) -> None:
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
        translated = generate_content_request(body, model=MODEL)
    except TranslationError as exc:
        assert exc.field.startswith("body")
    else:
        assert translated["contents"]


@pytest.mark.parametrize(
    ("field", "body"),
    [
        (
            "body.response_format.json_schema.schema",
            {"response_format": {"type": "json_schema", "json_schema": "x"}},
        ),
        (
            "body.messages[0].content[0].image_url.url",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]},
        ),
        (
            "body.messages[1].tool_calls[0]",
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": ["x"]}]},
        ),
        (
            "body.messages[1].tool_calls[0].function.arguments",
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
                    },
                ]
            },
        ),
        ("body.tool_choice", {"tool_choice": ["auto"]}),
        ("body.tools", {"tools": {"type": "function"}}),
        ("body.reasoning_effort", {"reasoning_effort": {"level": "low"}}),
    ],
)
def test_malformed_shapes_are_refused_by_name(field: str, body: dict[str, Any]) -> None:
    refused(field, **body)


def test_a_malformed_response_reads_as_far_as_it_goes() -> None:
    response = {"candidates": ["x", {"content": "y"}, {"content": {"parts": ["z", {"text": "ok"}]}}]}
    choices = chat_completion(response, model=MODEL, custom_id="c", created=1)["choices"]
    assert [choice["message"]["content"] for choice in choices] == [None, "ok"]


def test_a_model_name_that_is_no_path_segment_is_refused_at_upload() -> None:
    from gateway.providers.gemini.content import check_line

    for model in ("../files/x", "gemini-2.5-flash:batchGenerateContent?x", "a/b"):
        with pytest.raises(TranslationError) as raised:
            check_line({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert raised.value.field == "body.model"
    check_line({"model": "flash", "messages": [{"role": "user", "content": "hi"}]}, models={"flash": MODEL})


def test_a_json_schema_response_format_needs_gemini_2_5_or_later() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    refused("body.response_format", "gemini-2.0-flash", response_format=schema)
    assert (
        "responseJsonSchema" in request("gemini-3-flash-preview", response_format=schema)["generationConfig"]
    )


def test_audio_and_pdf_parts_are_inline_data() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
    ]
    parts = request(messages=[{"role": "user", "content": content}])["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    refused(
        "body.messages[0].content[0].file.file_data",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}],
    )
    refused(
        "body.messages[0].content[0].input_audio.format",
        messages=[
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "ogg"}}],
            }
        ],
    )
