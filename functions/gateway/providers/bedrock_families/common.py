"""What the Bedrock families other than Claude read alike from an OpenAI chat completions body:
which fields a family takes, text and images of messages, stop sequences, token caps. Pure
functions; every refusal is a `TranslationError` naming the field (the upload check's message)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from typing import Any

from gateway.providers.chat_to_messages import TranslationError

# Set to anything but these neutral values, a field is a request the family must take.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "n": (None, 1),
    "audio": (None,),
    "prediction": (None,),
    "functions": (None,),
    "function_call": (None,),
    "web_search_options": (None,),
    "reasoning_effort": (None,),
    "seed": (None,),
    "stop": (None, [], ""),
    "tools": (None, []),
    "tool_choice": (None,),
    "parallel_tool_calls": (None, True),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "stream": (None, False),
}
# Accepted by every family and without effect on a batch record.
# (`user` identifies an end user to OpenAI's abuse monitoring: no field of these bodies.)
IGNORED = frozenset(
    {"store", "metadata", "service_tier", "stream_options", "prompt_cache_key", "safety_identifier", "user"}
)
ALWAYS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p"})
DATA_URL = re.compile(r"^data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


def check_fields(body: dict[str, Any], family: str, takes: Collection[str]) -> None:
    """Refuses a field the family cannot take (`takes`: the optional ones it can), naming it."""
    for name, value in body.items():
        if name in ALWAYS or name in IGNORED or name in takes:
            continue
        if name in NEUTRAL:
            if any(_same(value, neutral) for neutral in NEUTRAL[name]):
                continue
            raise TranslationError(f"body.{name}", f"is not supported by {family} models on Amazon Bedrock")
        raise TranslationError(f"body.{name}", "is not a chat completions field the gateway can translate")
    if not isinstance(body.get("model"), str) or not body.get("model"):
        raise TranslationError("body.model", "is required and must be a string")


def _same(value: Any, neutral: Any) -> bool:
    return value is neutral or (value == neutral and type(value) is type(neutral))


def max_tokens(body: dict[str, Any], *, default: int, ceiling: int, family: str) -> int:
    """The line's output cap (`max_completion_tokens`, else `max_tokens`), else the deployment's
    default within the family's ceiling; a cap over the ceiling is refused."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TranslationError(f"body.{name}", "must be a positive integer")
        if value > ceiling:
            raise TranslationError(
                f"body.{name}", f"must be at most {ceiling} for {family} models on Amazon Bedrock"
            )
        return value
    return min(default, ceiling)


def number(body: dict[str, Any], name: str, low: float, high: float, family: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TranslationError(f"body.{name}", "must be a number")
    if not low <= value <= high:
        raise TranslationError(f"body.{name}", f"must be between {low} and {high} for {family} models")
    return value


def stop_sequences(stop: Any) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise TranslationError("body.stop", "must be a string or a list of strings")
    return [s for s in sequences if s]


def messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise TranslationError("body.messages", "must be a non-empty list")
    for index, message in enumerate(raw):
        if not isinstance(message, dict):
            raise TranslationError(f"body.messages[{index}]", "must be an object")
    return raw


def text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string, or text parts joined (others refused)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(where, "must be a string or a list of text parts")
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise TranslationError(f"{where}[{index}]", "only text parts are supported here")
        texts.append(part["text"])
    return "\n".join(texts)


def base64_image(part: dict[str, Any], where: str, media_types: Collection[str]) -> tuple[str, str]:
    """(media subtype, base64 data) of an `image_url` part: Bedrock's Invoke bodies take images
    as base64 only, so an image by URL is refused."""
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str) or not url:
        raise TranslationError(f"{where}.image_url.url", "is required")
    match = DATA_URL.match(url)
    if match is None:
        raise TranslationError(
            f"{where}.image_url.url",
            "Amazon Bedrock takes images as base64 data URLs only (data:image/png;base64,...), not by URL",
        )
    media_type = match["type"].lower()
    if media_type not in media_types:
        raise TranslationError(
            f"{where}.image_url.url",
            f"image type {media_type} is not supported ({', '.join(sorted(media_types))})",
        )
    return media_type.removeprefix("image/"), match["data"]


def tool_arguments(call: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    """(id, name, arguments) of an assistant message's function tool call."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function":
        raise TranslationError(where, "only function tool calls are supported")
    if not isinstance(call.get("id"), str) or not isinstance(function.get("name"), str):
        raise TranslationError(where, "needs an id and a function name")
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        raise TranslationError(f"{where}.function.arguments", "must be a JSON object in a string") from None
    if not isinstance(arguments, dict):
        raise TranslationError(f"{where}.function.arguments", "must be a JSON object in a string")
    return call["id"], function["name"], arguments


def completion_id(record_id: str, model_id: str) -> str:
    """A chat.completion id for a family whose output names none: fixed per record and model."""
    return "chatcmpl-" + hashlib.sha256(f"{model_id}\x00{record_id}".encode()).hexdigest()[:29]


def usage(prompt: Any, completion: Any, cached: Any = 0) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _int(prompt), _int(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": _int(cached)},
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def completion(
    *,
    completion_id: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage,
    }
