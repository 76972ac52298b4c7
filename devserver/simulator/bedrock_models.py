"""What a model answers to one Bedrock batch record, per model family (InvokeModel bodies).

Anthropic Claude (`anthropic.…`, and cross-region inference profiles such as `us.anthropic.…`,
`global.anthropic.…`): the Messages API body plus `"anthropic_version": "bedrock-2023-05-31"`,
answered with a Messages API response; images by base64 only (Bedrock refuses URL sources).
Amazon Nova (`amazon.nova-…`), Meta Llama 3 and 4 (`meta.llama3…`, `meta.llama4…`) and OpenAI's
gpt-oss (`openai.gpt-oss-…`): their own bodies and answers (bedrock_nova, bedrock_llama,
bedrock_gpt_oss). Other models answer each record with an error, as a model that does not take
the body would.
"""

from __future__ import annotations

from typing import Any

from . import bedrock_gpt_oss, bedrock_llama, bedrock_nova
from .anthropic_messages import MessageError, message_for

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# The geographic prefixes of cross-region (system-defined) inference profiles.
GEOGRAPHIES = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au"})


def family(model_id: str) -> str:
    """`anthropic` for `anthropic.claude-…`, `us.anthropic.claude-…`, `global.anthropic.…` alike."""
    parts = model_id.split("/")[-1].split(".")
    return parts[1] if len(parts) > 2 and parts[0] in GEOGRAPHIES else parts[0]


def _url_image(model_input: dict[str, Any]) -> str | None:
    """Where the body has an image by URL, if anywhere."""
    for index, message in enumerate(model_input.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for number, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict) or block.get("type") != "image":
                continue
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") != "base64":
                return f"messages.{index}.content.{number}.source"
    return None


def _other_family(model_id: str, model_input: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    name = family(model_id)
    if name == "amazon" and any(
        f"nova-{m}" in model_id for m in ("micro", "lite", "pro", "premier", "2-lite")
    ):
        return bedrock_nova.respond(model_id, model_input)
    if name == "meta" and ("llama3" in model_id or "llama4" in model_id):
        return bedrock_llama.respond(model_id, model_input)
    if name == "openai" and "gpt-oss" in model_id:
        return bedrock_gpt_oss.respond(model_id, model_input)
    return None


def respond(model_id: str, model_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if (answered := _other_family(model_id, model_input)) is not None:
        return answered
    if family(model_id) != "anthropic":
        return "error", {"errorCode": 400, "errorMessage": f"Model {model_id} is not simulated."}
    if model_input.get("anthropic_version") != BEDROCK_ANTHROPIC_VERSION:
        return "error", {
            "errorCode": 400,
            "errorMessage": f"anthropic_version: expected {BEDROCK_ANTHROPIC_VERSION}",
        }
    if "model" in model_input:
        return "error", {"errorCode": 400, "errorMessage": "model: Extra inputs are not permitted"}
    if where := _url_image(model_input):
        return "error", {
            "errorCode": 400,
            "errorMessage": f"{where}: only base64 image sources are supported",
        }
    # The job names the model; the Messages responder checks the rest as Anthropic's API does.
    params = {key: value for key, value in model_input.items() if key != "anthropic_version"}
    try:
        return "output", message_for({**params, "model": model_id}, seed=model_id)
    except MessageError as error:
        return "error", {"errorCode": error.status, "errorMessage": f"{error.type}: {error.message}"}
