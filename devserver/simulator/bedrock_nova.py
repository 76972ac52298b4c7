"""Amazon Nova understanding models (`amazon.nova-…`) as a Bedrock batch record's model: the
InvokeModel body checked against Nova's documented request schema, answered in its response shape.

Rules (https://docs.aws.amazon.com/nova/latest/userguide/complete-request-schema.html): top-level
keys `schemaVersion` (`messages-v1`), `system` (text blocks), `messages` (required; roles user
and assistant, the first the user's, alternating), `inferenceConfig` (`maxTokens` 1 to 5000,
`temperature` 0.00001 to 1, `topP` 0 to 1, `topK` 0 to 128, `stopSequences` strings),
`toolConfig` (`tools[].toolSpec` with a name of at most 64 characters and `inputSchema.json`,
`toolChoice` one of auto/any/tool, required when the messages hold toolUse or toolResult
blocks). A content block holds one of text, image (`format` jpeg/png/gif/webp, `source.bytes`
base64: the Invoke API's encoding), video, toolUse, toolResult; Nova Micro takes text only.
The answer: `output.message.content`, `stopReason`, `usage` (inputTokens, outputTokens,
totalTokens) (…/complete-request-schema-response.html).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .bedrock_invoke import InvalidInput, answer, in_range, only_keys, require, tokens

TOP_KEYS = frozenset({"schemaVersion", "system", "messages", "inferenceConfig", "toolConfig"})
CONFIG_KEYS = frozenset({"maxTokens", "temperature", "topP", "topK", "stopSequences"})
BLOCK_KINDS = frozenset({"text", "image", "video", "toolUse", "toolResult"})
IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# ToolUseBlock/ToolResultBlock toolUseId in Bedrock's API reference: 1 to 64 of these.
TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_TOKENS = 5000


def respond(model_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        return "output", _respond(model_id, body)
    except InvalidInput as refused:
        return "error", refused.error()


def _respond(model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    only_keys(body, TOP_KEYS)
    require(body.get("schemaVersion", "messages-v1") == "messages-v1", "#/schemaVersion: must be messages-v1")
    system = body.get("system", [])
    require(isinstance(system, list), "#/system: expected type: JSONArray")
    for index, block in enumerate(system):
        require(
            isinstance(block, dict) and set(block) == {"text"} and isinstance(block["text"], str),
            f"#/system/{index}: a system block holds text",
        )
    messages = body.get("messages")
    require(isinstance(messages, list) and bool(messages), "#: required key [messages] not found")
    assert isinstance(messages, list)
    tool_blocks = False
    for index, message in enumerate(messages):
        where = f"#/messages/{index}"
        require(
            isinstance(message, dict) and set(message) <= {"role", "content"},
            f"{where}: role and content only",
        )
        require(message.get("role") in ("user", "assistant"), f"{where}/role: must be user or assistant")
        expected = "user" if index % 2 == 0 else "assistant"
        require(
            message["role"] == expected,
            f"{where}/role: the first turn is the user's and the roles alternate between user and assistant",
        )
        content = message.get("content")
        require(
            isinstance(content, list) and bool(content), f"{where}/content: expected a non-empty JSONArray"
        )
        for number, block in enumerate(content):
            tool_blocks |= _check_block(
                block, f"{where}/content/{number}", images="nova-micro" not in model_id
            )
    config = body.get("inferenceConfig", {})
    require(isinstance(config, dict), "#/inferenceConfig: expected type: JSONObject")
    only_keys(config, CONFIG_KEYS, "#/inferenceConfig")
    in_range(config, "maxTokens", 1, MAX_TOKENS, "#/inferenceConfig", integer=True)
    in_range(config, "temperature", 0.00001, 1, "#/inferenceConfig")
    in_range(config, "topP", 0, 1, "#/inferenceConfig")
    in_range(config, "topK", 0, 128, "#/inferenceConfig", integer=True)
    stops = config.get("stopSequences", [])
    require(
        isinstance(stops, list) and all(isinstance(s, str) and s for s in stops),
        "#/inferenceConfig/stopSequences: expected non-empty strings",
    )
    tool_names = _check_tools(body.get("toolConfig"), tool_blocks)
    last_user = " ".join(
        block["text"]
        for block in messages[-1 if messages[-1]["role"] == "user" else -2]["content"]
        if "text" in block
    )
    digest, text = answer(model_id, last_user)
    input_tokens = sum(tokens(str(block.get("text") or "x")) for m in messages for block in m["content"])
    input_tokens += sum(tokens(block["text"]) for block in system)
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    if "any" in choice or "tool" in choice:
        name = choice["tool"]["name"] if "tool" in choice else tool_names[0]
        use: dict[str, Any] = {"toolUse": {"toolUseId": "tooluse_" + digest[:22], "name": name, "input": {}}}
        return _output([use], "tool_use", input_tokens, 12)
    stop_reason = "end_turn"
    for sequence in stops:
        if sequence in text:
            text, stop_reason = text[: text.index(sequence)], "stop_sequence"
            break
    cap = config.get("maxTokens", MAX_TOKENS)
    if tokens(text) > cap:
        text, stop_reason = text[: cap * 4], "max_tokens"
    return _output([{"text": text}], stop_reason, input_tokens, tokens(text))


def _check_block(block: Any, where: str, *, images: bool) -> bool:
    """Checks one content block; True for a toolUse or toolResult block."""
    require(isinstance(block, dict) and len(block) == 1, f"{where}: a content block holds exactly one member")
    kind = next(iter(block))
    require(kind in BLOCK_KINDS, f"{where}: extraneous key [{kind}] is not permitted")
    value = block[kind]
    if kind == "text":
        require(isinstance(value, str) and bool(value.strip()), f"{where}/text: the text field is blank")
    elif kind == "image":
        require(images, f"{where}: this model doesn't support the image content block")
        require(
            isinstance(value, dict) and value.get("format") in IMAGE_FORMATS,
            f"{where}/image/format: not one of jpeg, png, gif, webp",
        )
        source = value.get("source")
        require(
            isinstance(source, dict) and set(source) == {"bytes"},
            f"{where}/image/source: bytes (base64) required",
        )
        try:
            base64.b64decode(source["bytes"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidInput(f"{where}/image/source/bytes: not valid base64") from None
    elif kind == "video":
        require(images, f"{where}: this model doesn't support the video content block")
    elif kind == "toolUse":
        require(
            isinstance(value, dict)
            and isinstance(value.get("toolUseId"), str)
            and bool(TOOL_USE_ID.match(value["toolUseId"]))
            and isinstance(value.get("name"), str)
            and isinstance(value.get("input"), dict),
            f"{where}/toolUse: toolUseId (matching {TOOL_USE_ID.pattern}), name and input required",
        )
    else:
        require(
            isinstance(value, dict)
            and isinstance(value.get("toolUseId"), str)
            and bool(TOOL_USE_ID.match(value["toolUseId"]))
            and isinstance(value.get("content"), list),
            f"{where}/toolResult: toolUseId (matching {TOOL_USE_ID.pattern}) and content required",
        )
    return kind in ("toolUse", "toolResult")


def _check_tools(config: Any, tool_blocks: bool) -> list[str]:
    if config is None:
        require(
            not tool_blocks,
            "#: toolConfig field must be defined when using toolUse and toolResult content blocks",
        )
        return []
    require(isinstance(config, dict), "#/toolConfig: expected type: JSONObject")
    only_keys(config, {"tools", "toolChoice"}, "#/toolConfig")
    tools = config.get("tools")
    require(isinstance(tools, list) and bool(tools), "#/toolConfig/tools: expected a non-empty JSONArray")
    names = []
    for index, tool in enumerate(tools):
        spec: Any = tool.get("toolSpec") if isinstance(tool, dict) else None
        where = f"#/toolConfig/tools/{index}/toolSpec"
        require(isinstance(spec, dict), f"{where}: required")
        require(
            isinstance(spec.get("name"), str) and bool(TOOL_NAME.match(spec["name"])),
            f"{where}/name: must match {TOOL_NAME.pattern}",
        )
        schema = spec.get("inputSchema")
        require(
            isinstance(schema, dict) and isinstance(schema.get("json"), dict),
            f"{where}/inputSchema/json: required",
        )
        names.append(spec["name"])
    choice = config.get("toolChoice")
    if choice is not None:
        require(
            isinstance(choice, dict) and len(choice) == 1 and next(iter(choice)) in ("auto", "any", "tool"),
            "#/toolConfig/toolChoice: one of auto, any, tool",
        )
        if "tool" in choice:
            require(
                (choice["tool"] or {}).get("name") in names,
                "#/toolConfig/toolChoice/tool/name: not one of the tools",
            )
    return names


def _output(
    content: list[dict[str, Any]], stop_reason: str, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
    }
