"""Meta Llama 3 and 4 instruct models (`meta.llama3…`, `meta.llama4…`) as a Bedrock batch
record's model: the InvokeModel body checked as Bedrock's Llama page states, answered in its
response shape.

Rules (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html): keys
`prompt` (required, a string), `temperature` 0 to 1, `top_p` 0 to 1, `max_gen_len` 1 to 2048,
`images` (base64 strings; the vision models only: Llama 3.2 11B and 90B, Llama 4). The answer:
`generation`, `prompt_token_count`, `generation_token_count`, `stop_reason` (`stop`, or `length`
when `max_gen_len` cut it).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .bedrock_invoke import InvalidInput, answer, in_range, only_keys, require, tokens

KEYS = frozenset({"prompt", "temperature", "top_p", "max_gen_len", "images"})
MAX_GEN_LEN = 2048
DEFAULT_MAX_GEN_LEN = 512
VISION = ("llama3-2-11b", "llama3-2-90b", "llama4-")
# Meta's chat template tokens (Llama 3: start_header_id…eot_id; Llama 4: header_start…eot).
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
_LAST_USER = re.compile(
    r"user<\|(?:end_header_id|header_end)\|>\n\n(?P<text>.*?)<\|eot(?:_id)?\|>", re.DOTALL
)


def respond(model_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        return "output", _respond(model_id, body)
    except InvalidInput as refused:
        return "error", refused.error()


def _respond(model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    only_keys(body, KEYS)
    prompt = body.get("prompt")
    require(isinstance(prompt, str), "#: required key [prompt] not found")
    assert isinstance(prompt, str)
    require(bool(prompt.strip()), "#/prompt: the prompt is empty")
    in_range(body, "temperature", 0, 1, "#")
    in_range(body, "top_p", 0, 1, "#")
    in_range(body, "max_gen_len", 1, MAX_GEN_LEN, "#", integer=True)
    images = body.get("images")
    if images is not None:
        require(any(name in model_id for name in VISION), "#/images: this model does not take images")
        require(isinstance(images, list) and bool(images), "#/images: expected a non-empty JSONArray")
        for index, image in enumerate(images):
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidInput(f"#/images/{index}: not valid base64") from None
    users = _LAST_USER.findall(prompt)
    last_user = _SPECIAL.sub("", users[-1] if users else prompt).strip()
    _, text = answer(model_id, last_user)
    stop_reason = "stop"
    cap = body.get("max_gen_len", DEFAULT_MAX_GEN_LEN)
    if tokens(text) > cap:
        text, stop_reason = text[: cap * 4], "length"
    return {
        "generation": text,
        "prompt_token_count": tokens(prompt),
        "generation_token_count": tokens(text),
        "stop_reason": stop_reason,
    }
