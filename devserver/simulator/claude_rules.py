"""The Messages API's rules for thinking, effort and structured outputs, per Claude model, as
Anthropic and Bedrock document them (written from the references, not from the gateway):

- thinking blocks' text omitted by default from Opus 4.7 on (`display: "summarized"` shows it)
  (https://platform.claude.com/docs/en/about-claude/models/whats-new-claude-4-7);
- extended thinking `{"type": "enabled", "budget_tokens": N}`: N >= 1024 and < max_tokens; on
  Claude Sonnet 3.7 and the Claude 4 models up to 4.6; Claude 4.7 and later refuse it
  (https://platform.claude.com/docs/en/build-with-claude/extended-thinking);
- adaptive thinking `{"type": "adaptive"}`: Claude Opus/Sonnet 4.6 and later; Fable, Mythos
  and Opus 4.7 think adaptively only, and refuse `disabled` as Fable and Mythos do
  (https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html);
- with thinking on: temperature 1 only, top_p 0.95 to 1, no top_k, no forced tool, no prefill,
  and a tool result answers an assistant turn that starts with its thinking block;
- `output_config.effort`: Claude Opus 4.5 (low, medium, high), the 4.6 models (and max), 4.7 and
  later (and xhigh; not Mythos Preview) (https://platform.claude.com/docs/en/build-with-claude/effort);
- `output_config.format` json_schema: Claude 4.5 models and later; every object schema sets
  `additionalProperties: false`; no numeric, length or item-count constraints
  (https://platform.claude.com/docs/en/build-with-claude/structured-outputs).
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(?:(\d+)(?:-(\d)(?!\d))?|(preview))")
_OLD_NAME = re.compile(r"claude-(\d)-(?:(\d)-)?(opus|sonnet|haiku)")
MIN_THINKING_BUDGET = 1024
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
_FORBIDDEN_SCHEMA_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
)


class RuleBroken(ValueError):
    """An invalid_request_error the API answers (400)."""


def _version(model: str) -> tuple[str, tuple[int, int], bool] | None:
    if match := _NAME.search(model):
        if match[4]:
            return match[1], (4, 7), True
        return match[1], (int(match[2]), int(match[3] or 0)), False
    if match := _OLD_NAME.search(model):
        return match[3], (int(match[1]), int(match[2] or 0)), False
    return None


def _adaptive_only(family: str, version: tuple[int, int]) -> bool:
    return family in ("fable", "mythos") or version >= (4, 7)


def _thinking_modes(model: str) -> frozenset[str]:
    named = _version(model)
    if named is None:
        return frozenset()
    family, version, _ = named
    if _adaptive_only(family, version):
        return frozenset({"adaptive"})
    if version >= (4, 6):
        return frozenset({"adaptive", "enabled"})
    if version >= (4, 0) or (family, version) == ("sonnet", (3, 7)):
        return frozenset({"enabled"})
    return frozenset()


def _effort_levels(model: str) -> tuple[str, ...]:
    named = _version(model)
    if named is None:
        return ()
    family, version, preview = named
    if not preview and (family in ("fable", "mythos") or version >= (4, 7)):
        return EFFORT_LEVELS
    if version >= (4, 6) or preview:
        return ("low", "medium", "high", "max")
    if (family, version) == ("opus", (4, 5)):
        return ("low", "medium", "high")
    return ()


def _structured_outputs(model: str) -> bool:
    named = _version(model)
    return named is not None and (named[0] in ("fable", "mythos") or named[1] >= (4, 5))


def thinking_shown(params: dict[str, Any], model: str) -> bool:
    """Whether thinking blocks carry their text: `display`, else the model's default (omitted
    from Opus 4.7 on, and on Fable and Mythos)."""
    thinking = params.get("thinking")
    display = thinking.get("display") if isinstance(thinking, dict) else None
    if display is not None:
        return bool(display == "summarized")
    named = _version(model)
    return named is None or not _adaptive_only(named[0], named[1])


def thinking_of(params: dict[str, Any], model: str) -> str | None:
    """The request's thinking ("enabled" or "adaptive", None when off), or RuleBroken."""
    thinking = params.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise RuleBroken("thinking.type: Input tag should be 'enabled', 'disabled' or 'adaptive'")
    named = _version(model)
    if kind == "disabled":
        if named and named[0] in ("fable", "mythos"):
            raise RuleBroken(f"thinking.type.disabled is not supported for model {model}")
        return None
    modes = _thinking_modes(model)
    if not modes:
        raise RuleBroken(f"thinking: model {model} does not support thinking")
    if kind not in modes:
        use = (
            "thinking.type.adaptive and output_config.effort"
            if "adaptive" in modes
            else "thinking.type.enabled"
        )
        raise RuleBroken(f"thinking.type.{kind} is not supported for this model. Use {use}.")
    display = thinking.get("display")
    if display is not None and (
        display not in ("summarized", "omitted") or named is None or named[1] < (4, 0)
    ):
        raise RuleBroken("thinking.display: Input should be 'summarized' or 'omitted' (Claude 4 models)")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_THINKING_BUDGET:
            raise RuleBroken(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{MIN_THINKING_BUDGET}"
            )
        if budget >= params["max_tokens"]:
            raise RuleBroken("`max_tokens` must be greater than `thinking.budget_tokens`.")
    _check_with_thinking(params)
    return kind


def _check_with_thinking(params: dict[str, Any]) -> None:
    if "temperature" in params and params["temperature"] != 1:
        raise RuleBroken("`temperature` may only be set to 1 when thinking is enabled.")
    top_p = params.get("top_p")
    if top_p is not None and not (isinstance(top_p, int | float) and 0.95 <= top_p <= 1):
        raise RuleBroken("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.")
    if "top_k" in params:
        raise RuleBroken("`top_k` must be unset when thinking is enabled.")
    tool_choice = params.get("tool_choice")
    if isinstance(tool_choice, dict) and tool_choice.get("type") in ("any", "tool"):
        raise RuleBroken("Thinking may not be enabled when tool_choice forces tool use.")
    messages = params["messages"]
    if messages[-1].get("role") == "assistant":
        raise RuleBroken("Prefilling the assistant message is not supported when thinking is enabled.")
    if _answers_tool_use(messages[-1]) and len(messages) > 1 and not _starts_with_thinking(messages[-2]):
        raise RuleBroken(
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            "but found `tool_use`. "
            "When `thinking` is enabled, a final `assistant` message must start with a thinking block."
        )


def _answers_tool_use(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _starts_with_thinking(message: dict[str, Any]) -> bool:
    content = message.get("content")
    first = content[0] if isinstance(content, list) and content else None
    return isinstance(first, dict) and first.get("type") in ("thinking", "redacted_thinking")


def output_schema(params: dict[str, Any], model: str) -> dict[str, Any] | None:
    """The JSON schema the answer must follow (None without one), or RuleBroken."""
    config = params.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise RuleBroken("output_config: Input should be an object")
    for key in config:
        if key not in ("effort", "format"):
            raise RuleBroken(f"output_config.{key}: Extra inputs are not permitted")
    if "effort" in config:
        if config["effort"] not in EFFORT_LEVELS:
            raise RuleBroken(
                "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
            )
        levels = _effort_levels(model)
        if not levels:
            raise RuleBroken(f"output_config.effort: model {model} does not support the effort parameter")
        if config["effort"] not in levels:
            raise RuleBroken(f"output_config.effort: {config['effort']!r} is not supported by model {model}")
    fmt = config.get("format")
    if fmt is None:
        return None
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise RuleBroken("output_config.format: Input should be {'type': 'json_schema', 'schema': {...}}")
    if not _structured_outputs(model):
        raise RuleBroken(f"output_config.format: structured outputs are not supported for model {model}")
    _check_schema(fmt["schema"], "output_config.format.schema")
    if _recursive(fmt["schema"], fmt["schema"], ()):
        raise RuleBroken("output_config.format.schema: recursive schemas are not supported")
    return fmt["schema"]


def _recursive(node: Any, root: dict[str, Any], following: tuple[str, ...]) -> bool:
    """Whether following `node`'s local $refs ever comes back to one being followed."""
    if isinstance(node, list):
        return any(_recursive(item, root, following) for item in node)
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        if ref in following or ref == "#":
            return True
        target: Any = root
        for part in ref[2:].split("/") if ref != "#" else ():
            target = target.get(part) if isinstance(target, dict) else None
        if _recursive(target, root, (*following, ref)):
            return True
    return any(
        _recursive(value, root, following)
        for key, value in node.items()
        if key not in ("$defs", "definitions")
    )


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    for keyword in _FORBIDDEN_SCHEMA_KEYWORDS:
        if keyword in schema:
            raise RuleBroken(f"{where}: the '{keyword}' keyword is not supported")
    if schema.get("minItems", 0) not in (0, 1):
        raise RuleBroken(f"{where}: 'minItems' values other than 0 or 1 are not supported")
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        raise RuleBroken(
            f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
        )
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                _check_schema(sub, f"{where}.{key}.{name}")
        elif key in ("anyOf", "allOf") and isinstance(value, list):
            for index, sub in enumerate(value):
                _check_schema(sub, f"{where}.{key}.{index}")
        elif key == "items":
            _check_schema(value, f"{where}.items")


def instance_of(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """A small value that follows `schema` (what a constrained answer would hold)."""
    root = root if root is not None else schema
    if not isinstance(schema, dict):
        return None
    if isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance_of(target, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return instance_of(schema[key][0], root)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: instance_of(sub, root) for name, sub in properties.items()}
    if kind == "array":
        return [instance_of(schema.get("items"), root)] if schema.get("minItems") == 1 else []
    return {"string": _string(schema), "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def _string(schema: dict[str, Any]) -> str:
    return {"email": "sim@example.com", "date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01"}.get(
        str(schema.get("format")), "simulated"
    )
