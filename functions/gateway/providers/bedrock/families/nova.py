"""OpenAI chat completions <-> Amazon Nova's InvokeModel body (`messages-v1`), for Bedrock batch
records of `amazon.nova-…` models (and their `us.`/`eu.`/`apac.` inference profiles).

The request and response schemas are Nova's documented ones
(https://docs.aws.amazon.com/nova/latest/userguide/complete-request-schema.html and
…/complete-request-schema-response.html): `system` text blocks, `messages` whose first turn is
the user's, content blocks (`text`, `image` as base64 `source.bytes`, `toolUse`, `toolResult`),
`inferenceConfig` (`maxTokens` 1 to 5000, `temperature` above 0 up to 1, `topP` 0 to 1,
`stopSequences`), `toolConfig` (`tools[].toolSpec`, `toolChoice` auto/any/tool). Nova Micro is
text only. Nova takes no `n`, `response_format` or `reasoning_effort` here (refused).
"""

from __future__ import annotations

from typing import Any

from gateway.providers import chat_parts
from gateway.providers.anthropic.messages import ToolUseIds
from gateway.providers.bedrock.families import common
from gateway.providers.chat_parts import TranslationError

FAMILY = "Amazon Nova"
SCHEMA_VERSION = "messages-v1"
MAX_TOKENS = 5000
MIN_TEMPERATURE = 0.00001  # Nova's floor: OpenAI's 0 (greedy) becomes Nova's smallest temperature
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# (`parallel_tool_calls` false has no Nova equivalent: refused; true is Nova's way.)
TAKES = frozenset({"stop", "tools", "tool_choice"})
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def takes(model_id: str) -> bool:
    """The Nova understanding models (text in, text out): not Canvas, Reel or Sonic."""
    return any(f"nova-{name}" in model_id for name in ("micro", "lite", "pro", "premier", "2-lite"))


def takes_images(model_id: str) -> bool:
    return "nova-micro" not in model_id


def model_input(body: dict[str, Any], *, default_max_tokens: int, model_id: str) -> dict[str, Any]:
    common.check_fields(body, FAMILY, TAKES)
    system, turns = _messages(common.messages(body), images=takes_images(model_id))
    config: dict[str, Any] = {
        "maxTokens": common.max_tokens(body, default=default_max_tokens, ceiling=MAX_TOKENS, family=FAMILY)
    }
    if (temperature := common.number(body, "temperature", 0, 1, FAMILY)) is not None:
        config["temperature"] = max(temperature, MIN_TEMPERATURE)
    if (top_p := common.number(body, "top_p", 0, 1, FAMILY)) is not None:
        config["topP"] = top_p
    if body.get("stop") is not None and (stops := common.stop_sequences(body["stop"])):
        config["stopSequences"] = stops
    request: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system:
        request["system"] = [{"text": text} for text in system]
    request["messages"] = turns
    request["inferenceConfig"] = config
    tool_config = _tool_config(body.get("tools"), body.get("tool_choice"), turns)
    if tool_config is not None:
        request["toolConfig"] = tool_config
    return request


def _messages(raw: list[dict[str, Any]], *, images: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """Nova's `system` (system and developer messages) and turns: consecutive messages of one
    role merged (Nova's turns alternate), tool results in the user's turn. Blank text is dropped
    (Nova refuses a blank text block); tool call ids are made to Bedrock's `^[a-zA-Z0-9_-]+$`."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    tool_ids = ToolUseIds(raw)
    for index, message in enumerate(raw):
        where = f"body.messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            if (text := common.text_of(message.get("content"), f"{where}.content")).strip():
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content", images=images)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where, tool_ids)
        elif role == "tool":
            blocks = [_tool_result(message, where, tool_ids)]
            role = "user"
        else:
            raise chat_parts.unsupported_role(where, role)
        if not blocks:
            raise TranslationError(f"{where}.content", "is empty: Nova refuses a message without content")
        chat_parts.append_turn(turns, role, blocks, key="content")
    if not turns or turns[0]["role"] != "user":
        raise TranslationError("body.messages", "Nova's first turn must be the user's")
    return system, turns


def _user_blocks(content: Any, where: str, *, images: bool) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for at, kind, part in chat_parts.content_parts(content, where):
        if (text := chat_parts.text_of_part(kind, part)) is not None:
            if text.strip():
                blocks.append({"text": text})
        elif kind == "image_url":
            if not images:
                raise TranslationError(at, "Amazon Nova Micro takes text only, not images")
            image_format, data = common.base64_image(part, at, IMAGE_TYPES)
            blocks.append({"image": {"format": image_format, "source": {"bytes": data}}})
        else:
            raise chat_parts.unsupported_part(at, kind, "text and image_url")
    return blocks


def _assistant_blocks(message: dict[str, Any], where: str, tool_ids: ToolUseIds) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if (text := common.text_of(message.get("content"), f"{where}.content")).strip():
        blocks.append({"text": text})
    for call in chat_parts.function_calls(message, where):
        blocks.append(
            {"toolUse": {"toolUseId": tool_ids.of(call.id), "name": call.name, "input": call.arguments}}
        )
    return blocks


def _tool_result(message: dict[str, Any], where: str, tool_ids: ToolUseIds) -> dict[str, Any]:
    call_id = chat_parts.tool_call_id(message, where)
    text = common.text_of(message.get("content"), f"{where}.content")
    content = [{"text": text}] if text.strip() else []
    return {"toolResult": {"toolUseId": tool_ids.of(call_id), "content": content}}


def _tool_config(tools: Any, choice: Any, turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    if choice == "none":
        raise TranslationError(
            "body.tool_choice", "Nova has no 'none' tool choice: leave the tools out instead"
        )
    if not tools:
        if any("toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"]):
            raise TranslationError("body.tools", "are required by Nova when the messages hold tool calls")
        if choice is not None:
            raise TranslationError("body.tool_choice", "needs tools")
        return None
    specs = []
    for _, function in chat_parts.function_tools(tools):
        spec: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            spec["description"] = function["description"]
        spec["inputSchema"] = {"json": function.get("parameters") or {"type": "object", "properties": {}}}
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice is not None:
        raise TranslationError("body.tool_choice", "must be 'auto', 'required' or a function")
    return config


def chat_completion(output: dict[str, Any], *, created: int, model_id: str, record_id: str) -> dict[str, Any]:
    """The `chat.completion` of a Nova response (`output.message.content`, `stopReason`, `usage`)."""
    message = (output.get("output") or {}).get("message") or {}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append(chat_parts.tool_call(use.get("toolUseId"), use.get("name"), use.get("input")))
        # reasoningContent is Nova's redacted reasoning: not part of the answer
    reply = chat_parts.assistant_message(texts, calls)
    usage = output.get("usage") or {}
    return common.completion(
        completion_id=common.completion_id(record_id, model_id),
        created=created,
        model=model_id,
        message=reply,
        finish_reason=FINISH_REASONS.get(str(output.get("stopReason")), "stop"),
        # Nova counts cache reads and writes apart from inputTokens; OpenAI's prompt_tokens hold them
        usage=common.usage(
            _tokens(usage, "inputTokens", "cacheReadInputTokenCount", "cacheWriteInputTokenCount"),
            _tokens(usage, "outputTokens"),
            _tokens(usage, "cacheReadInputTokenCount"),
        ),
    )


def _tokens(usage: dict[str, Any], *names: str) -> int:
    total = 0
    for name in names:
        value = usage.get(name)
        total += value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
    return total
