"""Checks a batch input file (purpose `batch`) line by line before any provider sees it.

OpenAI's contract, followed here: the upload refuses only a file that is not JSON Lines of
objects (400, the first such lines by number); every other problem (a missing field, a
duplicate `custom_id`, a second model, a url that is not the batch's endpoint, a line the
provider's translation cannot take) is kept with the file (`state.batch_check`) and fails a
batch created from it at once, with OpenAI's `errors.data[]` (`code`, `message`, `param`,
`line`), before any provider sees it. The file is read as a stream: memory stays bounded by
one line plus the set of custom ids (at most `max_lines` of them).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from gateway.errors import InvalidRequestError
from gateway.formats.jsonl import split_lines, stream_chunks
from gateway.models.batches import BATCH_ENDPOINTS

# What one provider batch takes is each provider's (providers.caps, with their sources: OpenAI's
# 50,000 requests and 200 MB, Azure's 100,000 and 200 MB, ...); a file over it runs as a plan.
# What a file may hold to run as a plan of provider batches (service.plan): the Uploads API's
# 8 GB, and a million requests (the custom ids the check keeps to find duplicates).
PLAN_MAX_LINES = 1_000_000
PLAN_MAX_BYTES = 8 * 1024 * 1024 * 1024
MAX_LISTED_PROBLEMS = 10
BATCH_CHECK_STATE = "batch_check"  # where a file's record keeps its check's figures and problems
MAX_LINE_BYTES = 32 * 1024 * 1024
REQUIRED_FIELDS = ("custom_id", "method", "url", "body")

# The problems that make a file no JSON Lines of objects: the upload refuses it (400). Every
# other code is a batch's validation error: a batch created from the file fails at once.
UPLOAD_CODES = frozenset({"invalid_json_line", "line_too_long", "file_too_large"})


@dataclass(frozen=True)
class LineProblem:
    """One reason the file cannot run; `line` is 1-based, None for the file as a whole. As a
    batch's error it is OpenAI's `BatchError` (`code`, `message`, `param`, `line`)."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def describe(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}

    @classmethod
    def from_error(cls, error: dict[str, Any]) -> LineProblem:
        line = error.get("line")
        return cls(
            str(error["code"]),
            str(error["message"]),
            line if isinstance(line, int) else None,
            error.get("param"),
        )


@dataclass
class ProblemList:
    """The first problems (by line) and how many there are in all."""

    listed: list[LineProblem] = field(default_factory=list)
    count: int = 0

    def add(self, problem: LineProblem, times: int = 1) -> None:
        self.count += times
        if len(self.listed) < MAX_LISTED_PROBLEMS:
            self.listed.append(problem)

    def summary(self, what: str) -> str:
        """`line N: …` for the first problems, as a 400's message and `status_details` say it."""
        listed = "; ".join(problem.describe() for problem in self.listed)
        more = self.count - len(self.listed)
        suffix = f"; and {more} more" if more > 0 else ""
        noun = "problem" if self.count == 1 else "problems"
        return f"{what} has {self.count} {noun}: {listed}{suffix}."


@dataclass
class BatchInputReport:
    """What the check learnt: the lines that make the file no JSON Lines (`refusals`), the
    problems a batch of it would fail with (`problems`), the file's endpoints and model."""

    lines: int = 0
    bytes: int = 0
    endpoint: str | None = None
    model: str | None = None
    # each endpoint its lines name: its first line and how many lines name it
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    refusals: ProblemList = field(default_factory=ProblemList)
    problem_list: ProblemList = field(default_factory=ProblemList)
    # For a budget's hold: a rough upper bound of the input tokens (a token per 4 bytes of
    # request), the output tokens the requests cap, and how many completions set no cap (a
    # request asking for `n` choices, or `best_of` candidates, counts each: each is billed).
    input_token_estimate: int = 0
    output_token_limit: int = 0
    lines_without_output_limit: int = 0
    # The thinking budgets of the uncapped ones with a reasoning_effort: Claude's max_tokens is
    # the default raised by the budget there (claude_features.max_tokens_with_budget).
    uncapped_thinking_budget: int = 0

    @property
    def problems(self) -> list[LineProblem]:
        """Every listed problem, the upload's refusals first."""
        return self.refusals.listed + self.problem_list.listed

    @property
    def problem_count(self) -> int:
        return self.refusals.count + self.problem_list.count

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def refused(self) -> bool:
        return self.refusals.count > 0

    def add(self, problem: LineProblem) -> None:
        (self.refusals if problem.code in UPLOAD_CODES else self.problem_list).add(problem)

    def summary(self) -> str:
        return self.refusals.summary("The file is not JSON Lines of request objects: it")

    def error(self) -> InvalidRequestError:
        return InvalidRequestError(self.summary(), param="file", code=self.refusals.listed[0].code)

    def figures(self) -> dict[str, Any]:
        """What a file's record keeps of its check: service.budget estimates from it, and a
        batch's create fails with its problems (and any line whose url is not its endpoint)."""
        return {
            "lines": self.lines,
            "bytes": self.bytes,
            "endpoint": self.endpoint,
            "endpoints": self.endpoints,
            "model": self.model,
            "input_token_estimate": self.input_token_estimate,
            "output_token_limit": self.output_token_limit,
            "lines_without_output_limit": self.lines_without_output_limit,
            "uncapped_thinking_budget": self.uncapped_thinking_budget,
            "problems": [problem.as_error() for problem in self.problem_list.listed],
            "problem_count": self.problem_list.count,
        }


def checked_figures(content: bytes | IO[bytes], rules: CheckRules | None = None) -> dict[str, Any]:
    """The figures of a batch file that is JSON Lines of objects (its other problems among
    them); its 400 (the first lines that are not, by number) else. A stream is read from its
    start and left rewound for the upload that follows."""
    stream = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    stream.seek(0)
    report = check_batch_input(stream, rules)
    stream.seek(0)
    raise_if_invalid(report)
    return report.figures()


def batch_problems(figures: dict[str, Any] | None, endpoint: str) -> ProblemList:
    """The problems a batch for `endpoint` on a file with these stored figures fails with, by
    line: the file's own, and each line whose url names another endpoint. A file checked before
    problems were kept passed every check then; one never checked (another purpose) has none."""
    if not figures:
        return ProblemList()
    problems = [LineProblem.from_error(error) for error in figures.get("problems") or ()]
    count_all = int(figures.get("problem_count") or len(problems))
    endpoints = figures.get("endpoints")
    if endpoints is None and figures.get("endpoint"):  # checked before: every line named it
        endpoints = {figures["endpoint"]: {"line": 1, "count": int(figures.get("lines") or 1)}}
    for other, seen in (endpoints or {}).items():
        if other == endpoint:
            continue
        count, first = int(seen.get("count") or 1), seen.get("line")
        more = f" (and {count - 1} more lines with this url)" if count > 1 else ""
        problems.append(
            LineProblem(
                "invalid_url",
                f"The URL provided for this request ({other}) does not match the batch endpoint "
                f"({endpoint}){more}.",
                first if isinstance(first, int) else None,
                "url",
            )
        )
        count_all += count
    problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
    return ProblemList(listed=problems[:MAX_LISTED_PROBLEMS], count=count_all)


@dataclass(frozen=True)
class CheckRules:
    """Limits that differ per provider; OpenAI's by default. `max_lines` and `max_bytes` are
    what one gateway batch takes: a file over one provider batch's caps runs as a plan."""

    endpoints: tuple[str, ...] = BATCH_ENDPOINTS
    max_lines: int = PLAN_MAX_LINES
    max_bytes: int = PLAN_MAX_BYTES
    max_line_bytes: int = MAX_LINE_BYTES
    custom_id_pattern: re.Pattern[str] | None = None
    # The provider's own check of a line's body (a translation to its API): raises a ValueError
    # whose message names the field, which becomes the line's problem.
    line_check: Callable[[dict[str, Any]], object] | None = None


# Provider types whose batch lines are translated to another API, and the one endpoint they
# take. OpenAI's rules hold for OpenAI and Azure (the same line format and custom_id rules).
CHAT_ONLY = ("/v1/chat/completions",)
TRANSLATED_TYPES = frozenset({"anthropic", "bedrock", "gemini", "vertex"})


def rules_for(provider: str) -> CheckRules:
    """The check of a batch file for `provider`'s deployment (OpenAI's rules for OpenAI and Azure)."""
    from gateway.runtime.settings import get_settings

    deployment = get_settings().providers.get(provider)
    if deployment is None or deployment.type not in TRANSLATED_TYPES:
        return CheckRules()
    from functools import partial

    from gateway.providers.anthropic.messages import messages_request

    line_check: Callable[[dict[str, Any]], object] = partial(
        messages_request, default_max_tokens=deployment.default_max_tokens
    )
    if deployment.type == "bedrock":
        from gateway.providers.bedrock.records import check_line

        line_check = partial(
            check_line, models=deployment.models, default_max_tokens=deployment.default_max_tokens
        )
    if deployment.type == "gemini":
        from gateway.providers.gemini.content import check_line as gemini_line

        line_check = partial(gemini_line, models=deployment.models)
    if deployment.type == "vertex":
        from gateway.providers.vertex.records import check_line as check_vertex_line

        line_check = partial(
            check_vertex_line, models=deployment.models, default_max_tokens=deployment.default_max_tokens
        )
    return CheckRules(endpoints=CHAT_ONLY, line_check=line_check)


def require_endpoint(provider: str, endpoint: str) -> None:
    """A batch for an endpoint `provider` never runs is refused (400 on `endpoint`), as its
    adapter would, before its input file's lines are held against it."""
    endpoints = rules_for(provider).endpoints
    if endpoint not in endpoints:
        raise InvalidRequestError(
            f"Provider '{provider}' runs only {', '.join(endpoints)} batches, not {endpoint}.",
            param="endpoint",
            code="unsupported_endpoint",
        )


def check_batch_input(stream: IO[bytes], rules: CheckRules | None = None) -> BatchInputReport:
    """Reads `stream` to its end (or to the first file-level limit) and reports every problem."""
    rules = rules or CheckRules()
    return _Checker(rules).run(split_lines(stream_chunks(stream), rules.max_line_bytes))


def raise_if_invalid(report: BatchInputReport) -> None:
    """The upload's 400 when the file is not JSON Lines of objects."""
    if report.refused:
        raise report.error()


class _Checker:
    def __init__(self, rules: CheckRules) -> None:
        self.rules = rules
        self.report = BatchInputReport()
        self.seen_ids: dict[str, int] = {}
        self.models_line: int | None = None

    def run(self, lines: Iterable[bytes]) -> BatchInputReport:
        report = self.report
        blank_run: list[int] = []  # blank lines count only when a request follows them
        for number, raw in enumerate(lines, start=1):
            report.bytes += len(raw) + 1
            if report.bytes > self.rules.max_bytes + 1:
                report.add(
                    LineProblem("file_too_large", f"The file is larger than {self.rules.max_bytes} bytes.")
                )
                return report
            if len(raw) > self.rules.max_line_bytes:
                report.add(
                    LineProblem(
                        "line_too_long",
                        f"This line is longer than {self.rules.max_line_bytes} bytes.",
                        number,
                    )
                )
                return report
            if not raw.strip():
                blank_run.append(number)
                continue
            for blank in blank_run:
                report.add(LineProblem("invalid_json_line", "This line is empty.", blank))
            blank_run.clear()
            report.lines += 1
            self._check_line(number, raw)
        if report.lines > self.rules.max_lines:
            report.add(
                LineProblem(
                    "too_many_tasks",
                    f"The file has {report.lines} requests; a batch takes at most {self.rules.max_lines}.",
                )
            )
        if report.lines == 0:
            report.add(LineProblem("empty_file", "The batch input file is empty."))
        return report

    def _check_line(self, number: int, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):
            self.report.add(
                LineProblem("invalid_json_line", "This line is not parseable as valid JSON.", number)
            )
            return
        if not isinstance(request, dict):
            self.report.add(LineProblem("invalid_json_line", "This line is not a JSON object.", number))
            return
        missing = [name for name in REQUIRED_FIELDS if request.get(name) is None]
        for name in missing:
            self.report.add(
                LineProblem(
                    "missing_required_parameter", f"Missing required parameter: '{name}'.", number, name
                )
            )
        if "custom_id" not in missing:
            self._check_custom_id(number, request["custom_id"])
        if "method" not in missing and request["method"] != "POST":
            self.report.add(
                LineProblem(
                    "invalid_request",
                    f"method must be 'POST', not {_shown(request['method'])}.",
                    number,
                    "method",
                )
            )
        url_ok = "url" not in missing and self._check_url(number, request["url"])
        if "body" not in missing:
            self._check_body(number, request["body"])
            if url_ok:  # a line for another endpoint has no translation to check
                self._check_translation(number, request["body"])
        self._count_tokens(raw, request.get("body"))

    def _check_custom_id(self, number: int, custom_id: Any) -> None:
        if not isinstance(custom_id, str) or not custom_id:
            self.report.add(
                LineProblem("invalid_request", "custom_id must be a non-empty string.", number, "custom_id")
            )
            return
        pattern = self.rules.custom_id_pattern
        if pattern is not None and not pattern.fullmatch(custom_id):
            self.report.add(
                LineProblem(
                    "invalid_request",
                    f"custom_id {_shown(custom_id)} does not match {pattern.pattern}.",
                    number,
                    "custom_id",
                )
            )
        if len(self.seen_ids) >= self.rules.max_lines:
            return  # past the most one batch takes (too_many_tasks): memory stays bounded
        first = self.seen_ids.setdefault(custom_id, number)
        if first != number:
            self.report.add(
                LineProblem(
                    "duplicate_custom_id",
                    f"The custom_id {_shown(custom_id)} is also used on line {first}. The custom_id "
                    "parameter must be unique for each request in a batch.",
                    number,
                    "custom_id",
                )
            )

    def _check_url(self, number: int, url: Any) -> bool:
        endpoint = normalize_endpoint(url) if isinstance(url, str) else None
        if endpoint is None or endpoint not in self.rules.endpoints:
            self.report.add(
                LineProblem(
                    "invalid_url",
                    f"url {_shown(url)} is not a supported batch endpoint "
                    f"({', '.join(self.rules.endpoints)}).",
                    number,
                    "url",
                )
            )
            return False
        # a url that is not the batch's endpoint is found at create, which knows the endpoint
        seen = self.report.endpoints.setdefault(endpoint, {"line": number, "count": 0})
        seen["count"] += 1
        if self.report.endpoint is None:
            self.report.endpoint = endpoint
        return True

    def _check_body(self, number: int, body: Any) -> None:
        if not isinstance(body, dict):
            self.report.add(
                LineProblem("invalid_request", "The request body must be a JSON object.", number, "body")
            )
            return
        if body.get("stream"):
            self.report.add(
                LineProblem(
                    "streaming_unsupported",
                    "Streaming is not supported in the Batch API.",
                    number,
                    "body.stream",
                )
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.report.add(
                LineProblem("invalid_request", "Model parameter is required.", number, "body.model")
            )
            return
        if self.report.model is None:
            self.report.model, self.models_line = model, number
        elif model != self.report.model:
            self.report.add(
                LineProblem(
                    "mismatched_model",
                    f"The provided model {_shown(model)} does not match the model "
                    f"{_shown(self.report.model)} of line {self.models_line}. All requests in a batch "
                    "must use the same model.",
                    number,
                    "body.model",
                )
            )

    def _check_translation(self, number: int, body: Any) -> None:
        if self.rules.line_check is None or not isinstance(body, dict):
            return
        try:
            self.rules.line_check(body)
        except ValueError as exc:
            self.report.add(LineProblem("untranslatable_line", f"{exc}", number, "body"))

    def _count_tokens(self, raw: bytes, body: Any) -> None:
        report = self.report
        report.input_token_estimate += line_token_estimate(raw)
        cap = _output_cap(body) if isinstance(body, dict) else None
        completions = _completions(body) if isinstance(body, dict) else 1
        if cap is None:
            report.lines_without_output_limit += completions
            report.uncapped_thinking_budget += _thinking_budget(body) * completions
        else:
            report.output_token_limit += cap * completions


def line_token_estimate(raw: bytes) -> int:
    """The input tokens one request line is held to (a token per 4 bytes, rounded up by one):
    the budget's hold and a batch plan's split by enqueued tokens count the same."""
    return len(raw) // 4 + 1


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _output_cap(body: dict[str, Any]) -> int | None:
    """The most output tokens one completion of the request may bill (the largest cap it sets)."""
    caps = [_count(body.get(name)) for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")]
    return max((cap for cap in caps if cap is not None), default=None)


def _thinking_budget(body: Any) -> int:
    """The thinking budget Claude's translation adds to an uncapped request's max_tokens."""
    from gateway.providers.anthropic.claude_features import BUDGETS

    effort = body.get("reasoning_effort") if isinstance(body, dict) else None
    return BUDGETS.get(effort, 0) if isinstance(effort, str) else 0


def _completions(body: dict[str, Any]) -> int:
    """How many completions the request bills: `n` choices, or `best_of` candidates generated
    server-side (legacy completions), whichever is more; at least one."""
    return max(1, _count(body.get("n")) or 1, _count(body.get("best_of")) or 1)


def normalize_endpoint(url: str) -> str:
    """Azure's examples write `/chat/completions`; OpenAI's `/v1/chat/completions`."""
    return url if url.startswith("/v1/") else "/v1" + (url if url.startswith("/") else "/" + url)


def _shown(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
