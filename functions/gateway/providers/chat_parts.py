"""Reading an OpenAI chat completions body the same way for every translator (Anthropic
Messages, Gemini, the Bedrock families): its messages, text and image parts, function tool
calls and results, tools, stop sequences, token caps and numbers. Pure functions; each refusal
is a `TranslationError` naming the field. What a provider makes of what is read (blocks or parts,
which values it drops, its own limits) stays in that provider's module."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any, NamedTuple

# The one batch endpoint the translated provider types run.
CHAT_COMPLETIONS = "/v1/chat/completions"


class TranslationError(ValueError):
    """A request field the provider cannot take; `field` is its path in the line, e.g.
    `body.messages[2].content[0]`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# The values of OpenAI's optional fields that ask for nothing: a provider without the feature
# takes the field at one of these and refuses it at any other.
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
DATA_URL = re.compile(r"^data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)
MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")  # the first set wins, as on OpenAI


class FunctionCall(NamedTuple):
    id: str
    name: str
    arguments: dict[str, Any]


def is_neutral(value: Any, neutrals: tuple[Any, ...]) -> bool:
    """Whether `value` is one of `neutrals` (of its type: `False` is not the neutral `0`)."""
    return any(
        value is neutral or (value == neutral and type(value) is type(neutral)) for neutral in neutrals
    )


def neutral_only(*names: str) -> dict[str, tuple[Any, ...]]:
    """The fields `names` with their neutral values: what a provider takes only at those."""
    return {name: NEUTRAL[name] for name in names}


def check_fields(
    body: dict[str, Any], *, takes: Collection[str], neutral: Mapping[str, tuple[Any, ...]], refusal: str
) -> None:
    """Refuses, naming it, a field of `body` the provider neither `takes` nor has at a `neutral`
    value (`refusal` says why), and any field that is not a chat completions one."""
    for name, value in body.items():
        if name in takes:
            continue
        if name in neutral:
            if is_neutral(value, neutral[name]):
                continue
            raise TranslationError(f"body.{name}", refusal)
        raise TranslationError(f"body.{name}", "is not a chat completions field the gateway can translate")


def chat_messages(raw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, message) of each message of `body.messages`, refusing a non-object where it stands."""
    if not isinstance(raw, list) or not raw:
        raise TranslationError("body.messages", "must be a non-empty list")
    for index, message in enumerate(raw):
        where = f"body.messages[{index}]"
        if not isinstance(message, dict):
            raise TranslationError(where, "must be an object")
        yield where, message


def unsupported_role(where: str, role: Any) -> TranslationError:
    return TranslationError(f"{where}.role", f"role {role!r} is not supported")


def append_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], *, key: str) -> None:
    """Adds a message's blocks to the turns, merged into the last turn when of the same role."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def texts(content: Any, where: str) -> list[str]:
    """The texts of a string content or of a list of text parts (any other part is refused)."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(where, "must be a string or a list of text parts")
    found = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise TranslationError(f"{where}[{index}]", "only text parts are supported here")
        found.append(part["text"])
    return found


def content_parts(content: Any, where: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(path, type, part) of each part of a user message's list content."""
    if not isinstance(content, list):
        raise TranslationError(where, "must be a string or a list of content parts")
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        yield f"{where}[{index}]", kind, part


def text_of_part(kind: Any, part: dict[str, Any]) -> str | None:
    """The text of a well-formed text part, else None."""
    return part["text"] if kind == "text" and isinstance(part.get("text"), str) else None


def unsupported_part(where: str, kind: Any, supported: str) -> TranslationError:
    return TranslationError(where, f"content part type {kind!r} is not supported ({supported} are)")


def image_url(image_url: Any, where: str) -> str:
    """The `url` of an `image_url` object (`where` is the object's path)."""
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str) or not url:
        raise TranslationError(f"{where}.url", "is required")
    return url


def image_data(url: str, where: str, media_types: Collection[str]) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL of an image, None for any other URL; an
    image type outside `media_types` is refused (`where` is the url's path)."""
    match = DATA_URL.match(url)
    if match is None:
        return None
    media_type = match["type"].lower()
    if media_type not in media_types:
        raise TranslationError(
            where, f"image type {media_type} is not supported ({', '.join(sorted(media_types))})"
        )
    return media_type, match["data"]


def function_calls(message: dict[str, Any], where: str) -> list[FunctionCall]:
    """The function tool calls of an assistant message (`where` is the message's path)."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"{where}.tool_calls", "must be a list")
    return [function_call(call, f"{where}.tool_calls[{index}]") for index, call in enumerate(calls)]


def function_call(call: Any, where: str) -> FunctionCall:
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
    return FunctionCall(call["id"], function["name"], arguments)


def tool_call_id(message: dict[str, Any], where: str) -> str:
    """The `tool_call_id` a tool message answers (`where` is the message's path)."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise TranslationError(f"{where}.tool_call_id", "is required")
    return call_id


def function_tools(tools: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, function) of each function tool of `body.tools`, its name a string."""
    if not isinstance(tools, list):
        raise TranslationError("body.tools", "must be a list")
    for index, tool in enumerate(tools):
        at = f"body.tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise TranslationError(at, "only function tools are supported")
        if not isinstance(function.get("name"), str):
            raise TranslationError(f"{at}.function.name", "is required")
        yield at, function


def max_tokens(body: dict[str, Any]) -> tuple[str, int] | None:
    """(field, value) of the output cap the line sets, if any; a cap must be a positive integer."""
    for name in MAX_TOKENS_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TranslationError(f"body.{name}", "must be a positive integer")
        return name, value
    return None


def number(value: Any, name: str, low: float, high: float, models: str) -> float:
    """`body.<name>` as a number from `low` to `high` (`models` names whose range it is)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TranslationError(f"body.{name}", "must be a number")
    if not low <= value <= high:
        raise TranslationError(f"body.{name}", f"must be between {low} and {high} for {models} models")
    return value


def stop_sequences(stop: Any) -> list[str]:
    """`body.stop` as a list (a string or a list of strings), none dropped yet."""
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise TranslationError("body.stop", "must be a string or a list of strings")
    return sequences


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """One tool call of an OpenAI chat.completion message."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments or {})},
    }


def assistant_message(texts: list[str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The `message` of an OpenAI chat.completion choice: texts joined, tool calls if any."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message
