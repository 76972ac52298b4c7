"""OpenAI chat completions <-> Meta Llama's InvokeModel body, for Bedrock batch records of
`meta.llama3…` and `meta.llama4…` models (and their inference profiles).

Bedrock's Llama body is a prompt, not messages
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html): `prompt`
(required) in the model's chat template, `temperature` 0 to 1, `top_p` 0 to 1, `max_gen_len`
1 to 2048, and base64 `images` for the vision models (Llama 3.2 11B and 90B, Llama 4), each
placed by an `<|image|>` token. The answer is `generation`, `prompt_token_count`,
`generation_token_count` and `stop_reason` (`stop` or `length`). No stop sequences, tools, `n`,
`response_format` or `reasoning_effort` (refused).
"""

from __future__ import annotations

from typing import Any

from gateway.providers import chat_parts
from gateway.providers.bedrock.families import common
from gateway.providers.chat_parts import TranslationError

FAMILY = "Meta Llama"
MAX_GEN_LEN = 2048
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
IMAGE_TOKEN = "<|image|>"
FINISH_REASONS = {"stop": "stop", "length": "length"}
_VISION = ("llama3-2-11b", "llama3-2-90b", "llama4-")


def takes(model_id: str) -> bool:
    """Llama 3 and later instruct models (Llama 2's template and limits differ)."""
    return ("llama3" in model_id or "llama4" in model_id) and "instruct" in model_id


def takes_images(model_id: str) -> bool:
    return any(name in model_id for name in _VISION)


def model_input(body: dict[str, Any], *, default_max_tokens: int, model_id: str) -> dict[str, Any]:
    common.check_fields(body, FAMILY, ())
    images: list[str] = []
    turns = _turns(common.messages(body), images, vision=takes_images(model_id))
    request: dict[str, Any] = {"prompt": chat_template(turns, llama4="llama4" in model_id)}
    if (temperature := common.number(body, "temperature", 0, 1, FAMILY)) is not None:
        request["temperature"] = temperature
    if (top_p := common.number(body, "top_p", 0, 1, FAMILY)) is not None:
        request["top_p"] = top_p
    request["max_gen_len"] = common.max_tokens(
        body, default=default_max_tokens, ceiling=MAX_GEN_LEN, family=FAMILY
    )
    if images:
        request["images"] = images
    return request


def chat_template(turns: list[tuple[str, str]], *, llama4: bool = False) -> str:
    """Meta's chat template of (role, text) turns, ending where the assistant's answer begins.
    Llama 3.x: `<|start_header_id|>role<|end_header_id|>` … `<|eot_id|>`; Llama 4:
    `<|header_start|>role<|header_end|>` … `<|eot|>`."""
    start, end, eot = (
        ("<|header_start|>", "<|header_end|>", "<|eot|>")
        if llama4
        else ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    )
    parts = ["<|begin_of_text|>"]
    for role, text in turns:
        parts.append(f"{start}{role}{end}\n\n{text}{eot}")
    parts.append(f"{start}assistant{end}\n\n")
    return "".join(parts)


def _turns(raw: list[dict[str, Any]], images: list[str], *, vision: bool) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(raw):
        where = f"body.messages[{index}]"
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role in ("system", "assistant"):
            if role == "assistant" and message.get("tool_calls"):
                raise TranslationError(
                    f"{where}.tool_calls", "Meta Llama on Amazon Bedrock takes no tool calls"
                )
            text = common.text_of(message.get("content"), f"{where}.content")
        elif role == "user":
            text = _user_text(message.get("content"), f"{where}.content", images, vision=vision)
        elif role == "tool":
            raise TranslationError(f"{where}.role", "Meta Llama on Amazon Bedrock takes no tool results")
        else:
            raise chat_parts.unsupported_role(where, role)
        turns.append((str(role), text))
    if not any(role == "user" for role, _ in turns):
        raise TranslationError("body.messages", "needs at least one user message")
    return turns


def _user_text(content: Any, where: str, images: list[str], *, vision: bool) -> str:
    if not isinstance(content, list):
        return common.text_of(content, where)
    texts: list[str] = []
    for at, kind, part in chat_parts.content_parts(content, where):
        if (text := chat_parts.text_of_part(kind, part)) is not None:
            texts.append(text)
        elif kind == "image_url":
            if not vision:
                raise TranslationError(at, "this Meta Llama model takes text only, not images")
            images.append(common.base64_image(part, at, IMAGE_TYPES)[1])
            texts.append(IMAGE_TOKEN)
        else:
            raise chat_parts.unsupported_part(at, kind, "text and image_url")
    return "".join(text if text == IMAGE_TOKEN else text + "\n" for text in texts).rstrip("\n")


def chat_completion(output: dict[str, Any], *, created: int, model_id: str, record_id: str) -> dict[str, Any]:
    """The `chat.completion` of a Llama response (`generation`, token counts, `stop_reason`)."""
    generation = output.get("generation")
    return common.completion(
        completion_id=common.completion_id(record_id, model_id),
        created=created,
        model=model_id,
        message={
            "role": "assistant",
            "content": generation if isinstance(generation, str) else "",
            "refusal": None,
        },
        finish_reason=FINISH_REASONS.get(str(output.get("stop_reason")), "stop"),
        usage=common.usage(output.get("prompt_token_count"), output.get("generation_token_count")),
    )
