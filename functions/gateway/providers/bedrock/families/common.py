"""What the Bedrock families other than Claude read alike from an OpenAI chat completions body:
which fields a family takes, text and images of messages, stop sequences, token caps. Pure
functions; every refusal is a `TranslationError` naming the field (the upload check's message)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from gateway.providers import chat_parts
from gateway.providers.chat_parts import TranslationError

# Accepted by every family and without effect on a batch record.
# (`user` identifies an end user to OpenAI's abuse monitoring: no field of these bodies.)
IGNORED = frozenset(
    {"store", "metadata", "service_tier", "stream_options", "prompt_cache_key", "safety_identifier", "user"}
)
ALWAYS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p"})


def check_fields(body: dict[str, Any], family: str, takes: Collection[str]) -> None:
    """Refuses a field the family cannot take (`takes`: the optional ones it can), naming it."""
    # Set to anything but its neutral value, an optional field is a request the family must take.
    chat_parts.check_fields(
        body,
        takes=ALWAYS | IGNORED | set(takes),
        neutral=chat_parts.NEUTRAL,
        refusal=f"is not supported by {family} models on Amazon Bedrock",
    )
    if not isinstance(body.get("model"), str) or not body.get("model"):
        raise TranslationError("body.model", "is required and must be a string")


def max_tokens(body: dict[str, Any], *, default: int, ceiling: int, family: str) -> int:
    """The line's output cap (`max_completion_tokens`, else `max_tokens`), else the deployment's
    default within the family's ceiling; a cap over the ceiling is refused."""
    cap = chat_parts.max_tokens(body)
    if cap is None:
        return min(default, ceiling)
    name, value = cap
    if value > ceiling:
        raise TranslationError(
            f"body.{name}", f"must be at most {ceiling} for {family} models on Amazon Bedrock"
        )
    return value


def number(body: dict[str, Any], name: str, low: float, high: float, family: str) -> float | None:
    value = body.get(name)
    return None if value is None else chat_parts.number(value, name, low, high, family)


def stop_sequences(stop: Any) -> list[str]:
    return [s for s in chat_parts.stop_sequences(stop) if s]


def messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`body.messages`, every one an object (checked before any is read)."""
    return [message for _, message in chat_parts.chat_messages(body.get("messages"))]


def text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string, or text parts joined (others refused)."""
    return "" if content is None else "\n".join(chat_parts.texts(content, where))


def base64_image(part: dict[str, Any], where: str, media_types: Collection[str]) -> tuple[str, str]:
    """(media subtype, base64 data) of an `image_url` part: Bedrock's Invoke bodies take images
    as base64 only, so an image by URL is refused."""
    url = chat_parts.image_url(part.get("image_url"), f"{where}.image_url")
    image = chat_parts.image_data(url, f"{where}.image_url.url", media_types)
    if image is None:
        raise TranslationError(
            f"{where}.image_url.url",
            "Amazon Bedrock takes images as base64 data URLs only (data:image/png;base64,...), not by URL",
        )
    media_type, data = image
    return media_type.removeprefix("image/"), data


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
