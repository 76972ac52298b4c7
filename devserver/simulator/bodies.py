"""Realistic response bodies for the endpoints a batch can target.

Everything is deterministic for a given request (content, token counts, embedding values), so tests
can compare runs. Token counts are a cheap estimate: about four characters per token.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
import time
from collections.abc import Callable
from typing import Any

# endpoint (without a leading /v1) -> default model when the request body names none
DEFAULT_MODELS = {
    "/chat/completions": "gpt-4o-mini",
    "/responses": "gpt-4o-mini",
    "/completions": "gpt-3.5-turbo-instruct",
    "/embeddings": "text-embedding-3-small",
    "/moderations": "omni-moderation-latest",
    "/images/generations": "gpt-image-1",
    "/images/edits": "gpt-image-1",
    "/videos": "sora-2",
}
# Endpoints whose requests may leave out the model (the API picks its default).
_MODEL_OPTIONAL = frozenset({"/moderations", "/images/generations", "/images/edits", "/videos"})
# A 1x1 transparent PNG: what every simulated image looks like.
_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
FAIL_MODEL = "sim-fail"
EMBEDDING_DIMENSIONS = 16  # real models use 1536+; kept small so big batches stay cheap

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


class RequestFailure(Exception):
    """The request inside the batch fails: it goes to the error file with this status and error."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _text_of(value: Any) -> str:
    """Flatten message content (a string, or a list of typed parts) into plain text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        for key in ("text", "content", "input_text", "refusal"):
            if key in value:
                return _text_of(value[key])
        return ""
    return str(value)


def _snippet(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reply(prompt: str) -> str:
    return f"This is a simulated response to: {_snippet(prompt) or '(empty prompt)'}"


def _max_tokens(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def _clip(text: str, limit: int | None) -> tuple[str, int, str]:
    """Clip ``text`` to ``limit`` tokens; return (text, tokens, finish_reason)."""
    tokens = _tokens(text)
    if limit is not None and tokens > limit:
        return text[: limit * 4], limit, "length"
    return text, tokens, "stop"


def _model(body: dict[str, Any], endpoint: str) -> str:
    model = body.get("model")
    if model is None and endpoint in _MODEL_OPTIONAL:
        return DEFAULT_MODELS[endpoint]
    if not isinstance(model, str) or not model:
        raise RequestFailure(400, "you must provide a model parameter", param="model", code=None)
    if model == FAIL_MODEL:
        raise RequestFailure(
            400,
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return model


# Each builder returns (body, input_tokens, output_tokens).
Usage = tuple[dict[str, Any], int, int]


def chat_completion(body: dict[str, Any], model: str) -> Usage:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestFailure(400, "Missing required parameter: 'messages'.", param="messages")
    prompt_tokens = sum(
        _tokens(_text_of(m.get("content")) if isinstance(m, dict) else "") + 3 for m in messages
    )
    last_user = next(
        (
            _text_of(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    raw_n = body.get("n")
    n = max(1, min(raw_n, 8)) if isinstance(raw_n, int) else 1
    text, completion_each, finish = _clip(
        _reply(last_user), _max_tokens(body, "max_completion_tokens", "max_tokens")
    )
    choices: list[dict[str, Any]] = [
        {
            "index": i,
            "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": finish,
        }
        for i in range(n)
    ]
    completion_tokens = completion_each * n
    return (
        {
            "id": "chatcmpl-" + secrets.token_hex(14),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sim0001",
        },
        prompt_tokens,
        completion_tokens,
    )


def response(body: dict[str, Any], model: str) -> Usage:
    if "input" not in body:
        raise RequestFailure(400, "Missing required parameter: 'input'.", param="input")
    raw_input = body.get("input")
    prompt = _text_of(raw_input) if not isinstance(raw_input, list) else _text_of(raw_input[-1:])
    instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
    input_tokens = _tokens(_text_of(raw_input)) + (_tokens(instructions) if instructions else 0)
    text, output_tokens, finish = _clip(_reply(prompt), _max_tokens(body, "max_output_tokens"))
    created = int(time.time())
    return (
        {
            "id": "resp_" + secrets.token_hex(24),
            "object": "response",
            "created_at": created,
            "status": "completed" if finish == "stop" else "incomplete",
            "background": False,
            "completed_at": created,
            "error": None,
            "incomplete_details": None if finish == "stop" else {"reason": "max_output_tokens"},
            "instructions": instructions,
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": [
                {
                    "id": "msg_" + secrets.token_hex(24),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
                }
            ],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": bool(body.get("store", True)),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        },
        input_tokens,
        output_tokens,
    )


def _vector(seed: str, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.blake2b(f"{counter}:{seed}".encode(), digest_size=64).digest()
        values.extend((v / 2147483648.0) for v in struct.unpack("<16i", digest))
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embedding(body: dict[str, Any], model: str) -> Usage:
    raw = body.get("input")
    if raw is None or raw == "" or raw == []:
        raise RequestFailure(400, "Missing required parameter: 'input'.", param="input")
    items: list[Any]
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise RequestFailure(400, "'input' must be a string or an array.", param="input")
    dims = body.get("dimensions")
    dimensions = int(dims) if isinstance(dims, int) and 0 < dims <= 4096 else EMBEDDING_DIMENSIONS
    data = []
    tokens = 0
    for i, item in enumerate(items):
        if isinstance(item, list):
            tokens += len(item)
            seed = ",".join(str(t) for t in item)
        else:
            seed = str(item)
            tokens += _tokens(seed)
        data.append({"object": "embedding", "index": i, "embedding": _vector(seed, dimensions)})
    return (
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        tokens,
        0,
    )


def completion(body: dict[str, Any], model: str) -> Usage:
    prompt = body.get("prompt")
    if prompt is None:
        raise RequestFailure(400, "Missing required parameter: 'prompt'.", param="prompt")
    prompts = prompt if isinstance(prompt, list) and prompt and isinstance(prompt[0], str) else [prompt]
    limit = _max_tokens(body, "max_tokens") or 16
    choices = []
    prompt_tokens = 0
    completion_tokens = 0
    for i, p in enumerate(prompts):
        p_text = _text_of(p) if not isinstance(p, list) else " ".join(str(t) for t in p)
        prompt_tokens += _tokens(p_text)
        text, used, finish = _clip(" " + _reply(p_text), limit)
        completion_tokens += used
        choices.append({"text": text, "index": i, "logprobs": None, "finish_reason": finish})
    return (
        {
            "id": "cmpl-" + secrets.token_hex(14),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_sim0001",
        },
        prompt_tokens,
        completion_tokens,
    )


def moderation(body: dict[str, Any], model: str) -> Usage:
    raw = body.get("input")
    if raw is None:
        raise RequestFailure(400, "Missing required parameter: 'input'.", param="input")
    items = raw if isinstance(raw, list) and raw and isinstance(raw[0], str) else [raw]
    results = []
    for item in items:
        text = _text_of(item).lower()
        flagged = "violence" in text or "kill" in text
        scores = {c: 0.0001 for c in MODERATION_CATEGORIES}
        if flagged:
            scores["violence"] = 0.91
        results.append(
            {
                "flagged": flagged,
                "categories": {c: scores[c] > 0.5 for c in MODERATION_CATEGORIES},
                "category_scores": scores,
                "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
            }
        )
    return {"id": "modr-" + secrets.token_hex(14), "model": model, "results": results}, 0, 0


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise RequestFailure(400, "Missing required parameter: 'prompt'.", param="prompt")
    return prompt


def image(body: dict[str, Any], model: str) -> Usage:
    """images/generations and images/edits: gpt-image-1's shape, base64 images and token usage."""
    prompt = _prompt(body)
    n = body.get("n")
    count = n if isinstance(n, int) and 0 < n <= 10 else 1
    input_tokens, output_tokens = _tokens(prompt), 272 * count
    return (
        {
            "created": int(time.time()),
            "data": [{"b64_json": _PIXEL_PNG} for _ in range(count)],
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0},
            },
        },
        input_tokens,
        output_tokens,
    )


def video(body: dict[str, Any], model: str) -> Usage:
    """/videos: the queued video job, as a create answers."""
    _prompt(body)
    job = {
        "id": "video_" + secrets.token_hex(16),
        "object": "video",
        "model": model,
        "status": "queued",
        "progress": 0,
        "created_at": int(time.time()),
        "seconds": str(body.get("seconds") or "4"),
        "size": str(body.get("size") or "720x1280"),
    }
    return job, 0, 0


BUILDERS: dict[str, Callable[[dict[str, Any], str], Usage]] = {
    "/chat/completions": chat_completion,
    "/responses": response,
    "/embeddings": embedding,
    "/completions": completion,
    "/moderations": moderation,
    "/images/generations": image,
    "/images/edits": image,
    "/videos": video,
}


def normalize_endpoint(endpoint: str) -> str:
    """``/v1/chat/completions`` and Azure's ``/chat/completions`` name the same endpoint."""
    return endpoint[3:] if endpoint.startswith("/v1/") else endpoint


def build(endpoint: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], int, int]:
    """Answer one batch request: (model, response body, input tokens, output tokens).

    Raises ``RequestFailure`` for a request that fails (model ``sim-fail``, missing fields).
    """
    key = normalize_endpoint(endpoint)
    model = _model(body, key)
    result, input_tokens, output_tokens = BUILDERS[key](body, model)
    return model, result, input_tokens, output_tokens
