"""OpenAI Chat Completions <-> Anthropic Messages, for batch lines: pure functions, no I/O.

`messages_request` turns the `body` of an OpenAI `/v1/chat/completions` batch line into the
`params` of an Anthropic Messages request (Message Batches and Claude on Bedrock take the same
shape); what has no Anthropic equivalent raises `TranslationError` naming the field, so the
upload check can fail the line before anything is paid for. `chat_completion` turns an
Anthropic Message back into the `chat.completion` OpenAI's batch output carries.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gateway.providers import chat_parts
from gateway.providers.anthropic import claude_features
from gateway.providers.anthropic.claude_features import FeatureRefused
from gateway.providers.chat_parts import TranslationError

__all__ = ["TranslationError", "chat_completion", "completion_usage", "messages_request"]

# Set to anything but its neutral value, these have no Anthropic equivalent.
_UNSUPPORTED = chat_parts.neutral_only(
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "audio",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
    "seed",
)
# Accepted and without effect on a batch request.
_IGNORED = frozenset(
    {"store", "metadata", "service_tier", "stream_options", "prompt_cache_key", "safety_identifier"}
)
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "stream",
        "response_format",
        "modalities",
        "reasoning_effort",
    }
)
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# Anthropic's pattern for a tool_use id (and so a tool_result's tool_use_id).
TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_TOOL_USE_ID = re.compile(r"[^a-zA-Z0-9_-]+")
# Claude models that refuse `temperature` and `top_p` in one request ("cannot both be specified for
# this model"): Opus 4.1, and every 4.5 and later. Family first (claude-sonnet-4-5-20250929,
# anthropic.claude-opus-4-1-20250805-v1:0); the older names (claude-3-5-sonnet-…) are all earlier.
_CLAUDE_VERSION = re.compile(r"claude-(?P<family>opus|sonnet|haiku)-(?P<major>\d+)(?:-(?P<minor>\d)(?!\d))?")


# OpenAI -> Anthropic ---------------------------------------------------------------------------
def messages_request(
    body: dict[str, Any],
    *,
    default_max_tokens: int,
    model_id: str | None = None,
    image_urls: bool = True,
    structured_outputs: bool = True,
) -> dict[str, Any]:
    """The Anthropic Messages params of an OpenAI chat completions `body`. `model_id`: the model
    that runs it when not the body's own (a Bedrock alias's model id); `image_urls`: whether the
    provider takes images by URL (Bedrock takes base64 only); `structured_outputs`: whether a
    `json_schema` response_format becomes Anthropic's `output_config.format` (on the models
    that take it). `reasoning_effort` becomes Claude's thinking (claude_features)."""
    _check_fields(body, structured_outputs=structured_outputs)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise TranslationError("body.model", "is required and must be a string")
    system, messages = _messages(body.get("messages"), image_urls=image_urls)
    try:
        thinking = claude_features.thinking_for(body.get("reasoning_effort"), model_id or model)
        max_tokens = _max_tokens(body, default_max_tokens)
        if thinking is not None:
            claude_features.check_with_thinking(
                body,
                prefilled=messages[-1]["role"] == "assistant",
                continues_tool_use=_answers_tool_call(messages[-1]),
            )
            max_tokens = claude_features.max_tokens_with_budget(
                thinking.budget,
                max_tokens,
                explicit=_max_tokens_field(body) is not None,
                field=_max_tokens_field(body) or "max_completion_tokens",
            )
        schema = _json_schema(body.get("response_format")) if structured_outputs else None
        output_format = (
            claude_features.output_format(schema, model_id or model) if schema is not None else None
        )
    except FeatureRefused as exc:
        raise TranslationError(exc.field, exc.message) from None
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if system:
        params["system"] = system
    params["messages"] = messages
    if thinking is not None:
        params["thinking"] = thinking.thinking
    if (temperature := body.get("temperature")) is not None and thinking is None:
        params["temperature"] = _number(temperature, "temperature", 0, 1)
    if (top_p := body.get("top_p")) is not None:
        params["top_p"] = _number(top_p, "top_p", 0, 1)
    if "temperature" in params and "top_p" in params and one_sampling_field_only(model_id or model):
        del params["top_p"]  # the model refuses both; temperature is the one OpenAI's users set
    if (stop := body.get("stop")) is not None and (stop_sequences := _stop_sequences(stop)):
        params["stop_sequences"] = stop_sequences
    if body.get("tools") is not None:
        params["tools"] = _tools(body["tools"])
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if (user := body.get("user")) is not None:
        if not isinstance(user, str):
            raise TranslationError("body.user", "must be a string")
        params["metadata"] = {"user_id": user}
    output_config: dict[str, Any] = {}
    if thinking is not None and thinking.effort is not None:
        output_config["effort"] = thinking.effort
    if output_format is not None:
        output_config["format"] = output_format
    if output_config:
        params["output_config"] = output_config
    return params


def one_sampling_field_only(model: str) -> bool:
    """True for the Claude models that take `temperature` or `top_p`, not both."""
    match = _CLAUDE_VERSION.search(model)
    if match is None:
        return False
    version = (int(match["major"]), int(match["minor"] or 0))
    return version >= (4, 5) or (match["family"] == "opus" and version >= (4, 1))


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    return None


def _check_fields(body: dict[str, Any], *, structured_outputs: bool) -> None:
    chat_parts.check_fields(
        body,
        takes=_HANDLED | _IGNORED,
        neutral=_UNSUPPORTED,
        refusal="is not supported by Anthropic's Messages API",
    )
    if body.get("stream"):
        raise TranslationError("body.stream", "a batch request cannot stream")
    response_format = body.get("response_format")
    if (
        structured_outputs
        and isinstance(response_format, dict)
        and response_format.get("type") == "json_schema"
    ):
        if _json_schema(response_format) is None:
            raise TranslationError(
                "body.response_format.json_schema.schema", "is required (a JSON Schema object)"
            )
    elif isinstance(response_format, dict) and response_format.get("type") == "json_object":
        raise TranslationError(
            "body.response_format",
            "Claude has no JSON mode ({'type': 'json_object'}): use {'type': 'json_schema', ...} "
            "with a schema, or ask for JSON in the prompt",
        )
    elif response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") != "text"
    ):
        supported = (
            "{'type': 'text'} and {'type': 'json_schema'}" if structured_outputs else "{'type': 'text'}"
        )
        raise TranslationError("body.response_format", f"only {supported} are supported")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise TranslationError("body.modalities", "only ['text'] is supported")


def _answers_tool_call(turn: dict[str, Any]) -> bool:
    content = turn["content"]
    return (
        turn["role"] == "user"
        and isinstance(content, list)
        and any(block["type"] == "tool_result" for block in content)
    )


def _max_tokens_field(body: dict[str, Any]) -> str | None:
    """Which of OpenAI's two limits the line sets, if any."""
    return next((name for name in chat_parts.MAX_TOKENS_FIELDS if body.get(name) is not None), None)


def _max_tokens(body: dict[str, Any], default: int) -> int:
    cap = chat_parts.max_tokens(body)
    return default if cap is None else cap[1]


def _number(value: Any, name: str, low: float, high: float) -> float:
    return chat_parts.number(value, name, low, high, "Anthropic")


def _stop_sequences(stop: Any) -> list[str]:
    # Anthropic refuses a stop sequence that is only whitespace ("\n" is common in OpenAI batches).
    return [s for s in chat_parts.stop_sequences(stop) if s.strip()]


def _messages(raw: Any, *, image_urls: bool = True) -> tuple[str | None, list[dict[str, Any]]]:
    """Anthropic's `system` (the system and developer messages, joined) and turns (consecutive
    messages of one role merged: tool results follow their calls in one user turn). Empty text
    is dropped (Anthropic refuses empty text blocks); a message left with nothing is refused."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    tool_ids = ToolUseIds(raw if isinstance(raw, list) else [])
    for where, message in chat_parts.chat_messages(raw):
        role = message.get("role")
        if role in ("system", "developer"):
            if text := _text_only(message.get("content"), f"{where}.content"):
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content", image_urls=image_urls)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where, tool_ids)
        elif role == "tool":
            blocks = [_tool_result(message, where, tool_ids)]
            role = "user"
        else:
            raise chat_parts.unsupported_role(where, role)
        if not blocks:
            raise TranslationError(
                f"{where}.content", "is empty: Anthropic refuses a message without text, image or tool call"
            )
        chat_parts.append_turn(turns, role, blocks, key="content")
    if not turns:
        raise TranslationError("body.messages", "needs at least one user or assistant message")
    for turn in turns:  # a turn of one text block reads as Anthropic's documented string form
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return ("\n\n".join(system) if system else None), turns


def _has_text(text: str) -> bool:
    """Anthropic refuses text blocks that are empty or only whitespace."""
    return bool(text.strip())


def _text_only(content: Any, where: str) -> str:
    """The text of `content`, its non-empty parts joined ("" when there is none)."""
    if isinstance(content, str):
        return content if _has_text(content) else ""
    return "\n".join(text for text in chat_parts.texts(content, where) if _has_text(text))


def _user_blocks(content: Any, where: str, *, image_urls: bool = True) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if _has_text(content) else []
    blocks = []
    for at, kind, part in chat_parts.content_parts(content, where):
        if (text := chat_parts.text_of_part(kind, part)) is not None:
            if _has_text(text):
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{at}.image_url", urls=image_urls))
        else:
            raise chat_parts.unsupported_part(at, kind, "text and image_url")
    return blocks


def _image(image_url: Any, where: str, *, urls: bool = True) -> dict[str, Any]:
    url = chat_parts.image_url(image_url, where)
    if image := chat_parts.image_data(url, f"{where}.url", IMAGE_MEDIA_TYPES):
        media_type, data = image
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        if not urls:
            raise TranslationError(
                f"{where}.url",
                "Amazon Bedrock takes images as base64 data URLs only (data:image/png;base64,...), "
                "not by URL",
            )
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"{where}.url", "must be an http(s) URL or a base64 data URL")


def _assistant_blocks(message: dict[str, Any], where: str, tool_ids: ToolUseIds) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if content is not None:
        text = _text_only(content, f"{where}.content")
        if text:
            blocks.append({"type": "text", "text": text})
    for call in chat_parts.function_calls(message, where):
        blocks.append(
            {"type": "tool_use", "id": tool_ids.of(call.id), "name": call.name, "input": call.arguments}
        )
    return blocks


def _tool_result(message: dict[str, Any], where: str, tool_ids: ToolUseIds) -> dict[str, Any]:
    call_id = chat_parts.tool_call_id(message, where)
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_ids.of(call_id)}
    if content := _text_only(message.get("content"), f"{where}.content"):
        result["content"] = content  # optional: an empty text block would be refused
    return result


class ToolUseIds:
    """Tool call ids as Anthropic takes them (`^[a-zA-Z0-9_-]+$`), the same for a call and its
    result: an id that matches is kept, another (`functions.get_weather:0`, another provider's) is
    sanitized and suffixed with a hash of itself, salted should it meet an id of the request."""

    def __init__(self, messages: list[Any]) -> None:
        self._mapped: dict[str, str] = {}
        self._taken = {call_id for call_id in _call_ids(messages) if TOOL_USE_ID.match(call_id)}

    def of(self, call_id: str) -> str:
        if TOOL_USE_ID.match(call_id):
            return call_id
        if call_id not in self._mapped:
            stem = _NOT_TOOL_USE_ID.sub("_", call_id).strip("_")[:48] or "call"
            digest = hashlib.sha256(call_id.encode()).hexdigest()
            candidate, salt = f"{stem}_{digest[:8]}", 0
            while candidate in self._taken:
                salt += 1
                candidate = f"{stem}_{digest[:8]}_{salt}"
            self._taken.add(candidate)
            self._mapped[call_id] = candidate
        return self._mapped[call_id]


def _call_ids(messages: list[Any]) -> list[str]:
    ids = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("tool_call_id"), str):
            ids.append(message["tool_call_id"])
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                ids.append(call["id"])
    return ids


def _tools(tools: Any) -> list[dict[str, Any]]:
    translated = []
    for _, function in chat_parts.function_tools(tools):
        entry: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            entry["description"] = function["description"]
        entry["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        translated.append(entry)
    return translated


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    translated: dict[str, Any] | None
    if choice is None:
        translated = None
    elif choice == "none":
        return {"type": "none"}
    elif choice == "auto":
        translated = {"type": "auto"}
    elif choice == "required":
        translated = {"type": "any"}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
    ):
        name = choice["function"].get("name")
        if not isinstance(name, str):
            raise TranslationError("body.tool_choice.function.name", "is required")
        translated = {"type": "tool", "name": name}
    else:
        raise TranslationError("body.tool_choice", "must be 'none', 'auto', 'required' or a function")
    if parallel is False:
        translated = {**(translated or {"type": "auto"}), "disable_parallel_tool_use": True}
    return translated


# Anthropic -> OpenAI ---------------------------------------------------------------------------
def chat_completion(message: dict[str, Any], *, created: int) -> dict[str, Any]:
    """The `chat.completion` of an Anthropic Message (the `message` of a succeeded result).
    Thinking blocks' text becomes `message.reasoning_content` (OpenAI's chat completion has no
    field for it; the name LiteLLM, vLLM and DeepSeek give it); redacted thinking is dropped.
    Their tokens are in `completion_tokens`, as OpenAI counts reasoning tokens (Anthropic does
    not report them apart, so `completion_tokens_details.reasoning_tokens` is not given)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "thinking" and block.get("thinking"):
            thoughts.append(str(block["thinking"]))
        elif block.get("type") == "tool_use":
            calls.append(chat_parts.tool_call(block.get("id"), block.get("name"), block.get("input")))
    reply = chat_parts.assistant_message(texts, calls)
    if thoughts:
        reply["reasoning_content"] = "\n\n".join(thoughts)
    stop_reason = message.get("stop_reason")
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": FINISH_REASONS.get(str(stop_reason), "stop"),
                "logprobs": None,
            }
        ],
        "usage": completion_usage(message.get("usage") or {}),
    }


def completion_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage of Anthropic's: prompt tokens count the cached ones too, as OpenAI's do."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0) + cached
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
