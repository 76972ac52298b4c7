"""Anthropic's Messages API responder: a plausible `Message` (with usage) for a request's params.

Reusable by every simulated form that runs Claude requests (Anthropic's Message Batches,
Claude records of Bedrock's batch inference). A request is checked the way the Messages API
checks it (model, max_tokens, messages, and the rules it states: no whitespace-only stop
sequence, no empty text block or message, tool_use ids matching ``^[a-zA-Z0-9_-]+$``, and
`temperature` with `top_p` refused by Claude Opus 4.1 and the 4.5 models and later; thinking,
effort and structured outputs per model, claude_rules); `MessageError` carries Anthropic's error
type and message. A request that thinks answers a thinking block before its text (its tokens
counted in output_tokens); one with a json_schema format answers JSON that follows it. The model
``sim-fail`` always fails, as in the OpenAI simulator.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .claude_rules import RuleBroken, instance_of, output_schema, thinking_of, thinking_shown

FAIL_MODEL = "sim-fail"
ROLES = ("user", "assistant")
TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# Family-first Claude names (claude-opus-4-1-…, anthropic.claude-sonnet-4-5-…-v1:0): the version.
_CLAUDE = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?")


class MessageError(Exception):
    """An error the Messages API would answer: `type` is Anthropic's error type."""

    def __init__(self, type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.status = status

    def error_response(self, request_id: str | None = None) -> dict[str, Any]:
        """Anthropic's ErrorResponse: ``{"type": "error", "error": {type, message}}``."""
        body: dict[str, Any] = {"type": "error", "error": {"type": self.type, "message": self.message}}
        if request_id:
            body["request_id"] = request_id
        return body


def tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text") or "") for block in content if isinstance(block, dict))
    return ""


def message_for(params: Any, *, seed: str = "") -> dict[str, Any]:
    """The Message the API would answer for `params`, or MessageError."""
    if not isinstance(params, dict):
        raise MessageError("invalid_request_error", "params: Input should be an object")
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise MessageError("invalid_request_error", "model: Field required")
    if model == FAIL_MODEL:
        raise MessageError("not_found_error", f"model: {model}", status=404)
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise MessageError("invalid_request_error", "max_tokens: Field required")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MessageError("invalid_request_error", "messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise MessageError(
                "invalid_request_error", f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
    if messages[0].get("role") != "user":
        raise MessageError("invalid_request_error", "messages: the first message must use the 'user' role")
    _check_contents(messages)
    _check_stop_sequences(params.get("stop_sequences"))
    if "temperature" in params and "top_p" in params and _one_sampling_field(model):
        raise MessageError(
            "invalid_request_error",
            "`temperature` and `top_p` cannot both be specified for this model. Please use only one.",
        )
    try:
        thinking = thinking_of(params, model)
        schema = output_schema(params, model)
    except RuleBroken as broken:
        raise MessageError("invalid_request_error", str(broken)) from None
    system = params.get("system")
    input_tokens = tokens(_text(system)) + sum(tokens(_text(m.get("content"))) + 3 for m in messages)
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    digest = hashlib.sha256(f"{seed}\x00{model}\x00{last_user}".encode()).hexdigest()
    tool_choice = params.get("tool_choice") or {}
    tools = params.get("tools") or []
    if tools and tool_choice.get("type") in ("any", "tool"):
        name = tool_choice.get("name") or tools[0].get("name")
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": "toolu_" + digest[:24], "name": name, "input": {}}
        ]
        return _message(digest, model, content, "tool_use", None, input_tokens, 12)
    text = f"This is a simulated response to: {last_user[:60] or '(empty prompt)'}"
    if schema is not None:
        text = json.dumps(instance_of(schema))
    thought: list[dict[str, Any]] = []
    thinking_tokens = 0
    if thinking is not None:
        reasoning = f"Simulated reasoning about: {last_user[:60] or '(empty prompt)'}"
        shown = reasoning if thinking_shown(params, model) else ""  # billed all the same
        thought = [{"type": "thinking", "thinking": shown, "signature": "sig_" + digest[:32]}]
        thinking_tokens = tokens(reasoning)
        max_tokens -= thinking_tokens  # thinking is spent from max_tokens
    stop_reason, stop_sequence = "end_turn", None
    for sequence in params.get("stop_sequences") or ():
        if sequence and sequence in text:
            text, stop_reason, stop_sequence = text[: text.index(sequence)], "stop_sequence", sequence
            break
    if tokens(text) > max_tokens:
        text, stop_reason, stop_sequence = text[: max_tokens * 4], "max_tokens", None
    content = [*thought, {"type": "text", "text": text}]
    spent = tokens(text) + thinking_tokens
    return _message(digest, model, content, stop_reason, stop_sequence, input_tokens, spent)


def _one_sampling_field(model: str) -> bool:
    match = _CLAUDE.search(model)
    if match is None:
        return False
    family, major, minor = match[1], int(match[2]), int(match[3] or 0)
    return (major, minor) >= (4, 5) or (family == "opus" and (major, minor) >= (4, 1))


def _check_stop_sequences(sequences: Any) -> None:
    for index, sequence in enumerate(sequences or ()):
        if not isinstance(sequence, str) or not sequence.strip():
            raise MessageError(
                "invalid_request_error",
                f"stop_sequences.{index}: each stop sequence must contain non-whitespace characters",
            )


def _check_contents(messages: list[Any]) -> None:
    last = len(messages) - 1
    for index, message in enumerate(messages):
        content = message.get("content")
        empty = content == [] or (isinstance(content, str) and not content)
        if empty and not (index == last and message.get("role") == "assistant"):
            raise MessageError(
                "invalid_request_error",
                f"messages.{index}: all messages must have non-empty content except for the optional "
                "final assistant message",
            )
        for number, block in enumerate(content if isinstance(content, list) else ()):
            _check_block(block, f"messages.{index}.content.{number}")


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise MessageError("invalid_request_error", f"{where}: Input should be an object")
    kind = block.get("type")
    if kind == "text" and not str(block.get("text") or "").strip():
        raise MessageError(
            "invalid_request_error", f"{where}: text content blocks must contain non-whitespace text"
        )
    for name in ("id",) if kind == "tool_use" else ("tool_use_id",) if kind == "tool_result" else ():
        if not isinstance(block.get(name), str) or not TOOL_USE_ID.match(block[name]):
            raise MessageError(
                "invalid_request_error",
                f"{where}.{name}: String should match pattern '{TOOL_USE_ID.pattern}'",
            )
    if kind == "tool_result" and isinstance(block.get("content"), list):
        for number, inner in enumerate(block["content"]):
            _check_block(inner, f"{where}.content.{number}")


def _message(
    digest: str,
    model: str,
    content: list[dict[str, Any]],
    stop_reason: str,
    stop_sequence: str | None,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    return {
        "id": "msg_" + digest[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
