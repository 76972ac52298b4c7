"""OpenAI chat completions -> the InvokeModel body of OpenAI's open-weight models on Bedrock
(`openai.gpt-oss-20b-1:0`, `openai.gpt-oss-120b-1:0`), and their answer back.

Bedrock takes the Create chat completion body for them and answers a chat completion object
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-openai.html): text input
and text output only, `model` omitted (the job names it) and `stream` false. Through
InvokeModel the model's reasoning comes first in the text, inside `<reasoning>` tags: it is
taken out, as OpenAI's own chat completions never show it. Kept here: messages (text),
`max_completion_tokens`/`max_tokens`, `temperature`, `top_p`, `stop`, function `tools` and
`tool_choice`, `reasoning_effort`; `n` above 1 and a `response_format` other than text are
refused, as is any image.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.providers import chat_parts
from gateway.providers.bedrock.families import common
from gateway.providers.chat_parts import TranslationError

FAMILY = "OpenAI gpt-oss"
TAKES = frozenset({"stop", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort"})
REASONING_EFFORTS = ("low", "medium", "high")
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_REASONING = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*", re.DOTALL)


def takes(model_id: str) -> bool:
    return "gpt-oss" in model_id


def model_input(body: dict[str, Any], *, default_max_tokens: int, model_id: str) -> dict[str, Any]:
    common.check_fields(body, FAMILY, TAKES)
    request: dict[str, Any] = {"messages": [_message(m, i) for i, m in enumerate(common.messages(body))]}
    if not any(message["role"] == "user" for message in request["messages"]):
        raise TranslationError("body.messages", "needs at least one user message")
    for name in ("max_completion_tokens", "max_tokens"):
        cap = body.get(name)
        if cap is None:
            continue
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise TranslationError(f"body.{name}", "must be a positive integer")
        request["max_completion_tokens"] = cap
        break
    if (temperature := common.number(body, "temperature", 0, 2, FAMILY)) is not None:
        request["temperature"] = temperature
    if (top_p := common.number(body, "top_p", 0, 1, FAMILY)) is not None:
        request["top_p"] = top_p
    if body.get("stop") is not None and (stops := common.stop_sequences(body["stop"])):
        request["stop"] = stops
    if body.get("tools"):
        request["tools"] = _tools(body["tools"])
        for name in ("tool_choice", "parallel_tool_calls"):
            if body.get(name) is not None:
                request[name] = body[name]
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise TranslationError("body.tool_choice", "needs tools")
    if (effort := body.get("reasoning_effort")) is not None:
        if effort not in REASONING_EFFORTS:
            raise TranslationError(
                "body.reasoning_effort", f"must be one of {', '.join(REASONING_EFFORTS)} here"
            )
        request["reasoning_effort"] = effort
    return request


def _message(message: dict[str, Any], index: int) -> dict[str, Any]:
    where = f"body.messages[{index}]"
    role = message.get("role")
    if role not in ROLES:
        raise chat_parts.unsupported_role(where, role)
    translated: dict[str, Any] = {
        "role": role,
        "content": common.text_of(message.get("content"), f"{where}.content"),
    }
    if role == "assistant" and message.get("tool_calls"):
        chat_parts.function_calls(message, where)  # checked, passed on as written
        translated["tool_calls"] = message["tool_calls"]
    if role == "tool":
        translated["tool_call_id"] = chat_parts.tool_call_id(message, where)
    return translated


def _tools(tools: Any) -> list[dict[str, Any]]:
    list(chat_parts.function_tools(tools))  # checks each tool; they pass on as written
    return tools


def chat_completion(output: dict[str, Any], *, created: int, model_id: str, record_id: str) -> dict[str, Any]:
    """The model's chat completion, its reasoning taken out of the text and OpenAI's fields set."""
    choices = [choice for choice in output.get("choices") or () if isinstance(choice, dict)]
    first = choices[0] if choices else {}
    message = dict(first.get("message") or {})
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = _REASONING.sub("", content, count=1)
    message.setdefault("role", "assistant")
    message.setdefault("refusal", None)
    usage = output.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    return common.completion(
        completion_id=str(output.get("id") or common.completion_id(record_id, model_id)),
        created=created,
        model=model_id,
        message=message,
        finish_reason=str(first.get("finish_reason") or "stop"),
        usage=common.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), cached),
    )
