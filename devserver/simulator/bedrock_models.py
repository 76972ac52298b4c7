"""What a model answers to one Bedrock batch record, per model family (InvokeModel bodies).

Anthropic Claude (`anthropic.…`, and cross-region inference profiles such as `us.anthropic.…`):
the Messages API body plus `"anthropic_version": "bedrock-2023-05-31"`, answered with a
Messages API response. Other families answer each record with an error, as a model that does
not take the body would.
"""

from __future__ import annotations

from typing import Any

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


def family(model_id: str) -> str:
    """`anthropic` for `anthropic.claude-…` and `us.anthropic.claude-…` alike."""
    parts = model_id.split("/")[-1].split(".")
    return parts[1] if len(parts) > 2 and len(parts[0]) == 2 else parts[0]


def respond(model_id: str, model_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if family(model_id) != "anthropic":
        return "error", {"errorCode": 400, "errorMessage": f"Model {model_id} is not simulated."}
    if model_input.get("anthropic_version") != BEDROCK_ANTHROPIC_VERSION:
        return "error", {
            "errorCode": 400,
            "errorMessage": f"anthropic_version: expected {BEDROCK_ANTHROPIC_VERSION}",
        }
    if "model" in model_input:
        return "error", {"errorCode": 400, "errorMessage": "model: Extra inputs are not permitted"}
    return _claude_message(model_id, model_input)


def _claude_message(model_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # TODO(h21 merge): the simulator's Anthropic Message responder replaces this.
    messages = body.get("messages")
    if not isinstance(body.get("max_tokens"), int) or not isinstance(messages, list) or not messages:
        return "error", {"errorCode": 400, "errorMessage": "max_tokens and messages are required"}
    text = str(messages[-1].get("content"))
    reply = f"Simulated reply to: {text[:60]}"
    return "output", {
        "id": "msg_bdrk_" + str(abs(hash(text)))[:16],
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(text.split()), "output_tokens": len(reply.split())},
    }
