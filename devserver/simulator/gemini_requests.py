"""What the simulated Gemini API accepts in one `GenerateContentRequest`, and the response it gives.

Written from Google's references, not from the gateway's translation (this package never imports
the gateway): https://ai.google.dev/api/generate-content (fields, GenerationConfig limits),
https://ai.google.dev/gemini-api/docs/thinking (thinkingLevel on Gemini 3, thinkingBudget ranges
on 2.5, what cannot be turned off), https://ai.google.dev/gemini-api/docs/structured-output
(responseJsonSchema with responseMimeType application/json, not beside responseSchema),
https://ai.google.dev/gemini-api/docs/function-calling (declaration names) and
https://ai.google.dev/gemini-api/docs/thought-signatures (Gemini 3 refuses a function call of the
current turn without its signature). One rule is stricter than the reference states: turns
alternate between `user` and `model` (a client merging same-role messages always sends that).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from typing import Any

# model -> (generation, tier): what the thinking rules depend on.
MODELS: dict[str, tuple[float, str]] = {
    "gemini-3.1-pro-preview": (3.1, "pro"),
    "gemini-3-pro-preview": (3.0, "pro"),
    "gemini-3-flash-preview": (3.0, "flash"),
    "gemini-2.5-pro": (2.5, "pro"),
    "gemini-2.5-flash": (2.5, "flash"),
    "gemini-2.5-flash-lite": (2.5, "flash-lite"),
    "gemini-2.0-flash": (2.0, "flash"),
    "gemini-2.0-flash-lite": (2.0, "flash-lite"),
}
_REQUEST_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    }
)
_GENERATION_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "responseModalities",
        "mediaResolution",
    }
)
_PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
_LEVELS = {
    "pro": {"low", "high"},
    "pro-3.1": {"low", "medium", "high"},
    "flash": {"minimal", "low", "medium", "high"},
    "flash-lite": {"minimal", "low", "medium", "high"},
}
# thinkingBudget ranges of the 2.5 models (-1: dynamic, always accepted).
_BUDGETS = {"pro": (128, 32768), "flash": (0, 24576), "flash-lite": (512, 24576)}
JSON_MIME_TYPES = frozenset({"application/json", "text/x.enum"})


class RequestInvalid(ValueError):
    """An INVALID_ARGUMENT for one request (a batch line's `error`, a create's 400)."""


def check_request(request: Any, model: str) -> None:
    if not isinstance(request, dict):
        raise RequestInvalid("Invalid JSON payload received. The request must be an object.")
    for name in request:
        if name not in _REQUEST_FIELDS:
            raise RequestInvalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    generation, tier = MODELS[model]
    _check_contents(request.get("contents"), signatures_required=generation >= 3)
    if (system := request.get("systemInstruction")) is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts
        ):
            raise RequestInvalid("systemInstruction: only text parts are supported.")
    declared = _check_tools(request.get("tools"))
    _check_tool_config(request.get("toolConfig"), declared)
    config = request.get("generationConfig")
    if config is not None:
        _check_generation(config, generation, tier, model)


def _check_contents(contents: Any, *, signatures_required: bool) -> None:
    if not isinstance(contents, list) or not contents:
        raise RequestInvalid("* GenerateContentRequest.contents: contents is not specified")
    previous = None
    for index, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise RequestInvalid(f"Please use a valid role: user, model. (contents[{index}].role={role!r})")
        if role == previous:
            raise RequestInvalid(f"contents[{index}]: turns must alternate between user and model.")
        previous = role
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise RequestInvalid(
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty."
            )
        for at, part in enumerate(parts):
            _check_part(part, role, f"contents[{index}].parts[{at}]")
    if signatures_required:
        _check_signatures(contents)


def _check_part(part: Any, role: str, where: str) -> None:
    if not isinstance(part, dict):
        raise RequestInvalid(f"{where}: must be an object.")
    present = [name for name in _PART_DATA if name in part]
    if len(present) != 1:
        raise RequestInvalid(
            f"{where}: a part holds exactly one of {', '.join(_PART_DATA)} (found {present})."
        )
    kind = present[0]
    if kind == "text" and not isinstance(part["text"], str):
        raise RequestInvalid(f"{where}.text: must be a string.")
    if kind == "inlineData":
        blob = part["inlineData"]
        if not isinstance(blob, dict) or not blob.get("mimeType") or not isinstance(blob.get("data"), str):
            raise RequestInvalid(f"{where}.inlineData: mimeType and data are required.")
        try:
            base64.b64decode(blob["data"], validate=True)
        except (binascii.Error, ValueError):
            raise RequestInvalid(f"{where}.inlineData.data: Base64 decoding failed.") from None
    if kind == "functionCall":
        call = part["functionCall"]
        if role != "model":
            raise RequestInvalid(f"{where}: a functionCall part belongs to a model turn.")
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RequestInvalid(f"{where}.functionCall.name: is required.")
    if kind == "functionResponse":
        answer = part["functionResponse"]
        if role != "user":
            raise RequestInvalid(f"{where}: a functionResponse part belongs to a user turn.")
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise RequestInvalid(f"{where}.functionResponse.name: is required.")
        if not isinstance(answer.get("response"), dict):
            raise RequestInvalid(f"{where}.functionResponse.response: must be a JSON object.")


def _check_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3: in the current turn (since the last user turn with text), the first function
    call of each model step carries a thoughtSignature."""
    start = 0
    for index, content in enumerate(contents):
        if content["role"] == "user" and any("text" in part for part in content["parts"]):
            start = index
    for index in range(start, len(contents)):
        content = contents[index]
        calls = [part for part in content["parts"] if "functionCall" in part]
        if content["role"] == "model" and calls and not calls[0].get("thoughtSignature"):
            raise RequestInvalid(
                f"Function call is missing a thought_signature in functionCall parts (contents[{index}])."
            )


def _check_tools(tools: Any) -> set[str]:
    declared: set[str] = set()
    if tools is None:
        return declared
    if not isinstance(tools, list):
        raise RequestInvalid("tools: must be a list.")
    for index, tool in enumerate(tools):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        for at, declaration in enumerate(declarations or ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                raise RequestInvalid(
                    f"tools[{index}].function_declarations[{at}].name: Invalid function name. "
                    "Must start with a letter or an underscore, contain only a-z, A-Z, 0-9, "
                    "underscores, dots, colons and dashes, with a maximum length of 64."
                )
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise RequestInvalid(
                    f"tools[{index}].function_declarations[{at}]: parameters and parametersJsonSchema "
                    "cannot both be set."
                )
            declared.add(name)
    return declared


def _check_tool_config(tool_config: Any, declared: set[str]) -> None:
    if tool_config is None:
        return
    config = tool_config.get("functionCallingConfig") if isinstance(tool_config, dict) else None
    if not isinstance(config, dict):
        return
    mode = config.get("mode", "AUTO")
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        raise RequestInvalid(f"toolConfig.functionCallingConfig.mode: invalid value {mode!r}.")
    allowed = config.get("allowedFunctionNames")
    if allowed is not None:
        if mode not in ("ANY", "VALIDATED"):
            raise RequestInvalid("allowedFunctionNames may be set only when the mode is ANY or VALIDATED.")
        unknown = [name for name in allowed if name not in declared]
        if unknown:
            raise RequestInvalid(f"allowedFunctionNames names undeclared functions: {unknown}.")


def _check_generation(config: Any, generation: float, tier: str, model: str) -> None:
    if not isinstance(config, dict):
        raise RequestInvalid("generationConfig: must be an object.")
    for name in config:
        if name not in _GENERATION_FIELDS:
            raise RequestInvalid(
                f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config': "
                "Cannot find field."
            )
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        raise RequestInvalid("generationConfig.stopSequences: at most 5 stop sequences are allowed.")
    count = config.get("candidateCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 8:
        raise RequestInvalid("generationConfig.candidateCount: must be between 1 and 8.")
    _in_range(config, "temperature", 0, 2)
    _in_range(config, "topP", 0, 1)
    if (tokens := config.get("maxOutputTokens")) is not None and (not isinstance(tokens, int) or tokens < 1):
        raise RequestInvalid("generationConfig.maxOutputTokens: must be a positive integer.")
    has_schema = "responseSchema" in config or "responseJsonSchema" in config
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise RequestInvalid("responseSchema and responseJsonSchema cannot both be set.")
    if "responseJsonSchema" in config and generation < 2.5:
        raise RequestInvalid(f"responseJsonSchema is not supported by models/{model}; use responseSchema.")
    if has_schema and config.get("responseMimeType") not in JSON_MIME_TYPES:
        raise RequestInvalid(
            "response_mime_type: a response schema needs responseMimeType application/json or text/x.enum."
        )
    if (thinking := config.get("thinkingConfig")) is not None:
        _check_thinking(thinking, generation, tier, model)


def _in_range(config: dict[str, Any], name: str, low: float, high: float) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise RequestInvalid(f"generationConfig.{name}: must be between {low} and {high}, got {value!r}.")


def _check_thinking(thinking: Any, generation: float, tier: str, model: str) -> None:
    if not isinstance(thinking, dict):
        raise RequestInvalid("thinkingConfig: must be an object.")
    if generation < 2.5:
        raise RequestInvalid(f"Thinking is not supported by models/{model}.")
    level, budget = thinking.get("thinkingLevel"), thinking.get("thinkingBudget")
    if level is not None and budget is not None:
        raise RequestInvalid("thinking_budget and thinking_level cannot both be set.")
    if level is not None:
        if generation < 3:
            raise RequestInvalid(f"Thinking level is not supported for models/{model}; use thinkingBudget.")
        levels = _LEVELS["pro-3.1" if tier == "pro" and generation >= 3.1 else tier]
        if str(level).lower() not in levels:
            raise RequestInvalid(f"thinking_level {level!r} is not supported by models/{model}.")
    if budget is not None:
        if not isinstance(budget, int):
            raise RequestInvalid("thinking_budget: must be an integer.")
        if generation >= 3:
            if budget == 0:
                raise RequestInvalid("Budget 0 is invalid. This model only works in thinking mode.")
            return
        low, high = _BUDGETS[tier]
        if budget == 0 and tier == "pro":
            raise RequestInvalid("Budget 0 is invalid. This model only works in thinking mode.")
        if budget not in (-1, 0) and not low <= budget <= high:
            raise RequestInvalid(
                f"The thinking budget {budget} is invalid. Please choose a value between {low} and {high}."
            )


# The response ------------------------------------------------------------------------------------
def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _prompt_text(request: dict[str, Any]) -> str:
    texts = [p.get("text", "") for p in (request.get("systemInstruction") or {}).get("parts") or ()]
    for content in request.get("contents") or ():
        for part in content.get("parts") or ():
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif "functionResponse" in part:
                texts.append(json.dumps(part["functionResponse"].get("response")))
    return "\n".join(texts)


def _sample(schema: Any) -> Any:
    """A value that fits a JSON Schema (enough for the structured-output tests)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object":
        return {name: _sample(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_sample(schema.get("items"))]
    return {"string": "sample", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def respond(request: dict[str, Any], model: str, key: str) -> dict[str, Any]:
    """A deterministic GenerateContentResponse for a request that passed `check_request`."""
    config = request.get("generationConfig") or {}
    prompt = _prompt_text(request)
    last = prompt.strip().splitlines()[-1] if prompt.strip() else ""
    declared = [
        d["name"] for tool in request.get("tools") or () for d in tool.get("functionDeclarations") or ()
    ]
    calling = (request.get("toolConfig") or {}).get("functionCallingConfig") or {}
    forced = calling.get("mode") == "ANY" and declared
    thinking = config.get("thinkingConfig") or {}
    thinks = MODELS[model][0] >= 2.5 and thinking.get("thinkingBudget") != 0
    candidates, output_tokens = [], 0
    for index in range(int(config.get("candidateCount") or 1)):
        finish = "STOP"
        if forced:
            name = (calling.get("allowedFunctionNames") or declared)[0]
            part: dict[str, Any] = {"functionCall": {"name": name, "args": {}}}
            if MODELS[model][0] >= 3:
                part["thoughtSignature"] = base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()
            text_out = json.dumps(part["functionCall"])
        else:
            if config.get("responseMimeType") == "application/json":
                text_out = json.dumps(
                    _sample(config.get("responseJsonSchema") or config.get("responseSchema")) or {}
                )
            else:
                text_out = f"Simulated Gemini reply {index} to: {last[:80]}"
            for stop in config.get("stopSequences") or ():
                if stop and stop in text_out:
                    text_out = text_out[: text_out.index(stop)]
            if (limit := config.get("maxOutputTokens")) and _tokens(text_out) > limit:
                text_out, finish = text_out[: limit * 4], "MAX_TOKENS"
            part = {"text": text_out}
        output_tokens += _tokens(text_out)
        candidates.append(
            {"content": {"role": "model", "parts": [part]}, "finishReason": finish, "index": index}
        )
    prompt_tokens = _tokens(prompt)
    thoughts = 16 if thinks else 0
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": hashlib.sha256(f"{key}\0{prompt}".encode()).hexdigest()[:22],
    }
