"""The simulator's Bedrock models beyond Claude: each family's documented request rules refuse a
record (an `error` with errorCode 400), and a record within them is answered in the family's
own output shape. The bodies are written here as the providers document them, not by the
gateway's translation."""

from __future__ import annotations

from typing import Any

import pytest

from devserver.simulator.bedrock import _prompt, _token_counts
from devserver.simulator.bedrock_models import respond

NOVA = "us.amazon.nova-lite-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
LLAMA_VISION = "us.meta.llama3-2-11b-instruct-v1:0"
GPT_OSS = "openai.gpt-oss-20b-1:0"
LLAMA_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nDescribe a hello world program."
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)


def _nova(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": "What is machine learning?"}]}], **fields}


TOOLS = {"tools": [{"toolSpec": {"name": "top_song", "inputSchema": {"json": {"type": "object"}}}}]}
TOOL_USE = {"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {}}}
IMAGE = {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (NOVA, {"inferenceConfig": {}}, "required key [messages]"),
        (NOVA, _nova(model="x"), "extraneous key [model]"),
        (NOVA, _nova(inferenceConfig={"maxTokens": 5001}), "maxTokens: 5001 is not in the range"),
        (NOVA, _nova(inferenceConfig={"temperature": 0}), "temperature: 0 is not in the range"),
        (NOVA, _nova(inferenceConfig={"topK": 129}), "topK"),
        (NOVA, _nova(inferenceConfig={"max_tokens": 5}), "extraneous key [max_tokens]"),
        (
            NOVA,
            {"messages": [{"role": "assistant", "content": [{"text": "Hi"}]}]},
            "first turn is the user's",
        ),
        (
            NOVA,
            {
                "messages": [
                    {"role": "user", "content": [{"text": "a"}]},
                    {"role": "user", "content": [{"text": "b"}]},
                ]
            },
            "alternate",
        ),
        (NOVA, {"messages": [{"role": "user", "content": "What?"}]}, "non-empty JSONArray"),
        (NOVA, {"messages": [{"role": "user", "content": [{"text": " "}]}]}, "blank"),
        (NOVA_MICRO, {"messages": [{"role": "user", "content": [IMAGE]}]}, "doesn't support the image"),
        (
            NOVA,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"image": {"format": "png", "source": {"url": "https://x"}}}],
                    }
                ]
            },
            "bytes (base64) required",
        ),
        (
            NOVA,
            {
                "messages": [
                    {"role": "user", "content": [{"text": "a"}]},
                    {"role": "assistant", "content": [TOOL_USE]},
                ]
            },
            "toolConfig field must be defined",
        ),
        (
            NOVA,
            _nova(toolConfig={"tools": [{"toolSpec": {"name": "a b", "inputSchema": {"json": {}}}}]}),
            "name",
        ),
        (NOVA, _nova(schemaVersion="messages-v2"), "schemaVersion"),
        (
            NOVA,
            {
                "messages": [
                    {"role": "user", "content": [{"text": "a"}]},
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "f.w:0", "name": "top_song", "input": {}}}],
                    },
                ],
                "toolConfig": TOOLS,
            },
            "toolUseId (matching",
        ),
        (LLAMA, {"max_gen_len": 10}, "required key [prompt]"),
        (LLAMA, {"prompt": LLAMA_PROMPT, "max_gen_len": 2049}, "max_gen_len: 2049 is not in the range"),
        (LLAMA, {"prompt": LLAMA_PROMPT, "temperature": 1.5}, "temperature"),
        (LLAMA, {"prompt": LLAMA_PROMPT, "stop": ["x"]}, "extraneous key [stop]"),
        (LLAMA, {"prompt": LLAMA_PROMPT, "images": ["iVBORw0KGgo="]}, "does not take images"),
        (LLAMA_VISION, {"prompt": LLAMA_PROMPT, "images": ["not base64!"]}, "not valid base64"),
        (
            GPT_OSS,
            {"messages": [{"role": "user", "content": "Hi"}], "model": "openai.gpt-oss-120b-1:0"},
            "must match",
        ),
        (GPT_OSS, {"messages": [{"role": "user", "content": "Hi"}], "stream": True}, "stream"),
        (
            GPT_OSS,
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
                ]
            },
            "text input only",
        ),
        (GPT_OSS, {"messages": [{"role": "user", "content": "Hi"}], "temperature": 2.5}, "temperature"),
        (
            GPT_OSS,
            {"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {}},
            "extraneous key [logit_bias]",
        ),
        (GPT_OSS, {"messages": [{"role": "user", "content": "Hi"}], "n": 2}, "#/n"),
    ],
)
def test_records_a_family_refuses_are_error_records(model: str, body: dict[str, Any], message: str) -> None:
    kind, result = respond(model, body)
    assert kind == "error" and result["errorCode"] == 400, result
    assert (
        result["errorMessage"].startswith("Malformed input request: ") and message in result["errorMessage"]
    )


def test_nova_answers_in_its_shape() -> None:
    kind, output = respond(
        NOVA,
        _nova(
            schemaVersion="messages-v1",
            system=[{"text": "Be brief."}],
            inferenceConfig={"maxTokens": 512, "temperature": 0.7, "topP": 0.9, "topK": 20},
        ),
    )
    assert kind == "output"
    assert output["output"]["message"]["role"] == "assistant"
    assert "What is machine learning?" in output["output"]["message"]["content"][0]["text"]
    assert output["stopReason"] == "end_turn"
    usage = output["usage"]
    assert usage["inputTokens"] > 0 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    _, cut = respond(NOVA, _nova(inferenceConfig={"maxTokens": 1}))
    assert cut["stopReason"] == "max_tokens"
    _, image = respond(NOVA, {"messages": [{"role": "user", "content": [IMAGE, {"text": "What is this?"}]}]})
    assert image["stopReason"] == "end_turn"


def test_nova_answers_a_required_tool_with_a_tool_use() -> None:
    kind, output = respond(NOVA, _nova(toolConfig={**TOOLS, "toolChoice": {"any": {}}}))
    assert kind == "output" and output["stopReason"] == "tool_use"
    [block] = output["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "top_song" and block["toolUse"]["input"] == {}


def test_llama_answers_in_its_shape() -> None:
    kind, output = respond(
        LLAMA, {"prompt": LLAMA_PROMPT, "temperature": 0.5, "top_p": 0.9, "max_gen_len": 512}
    )
    assert kind == "output" and set(output) == {
        "generation",
        "prompt_token_count",
        "generation_token_count",
        "stop_reason",
    }
    assert "Describe a hello world program." in output["generation"] and "<|" not in output["generation"]
    assert output["stop_reason"] == "stop" and output["prompt_token_count"] > 0
    assert respond(LLAMA, {"prompt": LLAMA_PROMPT, "max_gen_len": 1})[1]["stop_reason"] == "length"
    assert respond(LLAMA_VISION, {"prompt": LLAMA_PROMPT, "images": ["iVBORw0KGgo="]})[0] == "output"


def test_gpt_oss_answers_a_chat_completion_with_its_reasoning_first() -> None:
    kind, output = respond(
        GPT_OSS,
        {
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "reasoning_effort": "low",
        },
    )
    assert kind == "output" and output["object"] == "chat.completion"
    content = output["choices"][0]["message"]["content"]
    assert content.startswith("<reasoning>") and "</reasoning>This is a simulated response to: Hi" in content
    assert (
        output["usage"]["total_tokens"]
        == output["usage"]["prompt_tokens"] + output["usage"]["completion_tokens"]
    )


def test_directives_and_token_counts_are_read_in_every_shape() -> None:
    assert "sim-fail-server_error" in _prompt({"prompt": "<|begin_of_text|>sim-fail-server_error"})
    assert "sim-expire" in _prompt({"messages": [{"role": "user", "content": [{"text": "sim-expire"}]}]})
    assert _token_counts({"usage": {"inputTokens": 3, "outputTokens": 4}}) == (3, 4)
    assert _token_counts({"generation": "x", "prompt_token_count": 5, "generation_token_count": 6}) == (5, 6)
    assert _token_counts({"usage": {"prompt_tokens": 7, "completion_tokens": 8}}) == (7, 8)
    assert _token_counts({"usage": {"input_tokens": 1, "output_tokens": 2}}) == (1, 2)
