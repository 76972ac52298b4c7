"""OpenAI's open-weight models on Bedrock (`openai.gpt-oss-20b-1:0`, `openai.gpt-oss-120b-1:0`)
as a batch record's model: the Create chat completion body, checked as Bedrock's page states,
answered with a chat completion whose text starts with the model's reasoning in `<reasoning>`
tags (as InvokeModel returns it).

Rules (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-openai.html): text
input and output only; `model`, when given, must be the invoked model's id; `stream`, when given,
false for InvokeModel. From OpenAI's Create chat completion reference: `messages` required
(roles system, developer, user, assistant, tool), `temperature` 0 to 2, `top_p` 0 to 1,
`max_completion_tokens` / `max_tokens` positive, `reasoning_effort` low/medium/high, `n` 1;
any other argument is unrecognized.
"""

from __future__ import annotations

from typing import Any

from .bedrock_invoke import InvalidInput, answer, in_range, is_int, only_keys, require, tokens

KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
    }
)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def respond(model_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        return "output", _respond(model_id, body)
    except InvalidInput as refused:
        return "error", refused.error()


def _respond(model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    only_keys(body, KEYS)
    require(body.get("model", model_id) == model_id, "#/model: must match the invoked model's id")
    require(body.get("stream", False) is False, "#/stream: must be false for InvokeModel")
    messages = body.get("messages")
    require(isinstance(messages, list) and bool(messages), "#: required key [messages] not found")
    assert isinstance(messages, list)
    last_user = ""
    for index, message in enumerate(messages):
        where = f"#/messages/{index}"
        require(isinstance(message, dict) and message.get("role") in ROLES, f"{where}/role: not a chat role")
        content = message.get("content")
        if isinstance(content, list):
            for number, part in enumerate(content):
                require(
                    isinstance(part, dict) and part.get("type") == "text",
                    f"{where}/content/{number}: the OpenAI models take text input only",
                )
            content = "\n".join(str(part.get("text") or "") for part in content)
        require(content is None or isinstance(content, str), f"{where}/content: expected a string")
        if message["role"] == "user":
            last_user = content or ""
    for name in ("max_tokens", "max_completion_tokens"):
        if name in body:
            require(is_int(body[name]) and body[name] >= 1, f"#/{name}: must be a positive integer")
    in_range(body, "temperature", 0, 2, "#")
    in_range(body, "top_p", 0, 1, "#")
    require(body.get("n", 1) == 1, "#/n: must be 1")
    require(
        body.get("reasoning_effort", "low") in ("low", "medium", "high"),
        "#/reasoning_effort: low, medium or high",
    )
    digest, text = answer(model_id, last_user)
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    finish_reason = "stop"
    if cap is not None and tokens(text) > cap:
        text, finish_reason = text[: cap * 4], "length"
    reasoning = "<reasoning>The user asks a question; answer it briefly.</reasoning>"
    prompt_tokens = sum(tokens(str(m.get("content") or "x")) + 3 for m in messages)
    completion_tokens = tokens(reasoning) + tokens(text)
    return {
        "id": "chatcmpl-" + digest[:29],
        "object": "chat.completion",
        "created": 0,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reasoning + text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
