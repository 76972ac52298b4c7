"""Which Claude model takes which request feature, and OpenAI's `reasoning_effort` and
`response_format` json_schema as Claude takes them: pure functions, no I/O.

The same rules hold on Anthropic's API and on Bedrock's InvokeModel body (the batch record).
Sources (checked 2026-12-07):
- thinking with a budget (`thinking: {type: "enabled", budget_tokens}`; at least 1024, below
  max_tokens; not with temperature, top_k or forced tool use; removed from Claude 4.7 on):
  https://platform.claude.com/docs/en/build-with-claude/extended-thinking and
  https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html
- adaptive thinking with `output_config.effort` (Opus/Sonnet 4.6 and every later model; the
  only thinking of 4.7 and later, Fable and Mythos):
  https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html
- effort levels (low/medium/high; max from 4.6, xhigh from Opus 4.7, not on Mythos Preview):
  https://platform.claude.com/docs/en/build-with-claude/effort
- structured outputs (`output_config.format`, GA, no beta header, on the API and Bedrock for
  Haiku/Sonnet/Opus 4.5 and later; every object `additionalProperties: false`, no numeric,
  string-length or array-size constraints):
  https://platform.claude.com/docs/en/build-with-claude/structured-outputs and
  https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-structured-outputs.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

ThinkingMode = Literal["adaptive", "budget"]
# Family first (claude-opus-4-6, anthropic.claude-sonnet-4-5-20250929-v1:0, claude-mythos-preview)
# or version first (claude-3-7-sonnet-20250219, claude-3-haiku-20240307).
_FAMILY_FIRST = re.compile(
    r"claude-(?P<family>opus|sonnet|haiku|fable|mythos)-(?:(?P<major>\d+)(?:-(?P<minor>\d)(?!\d))?|preview)"
)
_VERSION_FIRST = re.compile(r"claude-(?P<major>\d)-(?:(?P<minor>\d)-)?(?P<family>opus|sonnet|haiku)")
_ADAPTIVE_ONLY_FAMILIES = frozenset({"fable", "mythos"})
# OpenAI's reasoning_effort (openai-python's ReasoningEffort) -> Claude's output_config.effort.
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
# Where the model thinks with a budget: the budget of each level (LiteLLM's defaults, Anthropic's
# minimum of 1024 for the lowest).
BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
MIN_BUDGET = 1024
# The top_p Claude takes with thinking on.
THINKING_TOP_P = (0.95, 1.0)
# JSON Schema keywords Claude's structured outputs refuse.
UNSUPPORTED_SCHEMA_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
)
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "not")


@dataclass(frozen=True)
class ClaudeModel:
    family: str
    version: tuple[int, int]
    preview: bool = False

    @property
    def thinking(self) -> ThinkingMode | None:
        if self.family in _ADAPTIVE_ONLY_FAMILIES or self.version >= (4, 6):
            return "adaptive"
        if self.version >= (4, 0) or (self.family == "sonnet" and self.version == (3, 7)):
            return "budget"
        return None

    @property
    def efforts(self) -> tuple[str, ...]:
        """The output_config.effort levels the model takes (none where it thinks with a budget:
        the gateway sends effort with adaptive thinking only)."""
        if self.thinking != "adaptive":
            return ()
        if self.preview or self.version < (4, 7):
            return ("low", "medium", "high", "max")
        return ("low", "medium", "high", "xhigh", "max")

    @property
    def omits_thinking(self) -> bool:
        """Whether the model returns empty thinking blocks unless asked for `display: summarized`
        (Opus 4.7 and later, Fable, Mythos: https://platform.claude.com/docs/en/about-claude/models/whats-new-claude-4-7)."""
        return self.family in _ADAPTIVE_ONLY_FAMILIES or self.version >= (4, 7)

    @property
    def structured_outputs(self) -> bool:
        return self.family in _ADAPTIVE_ONLY_FAMILIES or self.version >= (4, 5)


def claude_model(model: str) -> ClaudeModel | None:
    """The Claude model a name or Bedrock id names, None for a name the gateway does not know."""
    if match := _FAMILY_FIRST.search(model):
        if match["major"] is None:  # claude-mythos-preview: the generation of Opus 4.7
            return ClaudeModel(match["family"], (4, 7), preview=True)
        return ClaudeModel(match["family"], (int(match["major"]), int(match["minor"] or 0)))
    if match := _VERSION_FIRST.search(model):
        return ClaudeModel(match["family"], (int(match["major"]), int(match["minor"] or 0)))
    return None


class FeatureRefused(ValueError):
    """A field the model cannot take; `field` is its path in the line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Thinking:
    """What a line's reasoning_effort adds to its Messages params."""

    thinking: dict[str, Any]
    effort: str | None = None
    budget: int = 0


def thinking_for(effort: Any, model: str) -> Thinking | None:
    """Claude's thinking for OpenAI's `reasoning_effort` on `model`: adaptive with the effort
    level where the model takes it, else a budget; None for `none` (no thinking)."""
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise FeatureRefused(
            "body.reasoning_effort", f"must be one of 'none', {', '.join(repr(e) for e in EFFORTS)}"
        )
    claude = claude_model(model)
    mode = claude.thinking if claude else None
    if claude is None or mode is None:
        raise FeatureRefused(
            "body.reasoning_effort",
            f"model {model!r} does not think: reasoning_effort needs Claude Sonnet 3.7, a Claude 4 "
            "model or later",
        )
    if mode == "budget":
        return Thinking({"type": "enabled", "budget_tokens": BUDGETS[effort]}, budget=BUDGETS[effort])
    level = EFFORTS[effort]
    if level not in claude.efforts:
        raise FeatureRefused(
            "body.reasoning_effort",
            f"{effort!r} is not an effort level of {model!r} (it takes {', '.join(claude.efforts)})",
        )
    thinking: dict[str, Any] = {"type": "adaptive"}
    if claude.omits_thinking:  # the thinking text comes back as reasoning_content, as on 4.6
        thinking["display"] = "summarized"
    return Thinking(thinking, effort=level)


def check_with_thinking(body: dict[str, Any], *, prefilled: bool, continues_tool_use: bool = False) -> None:
    """The combinations Claude refuses with thinking on, named by their field. A conversation
    that answers a tool call continues the assistant turn that made it, which must then start
    with its thinking block: a chat completions history does not carry it (extended-thinking,
    "Preserving thinking blocks")."""
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or temperature != 1):
        raise FeatureRefused(
            "body.temperature",
            "must be 1 or unset with reasoning_effort: Claude's thinking takes no other temperature",
        )
    top_p = body.get("top_p")
    low, high = THINKING_TOP_P
    if top_p is not None and not (isinstance(top_p, int | float) and low <= top_p <= high):
        raise FeatureRefused(
            "body.top_p", f"must be between {low} and {high} or unset with reasoning_effort on Claude"
        )
    tool_choice = body.get("tool_choice")
    if tool_choice == "required" or isinstance(tool_choice, dict):
        raise FeatureRefused(
            "body.tool_choice",
            "must be 'auto' or 'none' with reasoning_effort: Claude's thinking cannot force a tool call",
        )
    if prefilled:
        raise FeatureRefused(
            "body.messages",
            "ends with an assistant message (a prefill), which Claude cannot continue with thinking",
        )
    if continues_tool_use:
        raise FeatureRefused(
            "body.messages",
            "answers a tool call: Claude continues it with thinking only after the thinking block of "
            "the turn that called the tool, which a chat completions history does not carry; send "
            "this request without reasoning_effort",
        )


def max_tokens_with_budget(budget: int, max_tokens: int, *, explicit: bool, field: str) -> int:
    """The max_tokens of a request that thinks with `budget`. OpenAI counts reasoning tokens in
    max_completion_tokens as Anthropic counts thinking in max_tokens: a line's own limit is
    kept and must leave room for the answer (refused otherwise); the gateway's default limit
    is raised by the budget."""
    if not explicit:
        return max_tokens + budget
    if budget >= max_tokens:
        raise FeatureRefused(
            f"body.{field}",
            f"must be above {budget}, the thinking budget of this reasoning_effort on Claude "
            "(thinking counts in the limit): raise it or lower reasoning_effort",
        )
    return max_tokens


def output_format(schema: dict[str, Any], model: str) -> dict[str, Any]:
    """Claude's `output_config.format` for a json_schema response_format on `model`."""
    claude = claude_model(model)
    if claude is None or not claude.structured_outputs:
        raise FeatureRefused(
            "body.response_format",
            f"model {model!r} has no structured outputs: a json_schema response_format needs "
            "Claude Haiku 4.5, Sonnet 4.5, Opus 4.5 or later",
        )
    where = "body.response_format.json_schema.schema"
    _refuse_recursion(schema, where)
    return {"type": "json_schema", "schema": claude_schema(schema, where)}


def _refuse_recursion(schema: dict[str, Any], where: str) -> None:
    """Claude's structured outputs take no recursive schema: a `$ref` to the root, or a cycle
    of local definitions."""
    definitions = {
        f"#/{key}/{name}": (f"{where}.{key}.{name}", sub)
        for key in ("$defs", "definitions")
        if isinstance(schema.get(key), dict)
        for name, sub in schema[key].items()
    }
    if "#" in _refs(schema):
        raise FeatureRefused(
            where, "refers to itself ($ref '#'): Claude's structured outputs take no recursive schema"
        )
    for start, (path, sub) in definitions.items():
        seen, todo = set(), list(_refs(sub))
        while todo:
            ref = todo.pop()
            if ref == start:
                raise FeatureRefused(
                    path, "is recursive: Claude's structured outputs take no recursive schema"
                )
            if ref in definitions and ref not in seen:
                seen.add(ref)
                todo.extend(_refs(definitions[ref][1]))


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def claude_schema(schema: Any, where: str) -> Any:
    """`schema` as Claude's structured outputs take it: an object without additionalProperties
    gets `false` (as Anthropic's SDKs and OpenAI's strict mode have it); an open object or a
    constraint Claude does not enforce is refused, naming where it is."""
    if not isinstance(schema, dict):
        return schema
    for keyword in UNSUPPORTED_SCHEMA_KEYWORDS:
        if keyword in schema:
            raise FeatureRefused(
                f"{where}.{keyword}", "is not supported by Claude's structured outputs; remove it"
            )
    min_items = schema.get("minItems")
    if min_items is not None and min_items not in (0, 1):
        raise FeatureRefused(f"{where}.minItems", "Claude's structured outputs take only 0 or 1")
    result = dict(schema)
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in schema:
        extra = schema.get("additionalProperties", False)
        if extra is not False:
            raise FeatureRefused(
                f"{where}.additionalProperties",
                "must be false: Claude's structured outputs take closed objects only",
            )
        result["additionalProperties"] = False
    for key in _SUBSCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            result[key] = {
                name: claude_schema(sub, f"{where}.{key}.{name}") for name, sub in schema[key].items()
            }
    for key in _SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            result[key] = [claude_schema(sub, f"{where}.{key}[{i}]") for i, sub in enumerate(schema[key])]
    for key in _SUBSCHEMAS:
        if isinstance(schema.get(key), dict):
            result[key] = claude_schema(schema[key], f"{where}.{key}")
    return result
