"""OpenAI Chat Completions <-> Gemini `generateContent`, for batch lines: pure functions, no I/O.

`generate_content_request` turns the `body` of an OpenAI `/v1/chat/completions` batch line into
a Gemini `GenerateContentRequest` (what one line of a Batch Mode input file carries, and what
Vertex AI's batch prediction takes too); what Gemini has no equivalent for raises
`TranslationError` naming the field, so the upload check fails the line before anything is
paid for. `chat_completion` turns a `GenerateContentResponse` back into OpenAI's
`chat.completion`.

References (checked 2026-12-07):
- request and response fields: https://ai.google.dev/api/generate-content
- functionDeclarations (`parametersJsonSchema`), toolConfig: https://ai.google.dev/api/caching#Tool
- structured output (`responseJsonSchema` takes JSON Schema as is):
  https://ai.google.dev/gemini-api/docs/structured-output
- thinking (`thinkingLevel` for Gemini 3, `thinkingBudget` for 2.5, what each model can turn
  off): https://ai.google.dev/gemini-api/docs/thinking and the `reasoning_effort` table of
  https://ai.google.dev/gemini-api/docs/openai#thinking
- thought signatures of replayed function calls: https://ai.google.dev/gemini-api/docs/thought-signatures
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from gateway.providers import chat_parts
from gateway.providers.chat_parts import TranslationError

__all__ = [
    "TranslationError",
    "chat_completion",
    "check_line",
    "completion_usage",
    "generate_content_request",
]

# Set to anything but its neutral value, these have no Gemini equivalent the gateway maps.
_UNSUPPORTED = chat_parts.neutral_only(
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "audio",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
    # Gemini documents presencePenalty/frequencyPenalty but current models refuse them
    # ("Penalty is not enabled for models/..."): refused here rather than failing every line.
    "frequency_penalty",
    "presence_penalty",
)
# Accepted and without effect on a Gemini request (Gemini has no end-user field).
_IGNORED = frozenset(
    {"store", "metadata", "service_tier", "stream_options", "prompt_cache_key", "safety_identifier", "user"}
)
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "response_format",
        "modalities",
        "reasoning_effort",
    }
)
# A model's name as the Gemini API's paths take it (`models/{model}`): one path segment.
MODEL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$")
# FunctionDeclaration.name (https://ai.google.dev/api/caching#FunctionDeclaration).
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
MAX_STOP_SEQUENCES = 5  # GenerationConfig.stopSequences: "up to 5 character sequences"
MAX_CANDIDATES = 8  # GenerationConfig.candidateCount
# Image types Gemini takes inline (https://ai.google.dev/gemini-api/docs/image-understanding).
IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
AUDIO_MIME_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# `gemini-2.5-flash-lite`, `gemini-3-pro-preview`, `gemini-3.1-pro-preview`, `models/gemini-3-flash`.
_GEMINI_VERSION = re.compile(
    r"gemini-(?P<major>\d+)(?:\.(?P<minor>\d+))?-(?P<tier>flash-lite|flash|pro)", re.IGNORECASE
)
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
# reasoning_effort -> thinkingBudget on Gemini 2.5 (Google's own OpenAI-compatibility table).
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
# The dummy signature Google documents for function calls that no Gemini 3 model produced
# (history from another model, or written by hand): without one Gemini 3 refuses the request.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
}


# OpenAI -> Gemini ------------------------------------------------------------------------------
def generate_content_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The Gemini `GenerateContentRequest` of an OpenAI chat completions `body`; `model` is the
    Gemini model that runs it (its thinking controls depend on it). The request carries no
    `model`: a batch names it once, on `models/{model}:batchGenerateContent`."""
    _check_fields(body)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise TranslationError("body.model", "is required and must be a string")
    system, contents = _contents(body.get("messages"), model=model)
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    declarations = _function_declarations(body["tools"]) if body.get("tools") is not None else []
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
    if (tool_config := _tool_config(body.get("tool_choice"), body.get("parallel_tool_calls"))) is not None:
        named = tool_config["functionCallingConfig"].get("allowedFunctionNames") or []
        if any(name not in {d["name"] for d in declarations} for name in named):
            raise TranslationError("body.tool_choice.function.name", "names no function of body.tools")
        request["toolConfig"] = tool_config
    if generation_config := _generation_config(body, model=model):
        request["generationConfig"] = generation_config
    return request


def check_line(body: dict[str, Any], *, models: dict[str, str] | None = None) -> None:
    """The upload check of one batch line's body for a Gemini deployment (`models`: its
    aliases -> Gemini model names); TranslationError names what cannot be sent."""
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model:
        raise TranslationError("body.model", "is required and must be a string")
    gemini_model = (models or {}).get(model, model)
    if not MODEL_NAME.match(gemini_model):
        raise TranslationError(
            "body.model", f"{gemini_model!r} is not a Gemini model name (e.g. gemini-2.5-flash)"
        )
    generate_content_request(body, model=gemini_model)


def _check_fields(body: dict[str, Any]) -> None:
    chat_parts.check_fields(
        body, takes=_HANDLED | _IGNORED, neutral=_UNSUPPORTED, refusal="is not supported by the Gemini API"
    )
    if body.get("stream"):
        raise TranslationError("body.stream", "a batch request cannot stream")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise TranslationError("body.modalities", "only ['text'] is supported")


def _generation_config(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if (max_tokens := _max_tokens(body)) is not None:
        config["maxOutputTokens"] = max_tokens
    if (temperature := body.get("temperature")) is not None:
        config["temperature"] = _number(temperature, "temperature", 0, 2)
    if (top_p := body.get("top_p")) is not None:
        config["topP"] = _number(top_p, "top_p", 0, 1)
    if (stop := body.get("stop")) is not None and (sequences := _stop_sequences(stop)):
        config["stopSequences"] = sequences
    if (n := body.get("n")) is not None and n != 1:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CANDIDATES:
            raise TranslationError("body.n", f"must be an integer from 1 to {MAX_CANDIDATES} for Gemini")
        config["candidateCount"] = n
    if (seed := body.get("seed")) is not None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TranslationError("body.seed", "must be an integer")
        config["seed"] = seed
    config.update(_response_format(body.get("response_format"), model=model))
    if (effort := body.get("reasoning_effort")) is not None:
        config["thinkingConfig"] = thinking_config(effort, model=model)
    return config


def _max_tokens(body: dict[str, Any]) -> int | None:
    cap = chat_parts.max_tokens(body)
    return None if cap is None else cap[1]


def _number(value: Any, name: str, low: float, high: float) -> float:
    return chat_parts.number(value, name, low, high, "Gemini")


def _stop_sequences(stop: Any) -> list[str]:
    sequences = [s for s in chat_parts.stop_sequences(stop) if s]
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise TranslationError("body.stop", f"Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences")
    return sequences


def _response_format(response_format: Any, *, model: str) -> dict[str, Any]:
    if response_format is None:
        return {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        json_schema = response_format.get("json_schema")
        schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
        if not isinstance(schema, dict):
            raise TranslationError(
                "body.response_format.json_schema.schema", "is required (a JSON Schema object)"
            )
        version = gemini_version(model)
        if version is None or version[:2] < (2, 5):
            raise TranslationError(
                "body.response_format",
                f"a JSON Schema response format needs Gemini 2.5 or later, not {model}",
            )
        # responseJsonSchema takes JSON Schema as written; responseSchema only an OpenAPI subset.
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise TranslationError(
        "body.response_format",
        "only {'type': 'text'}, {'type': 'json_object'} and {'type': 'json_schema'} are supported",
    )


def gemini_version(model: str) -> tuple[int, int, str] | None:
    """(major, minor, tier) of a Gemini model name, tier one of flash-lite, flash, pro."""
    match = _GEMINI_VERSION.search(model)
    if match is None:
        return None
    return int(match["major"]), int(match["minor"] or 0), match["tier"].lower()


def thinking_config(effort: Any, *, model: str) -> dict[str, Any]:
    """Gemini's `thinkingConfig` for an OpenAI `reasoning_effort` on `model`: a thinkingLevel on
    Gemini 3 and later, a thinkingBudget on 2.5; refused where the model cannot (no thinking
    before 2.5; thinking off on a Pro model or on Gemini 3)."""
    where = "body.reasoning_effort"
    if effort not in REASONING_EFFORTS:
        raise TranslationError(where, f"must be one of {', '.join(REASONING_EFFORTS)}")
    version = gemini_version(model)
    if version is None or version[:2] < (2, 5):
        raise TranslationError(
            where, f"model {model} has no thinking to configure (Gemini 2.5 and later have)"
        )
    major, minor, tier = version
    if major >= 3:
        if effort == "none":
            raise TranslationError(where, f"'none': thinking cannot be turned off on {model}")
        if tier == "pro":  # Pro levels: low and high (medium too from 3.1)
            levels = {"minimal": "low", "low": "low", "medium": "medium" if minor >= 1 else "high"}
            return {"thinkingLevel": levels.get(effort, "high")}
        return {"thinkingLevel": {"xhigh": "high"}.get(effort, effort)}
    if effort == "none":
        if tier == "pro":
            raise TranslationError(where, f"'none': thinking cannot be turned off on {model}")
        return {"thinkingBudget": 0}
    budget = _THINKING_BUDGETS[effort]
    if tier == "pro" and effort == "xhigh":
        budget = 32768  # 2.5 Pro's largest budget
    return {"thinkingBudget": budget}


def _contents(raw: Any, *, model: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The system instruction (system and developer messages, joined) and the turns, roles
    `user` and `model`, consecutive messages of one role merged (tool results follow their
    calls as one user turn of functionResponse parts)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    calls = _CallNames()
    signed = (gemini_version(model) or (0, 0, ""))[0] >= 3
    for where, message in chat_parts.chat_messages(raw):
        role = message.get("role")
        if role in ("system", "developer"):
            if text := _text_only(message.get("content"), f"{where}.content"):
                system.append(text)
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), f"{where}.content")
            turn_role = "user"
        elif role == "assistant":
            parts = _model_parts(message, where, calls, signed=signed)
            turn_role = "model"
        elif role == "tool":
            parts = [_function_response(message, where, calls)]
            turn_role = "user"
        else:
            raise chat_parts.unsupported_role(where, role)
        if not parts:
            raise TranslationError(f"{where}.content", "is empty: Gemini refuses a turn without parts")
        chat_parts.append_turn(turns, turn_role, parts, key="parts")
    if not turns:
        raise TranslationError("body.messages", "needs at least one user or assistant message")
    return ("\n\n".join(system) if system else None), turns


def _text_only(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    return "\n".join(text for text in chat_parts.texts(content, where) if text)


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for at, kind, part in chat_parts.content_parts(content, where):
        if (text := chat_parts.text_of_part(kind, part)) is not None:
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{at}.image_url"))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), f"{at}.input_audio"))
        elif kind == "file":
            parts.append(_pdf(part.get("file"), f"{at}.file"))
        else:
            raise chat_parts.unsupported_part(at, kind, "text, image_url, input_audio and file")
    return parts


def _audio(audio: Any, where: str) -> dict[str, Any]:
    """OpenAI's base64 `input_audio` (wav or mp3) as inline audio
    (https://ai.google.dev/gemini-api/docs/audio#supported-formats)."""
    data = audio.get("data") if isinstance(audio, dict) else None
    audio_format = audio.get("format") if isinstance(audio, dict) else None
    if not isinstance(data, str) or not data:
        raise TranslationError(f"{where}.data", "is required (base64 audio)")
    if audio_format not in AUDIO_MIME_TYPES:
        raise TranslationError(f"{where}.format", f"must be one of {', '.join(sorted(AUDIO_MIME_TYPES))}")
    return {"inlineData": {"mimeType": AUDIO_MIME_TYPES[audio_format], "data": data}}


def _pdf(file: Any, where: str) -> dict[str, Any]:
    """OpenAI's `file` part with its base64 `file_data` (a PDF data URL) as inline PDF
    (https://ai.google.dev/gemini-api/docs/document-processing); a `file_id` names a file of the
    gateway's, which a Gemini request cannot reach."""
    data = file.get("file_data") if isinstance(file, dict) else None
    match = chat_parts.DATA_URL.match(data) if isinstance(data, str) else None
    if match is None or match["type"].lower() != "application/pdf":
        raise TranslationError(
            f"{where}.file_data",
            "Gemini takes a document as a base64 PDF data URL (data:application/pdf;base64,...)",
        )
    return {"inlineData": {"mimeType": "application/pdf", "data": match["data"]}}


def _image(image_url: Any, where: str) -> dict[str, Any]:
    url = chat_parts.image_url(image_url, where)
    if image := chat_parts.image_data(url, f"{where}.url", IMAGE_MIME_TYPES):
        mime_type, data = image
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    # Gemini's fileData takes a Files API uri, not a web address: the gateway fetches nothing
    # for a batch line, so an image by URL is refused rather than sent to fail later.
    raise TranslationError(
        f"{where}.url",
        "Gemini takes images as base64 data URLs (data:image/png;base64,...), not by http(s) URL",
    )


class _CallNames:
    """The function name of each tool call id seen so far (a functionResponse names its function)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}


def _model_parts(
    message: dict[str, Any], where: str, calls: _CallNames, *, signed: bool
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if (text := _text_only(message.get("content"), f"{where}.content")) != "":
        parts.append({"text": text})
    for index, call in enumerate(chat_parts.function_calls(message, where)):
        calls.names[call.id] = call.name
        part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name, "args": call.arguments}}
        if signed and index == 0:  # Gemini 3 checks the signature of a step's first call
            part["thoughtSignature"] = SKIP_THOUGHT_SIGNATURE
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], where: str, calls: _CallNames) -> dict[str, Any]:
    call_id = chat_parts.tool_call_id(message, where)
    name = calls.names.get(call_id)
    if name is None:
        raise TranslationError(
            f"{where}.tool_call_id",
            f"{call_id!r} answers no earlier assistant tool call (Gemini needs its name)",
        )
    text = _text_only(message.get("content"), f"{where}.content")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    # FunctionResponse.response is a JSON object: a JSON object result is passed as is, any
    # other result under "result".
    response = parsed if isinstance(parsed, dict) else {"result": text}
    return {"functionResponse": {"id": call_id, "name": name, "response": response}}


def _function_declarations(tools: Any) -> list[dict[str, Any]]:
    declarations = []
    for at, function in chat_parts.function_tools(tools):
        if not function["name"]:
            raise TranslationError(f"{at}.function.name", "is required")
        if not FUNCTION_NAME.match(function["name"]):
            raise TranslationError(
                f"{at}.function.name",
                "Gemini takes function names that start with a letter or an underscore, then letters, "
                "digits, underscores, dots, colons or dashes (64 at most)",
            )
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            if not isinstance(function["parameters"], dict):
                raise TranslationError(f"{at}.function.parameters", "must be a JSON Schema object")
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations


def _tool_config(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if parallel is False:
        raise TranslationError(
            "body.parallel_tool_calls",
            "false is not supported: Gemini has no switch for parallel function calls",
        )
    if choice is None:
        return None
    if choice == "none":
        mode: dict[str, Any] = {"mode": "NONE"}
    elif choice == "auto":
        mode = {"mode": "AUTO"}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
    ):
        name = choice["function"].get("name")
        if not isinstance(name, str) or not name:
            raise TranslationError("body.tool_choice.function.name", "is required")
        mode = {"mode": "ANY", "allowedFunctionNames": [name]}
    else:
        raise TranslationError("body.tool_choice", "must be 'none', 'auto', 'required' or a function")
    return {"functionCallingConfig": mode}


# Gemini -> OpenAI ------------------------------------------------------------------------------
def chat_completion(response: dict[str, Any], *, model: str, custom_id: str, created: int) -> dict[str, Any]:
    """The `chat.completion` of a Gemini `GenerateContentResponse` (one result line's
    `response`). Tool call ids are Gemini's `functionCall.id` when it sends one, otherwise
    derived from `custom_id` and the call's place, so that one result reads the same twice."""
    choices = [
        _choice(candidate, position, custom_id=custom_id)
        for position, candidate in enumerate(response.get("candidates") or ())
        if isinstance(candidate, dict)
    ]
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "finish_reason": "content_filter",
                "logprobs": None,
            }
        ]
    response_id = response.get("responseId")
    if not isinstance(response_id, str) or not response_id:
        response_id = hashlib.sha256(custom_id.encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": created,
        "model": response.get("modelVersion") or model,
        "choices": choices,
        "usage": completion_usage(response.get("usageMetadata") or {}),
    }


def _choice(candidate: dict[str, Any], position: int, *, custom_id: str) -> dict[str, Any]:
    index = candidate.get("index", position)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    content = candidate.get("content")
    for part in (content.get("parts") if isinstance(content, dict) else None) or ():
        if not isinstance(part, dict) or part.get(
            "thought"
        ):  # a thought summary: OpenAI's chat completion has no place for it
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            call_id = call.get("id") or _call_id(custom_id, index, len(calls))
            calls.append(chat_parts.tool_call(call_id, call.get("name"), call.get("args")))
    message = chat_parts.assistant_message(texts, calls)
    finish = FINISH_REASONS.get(str(candidate.get("finishReason")), "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    return {"index": index, "message": message, "finish_reason": finish, "logprobs": None}


def _call_id(custom_id: str, candidate: int, position: int) -> str:
    digest = hashlib.sha256(f"{custom_id}\0{candidate}\0{position}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def completion_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage of Gemini's `usageMetadata`: thinking tokens count as completion tokens
    (as OpenAI's reasoning tokens do), cached tokens are part of the prompt on both sides."""
    prompt = int(usage.get("promptTokenCount") or 0) + int(usage.get("toolUsePromptTokenCount") or 0)
    thoughts = int(usage.get("thoughtsTokenCount") or 0)
    completion = int(usage.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(usage.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }
