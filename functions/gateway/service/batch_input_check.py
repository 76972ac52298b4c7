"""Checks a batch input file (purpose `batch`) line by line before any provider sees it.

A bad line found here costs the client one 400; found by the provider, it fails the whole
paid job hours later. The file is read as a stream: memory stays bounded by one line plus
the set of custom ids (at most `max_lines` of them).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from gateway.errors import InvalidRequestError
from gateway.jsonl import split_lines, stream_chunks
from gateway.models.batches import BATCH_ENDPOINTS

MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_LISTED_PROBLEMS = 10
BATCH_CHECK_STATE = "batch_check"  # where a file's record keeps a passed check's figures
MAX_LINE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class LineProblem:
    """One reason the file cannot run; `line` is 1-based, None for the file as a whole."""

    code: str
    message: str
    line: int | None = None

    def describe(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


@dataclass
class BatchInputReport:
    """What the check learnt: the first problems, and the file's one endpoint and model."""

    lines: int = 0
    bytes: int = 0
    endpoint: str | None = None
    model: str | None = None
    problems: list[LineProblem] = field(default_factory=list)
    problem_count: int = 0
    # For a budget's hold: a rough upper bound of the input tokens (a token per 4 bytes of
    # request), the output tokens the requests cap, and how many completions set no cap (a
    # request asking for `n` choices, or `best_of` candidates, counts each: each is billed).
    input_token_estimate: int = 0
    output_token_limit: int = 0
    lines_without_output_limit: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: LineProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """`line N: …` for the first problems, as the 400 message and `status_details` say it."""
        listed = "; ".join(problem.describe() for problem in self.problems)
        more = self.problem_count - len(self.problems)
        suffix = f"; and {more} more" if more > 0 else ""
        noun = "problem" if self.problem_count == 1 else "problems"
        return f"The batch input file has {self.problem_count} {noun}: {listed}{suffix}."

    def error(self) -> InvalidRequestError:
        return InvalidRequestError(self.summary(), param="file", code=self.problems[0].code)

    def figures(self) -> dict[str, Any]:
        """What a file's record keeps of a passed check (service.budget estimates from it)."""
        return {
            "lines": self.lines,
            "endpoint": self.endpoint,
            "model": self.model,
            "input_token_estimate": self.input_token_estimate,
            "output_token_limit": self.output_token_limit,
            "lines_without_output_limit": self.lines_without_output_limit,
        }


def checked_figures(content: bytes | IO[bytes], rules: CheckRules | None = None) -> dict[str, Any]:
    """The figures of a batch file that passes the check; its 400 (first problems by line) else.
    A stream is read from its start and left rewound for the upload that follows."""
    stream = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    stream.seek(0)
    report = check_batch_input(stream, rules)
    stream.seek(0)
    raise_if_invalid(report)
    return report.figures()


@dataclass(frozen=True)
class CheckRules:
    """Limits that differ per provider; OpenAI's by default."""

    endpoints: tuple[str, ...] = BATCH_ENDPOINTS
    max_lines: int = MAX_LINES
    max_bytes: int = MAX_BYTES
    max_line_bytes: int = MAX_LINE_BYTES
    custom_id_pattern: re.Pattern[str] | None = None
    # The provider's own check of a line's body (a translation to its API): raises a ValueError
    # whose message names the field, which becomes the line's problem.
    line_check: Callable[[dict[str, Any]], object] | None = None


# Provider types whose batch lines are translated to another API: the one endpoint they take,
# and the most requests and bytes one of their batches holds.
CHAT_ONLY = ("/v1/chat/completions",)
TYPE_LIMITS: dict[str, tuple[int, int]] = {
    "anthropic": (100_000, 256 * 1024 * 1024),
    "bedrock": (50_000, 1_000_000_000),  # Bedrock's records per job and input file size
}


def rules_for(provider: str) -> CheckRules:
    """The check of a batch file for `provider`'s deployment (OpenAI's rules for OpenAI and Azure)."""
    from gateway.settings import get_settings

    deployment = get_settings().providers.get(provider)
    if deployment is None or deployment.type not in TYPE_LIMITS:
        return CheckRules()
    from functools import partial

    from gateway.providers.chat_to_messages import messages_request

    max_lines, max_bytes = TYPE_LIMITS[deployment.type]
    line_check: Callable[[dict[str, Any]], object] = partial(
        messages_request, default_max_tokens=deployment.default_max_tokens
    )
    if deployment.type == "bedrock":
        from gateway.providers.bedrock_records import check_line

        line_check = partial(
            check_line, models=deployment.models, default_max_tokens=deployment.default_max_tokens
        )
    return CheckRules(endpoints=CHAT_ONLY, max_lines=max_lines, max_bytes=max_bytes, line_check=line_check)


def check_batch_input(stream: IO[bytes], rules: CheckRules | None = None) -> BatchInputReport:
    """Reads `stream` to its end (or to the first file-level limit) and reports every problem."""
    rules = rules or CheckRules()
    return _Checker(rules).run(split_lines(stream_chunks(stream), rules.max_line_bytes))


def raise_if_invalid(report: BatchInputReport) -> None:
    if not report.ok:
        raise report.error()


class _Checker:
    def __init__(self, rules: CheckRules) -> None:
        self.rules = rules
        self.report = BatchInputReport()
        self.seen_ids: dict[str, int] = {}
        self.models_line: int | None = None
        self.endpoint_line: int | None = None

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
            if report.lines > self.rules.max_lines:
                report.add(
                    LineProblem(
                        "too_many_tasks",
                        f"The file has more than {self.rules.max_lines} requests, the most one batch takes.",
                    )
                )
                return report
            self._check_line(number, raw)
        if report.lines == 0:
            report.add(LineProblem("empty_file", "The file has no requests."))
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
        self._check_custom_id(number, request.get("custom_id"))
        if request.get("method") != "POST":
            self.report.add(
                LineProblem(
                    "invalid_method", f"method must be 'POST', not {_shown(request.get('method'))}.", number
                )
            )
        self._check_url(number, request.get("url"))
        self._check_body(number, request.get("body"))
        self._check_translation(number, request.get("body"))
        self._count_tokens(raw, request.get("body"))

    def _check_custom_id(self, number: int, custom_id: Any) -> None:
        if not isinstance(custom_id, str) or not custom_id:
            self.report.add(
                LineProblem(
                    "invalid_custom_id", "custom_id is required and must be a non-empty string.", number
                )
            )
            return
        pattern = self.rules.custom_id_pattern
        if pattern is not None and not pattern.fullmatch(custom_id):
            self.report.add(
                LineProblem(
                    "invalid_custom_id",
                    f"custom_id {_shown(custom_id)} does not match {pattern.pattern}.",
                    number,
                )
            )
        first = self.seen_ids.setdefault(custom_id, number)
        if first != number:
            self.report.add(
                LineProblem(
                    "duplicate_custom_id",
                    f"custom_id {_shown(custom_id)} is also used on line {first}; each must be unique.",
                    number,
                )
            )

    def _check_url(self, number: int, url: Any) -> None:
        endpoint = normalize_endpoint(url) if isinstance(url, str) else None
        if endpoint not in self.rules.endpoints:
            self.report.add(
                LineProblem(
                    "invalid_url",
                    f"url {_shown(url)} is not a supported batch endpoint "
                    f"({', '.join(self.rules.endpoints)}).",
                    number,
                )
            )
            return
        if self.report.endpoint is None:
            self.report.endpoint, self.endpoint_line = endpoint, number
        elif endpoint != self.report.endpoint:
            self.report.add(
                LineProblem(
                    "mismatched_url",
                    f"url {_shown(url)} differs from {_shown(self.report.endpoint)} on line "
                    f"{self.endpoint_line}; one batch runs one endpoint.",
                    number,
                )
            )

    def _check_body(self, number: int, body: Any) -> None:
        if not isinstance(body, dict):
            self.report.add(
                LineProblem("missing_body", "body is required and must be a JSON object.", number)
            )
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.report.add(
                LineProblem("missing_model", "body.model is required and must be a string.", number)
            )
            return
        if self.report.model is None:
            self.report.model, self.models_line = model, number
        elif model != self.report.model:
            self.report.add(
                LineProblem(
                    "mismatched_model",
                    f"model {_shown(model)} differs from {_shown(self.report.model)} on line "
                    f"{self.models_line}; one batch runs one model.",
                    number,
                )
            )

    def _check_translation(self, number: int, body: Any) -> None:
        if self.rules.line_check is None or not isinstance(body, dict):
            return
        try:
            self.rules.line_check(body)
        except ValueError as exc:
            self.report.add(LineProblem("untranslatable_line", f"{exc}", number))

    def _count_tokens(self, raw: bytes, body: Any) -> None:
        report = self.report
        report.input_token_estimate += len(raw) // 4 + 1
        cap = _output_cap(body) if isinstance(body, dict) else None
        completions = _completions(body) if isinstance(body, dict) else 1
        if cap is None:
            report.lines_without_output_limit += completions
        else:
            report.output_token_limit += cap * completions


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _output_cap(body: dict[str, Any]) -> int | None:
    """The most output tokens one completion of the request may bill (the largest cap it sets)."""
    caps = [_count(body.get(name)) for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")]
    return max((cap for cap in caps if cap is not None), default=None)


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
