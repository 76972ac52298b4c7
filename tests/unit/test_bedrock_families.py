"""OpenAI chat completions <-> the InvokeModel bodies of Bedrock's Nova, Llama and gpt-oss models,
field by field in both directions, from the providers' documented examples:

- Nova: docs.aws.amazon.com/nova/latest/userguide/complete-request-schema.html (request),
  …/complete-request-schema-response.html (response), and the Invoke API example
  (`{"messages": [{"role": "user", "content": [{"text": "What is machine learning?"}]}],
  "inferenceConfig": {"maxTokens": 512, "temperature": 0.7}}`, answer read from
  `output.message.content`).
- Llama: docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html (`prompt`,
  `temperature`, `top_p`, `max_gen_len`, `images`; `generation`, `prompt_token_count`,
  `generation_token_count`, `stop_reason`).
- gpt-oss: docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-openai.html (the
  Create chat completion body; the answer a chat completion, reasoning in `<reasoning>` tags
  first through InvokeModel).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from gateway.errors import InvalidRequestError
from gateway.providers.anthropic.messages import TranslationError
from gateway.providers.bedrock import records as bedrock_records
from gateway.providers.bedrock.families import gpt_oss, llama, nova
from gateway.providers.bedrock.records import Records

NOVA_LITE = "amazon.nova-lite-v1:0"
NOVA_MICRO = "us.amazon.nova-micro-v1:0"
LLAMA_33 = "us.meta.llama3-3-70b-instruct-v1:0"
LLAMA_VISION = "us.meta.llama3-2-11b-instruct-v1:0"
LLAMA_4 = "us.meta.llama4-maverick-17b-instruct-v1:0"
GPT_OSS = "openai.gpt-oss-120b-1:0"
PNG = "data:image/png;base64,iVBORw0KGgo="
QUESTION = "What is machine learning?"


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": QUESTION}], **fields}


def _image(url: str = PNG) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


# Amazon Nova --------------------------------------------------------------------------------
def test_nova_the_documented_invoke_example() -> None:
    body = nova.model_input(
        _body(max_tokens=512, temperature=0.7), default_max_tokens=4096, model_id=NOVA_LITE
    )
    assert body == {
        "schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.7},
    }


def test_nova_system_sampling_and_stop_fields() -> None:
    body = nova.model_input(
        _body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "Machine learning is"},
            ],
            temperature=0,
            top_p=0.9,
            stop=["END", ""],
            user="u-1",  # OpenAI's end-user id: no field of Nova's, accepted and left out
        ),
        default_max_tokens=9000,
        model_id=NOVA_LITE,
    )
    assert set(body) == {"schemaVersion", "system", "messages", "inferenceConfig"}
    assert body["system"] == [{"text": "Be brief."}, {"text": "Answer in English."}]
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant"]  # assistant prefill
    # the deployment's default within Nova's 5000; OpenAI's greedy 0 as Nova's smallest temperature
    assert body["inferenceConfig"] == {
        "maxTokens": 5000,
        "temperature": nova.MIN_TEMPERATURE,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


def test_nova_images_are_base64_blocks_and_micro_takes_none() -> None:
    content = [{"type": "text", "text": "What is this?"}, _image()]
    body = nova.model_input(
        _body(messages=[{"role": "user", "content": content}]), default_max_tokens=10, model_id=NOVA_LITE
    )
    assert body["messages"][0]["content"] == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
    ]
    with pytest.raises(
        TranslationError, match=r"^body.messages\[0\].content\[1\]: Amazon Nova Micro takes text only"
    ):
        nova.model_input(
            _body(messages=[{"role": "user", "content": content}]), default_max_tokens=10, model_id=NOVA_MICRO
        )
    by_url = [_image("https://example.com/cat.png")]
    with pytest.raises(TranslationError, match=r"image_url.url: Amazon Bedrock takes images as base64"):
        nova.model_input(
            _body(messages=[{"role": "user", "content": by_url}]), default_max_tokens=10, model_id=NOVA_LITE
        )


def test_nova_tools_calls_and_results() -> None:
    weather = {"type": "function", "function": {"name": "top_song", "parameters": {"type": "object"}}}
    call = {
        "id": "tooluse_1",
        "type": "function",
        "function": {"name": "top_song", "arguments": '{"sign": "WZPZ"}'},
    }
    body = nova.model_input(
        _body(
            messages=[
                {"role": "user", "content": "Most popular song on WZPZ?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"},
            ],
            tools=[weather],
            tool_choice="required",
        ),
        default_max_tokens=10,
        model_id=NOVA_LITE,
    )
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "top_song", "inputSchema": {"json": {"type": "object"}}}}],
        "toolChoice": {"any": {}},
    }
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}}
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Elemental Hotel"}]}}],
        },
    ]
    named = nova.model_input(
        _body(tools=[weather], tool_choice={"type": "function", "function": {"name": "top_song"}}),
        default_max_tokens=10,
        model_id=NOVA_LITE,
    )
    assert named["toolConfig"]["toolChoice"] == {"tool": {"name": "top_song"}}


def test_nova_drops_blank_text_and_makes_tool_call_ids_bedrocks() -> None:
    call = {"id": "functions.get_weather:0", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    body = nova.model_input(
        _body(
            messages=[
                {"role": "system", "content": " "},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "\n"}, {"type": "text", "text": "Weather?"}],
                },
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "15 degrees"},
            ],
            tools=[{"type": "function", "function": {"name": "w"}}],
        ),
        default_max_tokens=10,
        model_id=NOVA_LITE,
    )
    assert "system" not in body and body["messages"][0]["content"] == [{"text": "Weather?"}]
    [use] = body["messages"][1]["content"]
    [result] = body["messages"][2]["content"]
    assert use["toolUse"]["toolUseId"] == result["toolResult"]["toolUseId"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", use["toolUse"]["toolUseId"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"n": 2}, "body.n"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            "body.response_format",
        ),
        ({"reasoning_effort": "low"}, "body.reasoning_effort"),
        ({"max_tokens": 5001}, "body.max_tokens"),
        ({"temperature": 1.5}, "body.temperature"),
        (
            {"tool_choice": "none", "tools": [{"type": "function", "function": {"name": "f"}}]},
            "body.tool_choice",
        ),
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, "body.messages"),
        ({"logprobs": True}, "body.logprobs"),
        (
            {"parallel_tool_calls": False, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "body.parallel_tool_calls",
        ),
    ],
)
def test_nova_refuses_what_it_cannot_take_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as refused:
        nova.model_input(_body(**fields), default_max_tokens=10, model_id=NOVA_LITE)
    assert refused.value.field == field


def test_nova_the_documented_response_becomes_a_chat_completion() -> None:
    output = {
        "output": {
            "message": {"role": "assistant", "content": [{"text": "Machine learning is a field of AI."}]}
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 8, "outputTokens": 9, "totalTokens": 17, "cacheReadInputTokenCount": 2},
    }
    completion = nova.chat_completion(output, created=5, model_id=NOVA_LITE, record_id="R0000000001")
    assert completion["object"] == "chat.completion" and completion["created"] == 5
    assert completion["model"] == NOVA_LITE and completion["id"].startswith("chatcmpl-")
    [choice] = completion["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Machine learning is a field of AI.",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    assert completion["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 9,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 2},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filtered", "content_filter"),
    ],
)
def test_nova_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    output = {"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop_reason, "usage": {}}
    completion = nova.chat_completion(output, created=0, model_id=NOVA_LITE, record_id="R0000000001")
    assert completion["choices"][0]["finish_reason"] == finish_reason


def test_nova_tool_use_becomes_tool_calls() -> None:
    output = {
        "output": {
            "message": {
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "[REDACTED]"}}},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}},
                ]
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 3, "outputTokens": 4},
    }
    message = nova.chat_completion(output, created=0, model_id=NOVA_LITE, record_id="R0000000001")["choices"][
        0
    ]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "tooluse_1",
            "type": "function",
            "function": {"name": "top_song", "arguments": '{"sign": "WZPZ"}'},
        }
    ]


# Meta Llama ---------------------------------------------------------------------------------
def test_llama_the_chat_template_and_parameters() -> None:
    body = llama.model_input(
        _body(
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
            temperature=0.5,
            top_p=0.9,
            max_tokens=512,
        ),
        default_max_tokens=4096,
        model_id=LLAMA_33,
    )
    assert body == {
        "prompt": (
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            f"<|start_header_id|>user<|end_header_id|>\n\n{QUESTION}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        ),
        "temperature": 0.5,
        "top_p": 0.9,
        "max_gen_len": 512,
    }


def test_llama_4_has_its_own_template_and_the_default_cap_stays_within_2048() -> None:
    body = llama.model_input(_body(), default_max_tokens=4096, model_id=LLAMA_4)
    assert body["prompt"] == (
        f"<|begin_of_text|><|header_start|>user<|header_end|>\n\n{QUESTION}<|eot|>"
        "<|header_start|>assistant<|header_end|>\n\n"
    )
    assert body["max_gen_len"] == 2048


def test_llama_vision_models_take_base64_images_placed_by_image_tokens() -> None:
    content = [_image(), {"type": "text", "text": "What is this?"}]
    body = llama.model_input(
        _body(messages=[{"role": "user", "content": content}]), default_max_tokens=10, model_id=LLAMA_VISION
    )
    assert body["images"] == ["iVBORw0KGgo="]
    assert "<|end_header_id|>\n\n<|image|>What is this?<|eot_id|>" in body["prompt"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"messages": [{"role": "user", "content": [_image()]}]}, "body.messages[0].content[0]"),
        ({"stop": ["END"]}, "body.stop"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "body.tools"),
        ({"messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]}, "body.messages[0].role"),
        ({"max_tokens": 2049}, "body.max_tokens"),
        ({"temperature": 1.2}, "body.temperature"),
        ({"n": 3}, "body.n"),
        ({"response_format": {"type": "json_object"}}, "body.response_format"),
    ],
)
def test_llama_refuses_what_it_cannot_take_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as refused:
        llama.model_input(_body(**fields), default_max_tokens=10, model_id=LLAMA_33)
    assert refused.value.field == field


@pytest.mark.parametrize(("stop_reason", "finish_reason"), [("stop", "stop"), ("length", "length")])
def test_llama_the_documented_response_becomes_a_chat_completion(
    stop_reason: str, finish_reason: str
) -> None:
    output = {
        "generation": "A program that prints hello world.",
        "prompt_token_count": 21,
        "generation_token_count": 8,
        "stop_reason": stop_reason,
    }
    completion = llama.chat_completion(output, created=7, model_id=LLAMA_33, record_id="R0000000002")
    [choice] = completion["choices"]
    assert choice["message"]["content"] == "A program that prints hello world."
    assert choice["finish_reason"] == finish_reason
    assert completion["usage"]["prompt_tokens"] == 21 and completion["usage"]["completion_tokens"] == 8
    assert completion["usage"]["total_tokens"] == 29 and completion["model"] == LLAMA_33


# OpenAI gpt-oss -----------------------------------------------------------------------------
def test_gpt_oss_takes_the_chat_completions_body_without_model() -> None:
    body = gpt_oss.model_input(
        _body(
            messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
            max_tokens=100,
            temperature=1.2,
            stop="END",
            reasoning_effort="high",
            stream=False,
        ),
        default_max_tokens=4096,
        model_id=GPT_OSS,
    )
    assert body == {
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        "max_completion_tokens": 100,
        "temperature": 1.2,
        "stop": ["END"],
        "reasoning_effort": "high",
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"messages": [{"role": "user", "content": [_image()]}]}, "body.messages[0].content[0]"),
        ({"n": 2}, "body.n"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            "body.response_format",
        ),
        ({"reasoning_effort": "minimal"}, "body.reasoning_effort"),
        ({"stream": True}, "body.stream"),
    ],
)
def test_gpt_oss_refuses_what_bedrock_does_not_take(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as refused:
        gpt_oss.model_input(_body(**fields), default_max_tokens=10, model_id=GPT_OSS)
    assert refused.value.field == field


def test_gpt_oss_answer_loses_its_reasoning_text() -> None:
    output = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1,
        "model": "openai.gpt-oss-120b-1:0",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "<reasoning>The user asks.</reasoning>Hello!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
    completion = gpt_oss.chat_completion(output, created=9, model_id=GPT_OSS, record_id="R0000000001")
    assert completion["id"] == "chatcmpl-abc" and completion["created"] == 9
    assert completion["choices"][0]["message"]["content"] == "Hello!"
    assert completion["usage"]["total_tokens"] == 17


# Through the records --------------------------------------------------------------------------
MODELS = {"nova-lite": NOVA_LITE, "llama-3-3-70b": LLAMA_33, "gpt-oss-120b": GPT_OSS}


def _line(model: str, **fields: Any) -> bytes:
    request = {"custom_id": "q/1", "method": "POST", "url": "/v1/chat/completions", "body": _body(**fields)}
    request["body"]["model"] = model
    return json.dumps(request).encode()


@pytest.mark.parametrize(
    ("alias", "key"), [("nova-lite", "messages"), ("llama-3-3-70b", "prompt"), ("gpt-oss-120b", "messages")]
)
def test_records_use_the_family_of_the_model_the_alias_names(alias: str, key: str) -> None:
    into = Records()
    [raw] = bedrock_records.records([_line(alias)], models=MODELS, default_max_tokens=64, into=into)
    record = json.loads(raw)
    assert record["recordId"] == "R0000000001" and key in record["modelInput"]
    assert "model" not in record["modelInput"] and into.model_id == MODELS[alias]


def test_a_refused_field_names_its_line() -> None:
    lines = [_line("llama-3-3-70b"), _line("llama-3-3-70b", stop="END")]
    with pytest.raises(InvalidRequestError, match=r"^Line 2: body.stop: is not supported by Meta Llama"):
        list(bedrock_records.records(lines, models=MODELS, default_max_tokens=64, into=Records()))
    with pytest.raises(ValueError, match=r"^body.stop"):
        bedrock_records.check_line(json.loads(lines[1])["body"], models=MODELS, default_max_tokens=64)


def test_outcomes_are_read_in_the_family_shape_of_the_jobs_model() -> None:
    line = {
        "recordId": "R0000000001",
        "modelInput": {"prompt": "x"},
        "modelOutput": {
            "generation": "Hi",
            "prompt_token_count": 3,
            "generation_token_count": 1,
            "stop_reason": "stop",
        },
    }
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA_33}"
    outcome = bedrock_records.outcome(line, ["q/1"], 0, model_id=arn)
    assert outcome is not None and outcome.kind == "succeeded" and outcome.body is not None
    assert outcome.body["choices"][0]["message"]["content"] == "Hi" and outcome.body["model"] == LLAMA_33


# Prices -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "cost"),
    [
        # a million input and a million output tokens at Bedrock's batch prices (50% of on-demand)
        ("us.amazon.nova-lite-v1:0", "0.15"),
        ("amazon.nova-micro-v1:0", "0.0875"),
        ("us.amazon.nova-pro-v1:0", "2"),
        ("us.meta.llama3-3-70b-instruct-v1:0", "0.72"),
        ("us.meta.llama4-maverick-17b-instruct-v1:0", "0.605"),
        ("openai.gpt-oss-120b-1:0", "0.375"),
        ("openai.gpt-oss-20b-1:0", "0.185"),
    ],
)
def test_each_family_is_priced_at_bedrock_batch_prices(model: str, cost: str) -> None:
    from decimal import Decimal

    from gateway.pricing import PriceScope, batch_cost, price_table
    from gateway.service.usage import BatchUsage

    usage = BatchUsage(input_tokens=1_000_000, output_tokens=1_000_000, total_tokens=2_000_000)
    east = PriceScope(deployment="bedrock", type="bedrock", region="us-east-1")
    priced = batch_cost(price_table(), model, usage, east)
    assert priced is not None and priced.total == Decimal(cost)
    elsewhere = PriceScope(deployment="bedrock", type="bedrock", region="eu-west-1")
    assert batch_cost(price_table(), model, usage, elsewhere) is None  # the shipped figures are US ones
