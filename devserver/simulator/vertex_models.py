"""What a Gemini model on Vertex AI answers to one batch row: a `GenerateContentRequest` checked
as https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference#request
states, answered with a `GenerateContentResponse` (or the error a request like it gets).

Checked: `contents` is a non-empty list of `{role: user|model, parts: [...]}` with at least one
part each; `systemInstruction` has parts; `generationConfig`'s `temperature` in [0, 2], `topP`
in [0, 1], `candidateCount` in [1, 8], `maxOutputTokens` at least 1, at most 5 `stopSequences`,
and `responseSchema`/`responseJsonSchema` only with `responseMimeType: application/json`.
`labels` (Vertex's request metadata) are keys and values of at most 63 lowercase letters,
digits, `_` or `-`, keys starting with a letter
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .anthropic_messages import MessageError, message_for

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ROLES = frozenset({"user", "model"})
MAX_STOP_SEQUENCES = 5


class RowError(Exception):
    """A row the model refuses: `status` is Google's (`INVALID_ARGUMENT`) for `code`."""

    def __init__(self, code: int, message: str, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def row_status(self) -> str:
        """How a batch prediction output row states it (its `status` field)."""
        error = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return f"Bad Request: {json.dumps(error)}" if self.code == 400 else json.dumps(error)


def _texts(request: dict[str, Any]) -> list[str]:
    """The text of a Gemini request's contents, or of a Claude request's messages."""
    texts: list[str] = []
    for content in request.get("contents") or ():
        for part in content.get("parts") or () if isinstance(content, dict) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                texts.append(block["text"])
    return texts


def prompt_text(request: Any) -> str:
    """The text of a row's contents: where the Vertex form reads a test directive."""
    return "\n".join(_texts(request)) if isinstance(request, dict) else ""


def check_request(request: Any) -> None:
    if not isinstance(request, dict):
        raise RowError(
            400, "Invalid JSON payload received. `request` must be a GenerateContentRequest object."
        )
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RowError(400, "Unable to submit request because it has an empty contents field.")
    for index, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role", "user") not in _ROLES:
            raise RowError(400, f"contents[{index}].role: Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise RowError(400, f"contents[{index}].parts: must not be empty.")
    system = request.get("systemInstruction")
    if system is not None and (not isinstance(system, dict) or not system.get("parts")):
        raise RowError(400, "systemInstruction.parts: must not be empty.")
    _check_generation_config(request.get("generationConfig") or {})
    labels = request.get("labels") or {}
    if not isinstance(labels, dict) or any(
        not _LABEL_KEY.match(str(key)) or not isinstance(value, str) or not _LABEL_VALUE.match(value)
        for key, value in labels.items()
    ):
        raise RowError(
            400, "labels: keys and values must be lowercase letters, digits, '_' or '-', at most 63."
        )


def _check_generation_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise RowError(400, "generationConfig must be an object.")
    ranges = {"temperature": (0.0, 2.0), "topP": (0.0, 1.0), "candidateCount": (1, 8)}
    for name, (low, high) in ranges.items():
        value = config.get(name)
        if value is not None and (not isinstance(value, int | float) or not low <= value <= high):
            raise RowError(400, f"generationConfig.{name}: {value} is out of range [{low}, {high}].")
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise RowError(400, "generationConfig.maxOutputTokens must be a positive integer.")
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES):
        raise RowError(400, f"generationConfig.stopSequences: at most {MAX_STOP_SEQUENCES}.")
    schema = config.get("responseSchema") is not None or config.get("responseJsonSchema") is not None
    if schema and config.get("responseMimeType") != "application/json":
        raise RowError(400, "responseSchema requires responseMimeType application/json.")


def respond(model_id: str, request: Any) -> dict[str, Any]:
    """The GenerateContentResponse of one row (RowError if the request is refused)."""
    check_request(request)
    texts = _texts(request)
    last = texts[-1] if texts else ""
    config = request.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        answer = json.dumps({"answer": last[:40]})
    else:
        answer = f"Simulated answer to: {last[:80]}"
    prompt_tokens = max(1, sum(len(text.split()) for text in texts))
    output_tokens = len(answer.split())
    max_tokens = config.get("maxOutputTokens")
    finish = "STOP"
    if isinstance(max_tokens, int) and output_tokens > max_tokens:
        answer = " ".join(answer.split()[:max_tokens])
        output_tokens, finish = max_tokens, "MAX_TOKENS"
    candidates = [
        {"content": {"role": "model", "parts": [{"text": answer}]}, "finishReason": finish, "index": index}
        for index in range(int(config.get("candidateCount") or 1))
    ]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return {
        "candidates": candidates,
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens * len(candidates),
            "totalTokenCount": prompt_tokens + output_tokens * len(candidates),
        },
        "modelVersion": f"{model_id}@default",
        "responseId": digest[:22],
    }


# Claude on Vertex (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/batch):
# the Messages body without `model`, with `anthropic_version` Vertex's.
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def respond_claude(model_id: str, request: Any) -> dict[str, Any]:
    """The Messages API response of one Claude row (RowError if refused)."""
    if not isinstance(request, dict):
        raise RowError(400, "request: must be an object")
    if request.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
        raise RowError(400, f"anthropic_version: expected {VERTEX_ANTHROPIC_VERSION}")
    if "model" in request:
        raise RowError(400, "model: Extra inputs are not permitted (the job names the model)")
    params = {key: value for key, value in request.items() if key != "anthropic_version"}
    try:
        return message_for({**params, "model": model_id.split("@", 1)[0]}, seed=model_id)
    except MessageError as error:
        raise RowError(error.status, f"{error.type}: {error.message}") from None
