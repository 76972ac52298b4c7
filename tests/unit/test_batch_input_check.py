"""The batch input check: each rule, with the 1-based line it names."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from gateway.errors import InvalidRequestError
from gateway.service.batch_input_check import (
    CheckRules,
    check_batch_input,
    normalize_endpoint,
    raise_if_invalid,
)


def request_line(custom_id: str = "r-1", **overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    }
    line.update(overrides)
    return line


def jsonl(*lines: dict[str, Any] | str) -> io.BytesIO:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return io.BytesIO(text.encode())


def problems(stream: io.BytesIO, rules: CheckRules | None = None) -> list[tuple[int | None, str]]:
    return [(p.line, p.code) for p in check_batch_input(stream, rules).problems]


def test_a_valid_file_reports_its_endpoint_model_and_size() -> None:
    stream = jsonl(request_line("a"), request_line("b"), request_line("c"))
    report = check_batch_input(stream)
    assert report.ok
    assert (report.lines, report.endpoint, report.model) == (3, "/v1/chat/completions", "gpt-4o-mini")
    assert report.bytes == len(stream.getvalue())
    raise_if_invalid(report)  # no exception


@pytest.mark.parametrize(
    ("bad_line", "code"),
    [
        ("{not json", "invalid_json_line"),
        ("[1, 2]", "invalid_json_line"),
        ('"a string"', "invalid_json_line"),
        (request_line(custom_id=None), "invalid_custom_id"),  # type: ignore[arg-type]
        (request_line(custom_id=7), "invalid_custom_id"),  # type: ignore[arg-type]
        (request_line(custom_id=""), "invalid_custom_id"),
        ({k: v for k, v in request_line("x").items() if k != "custom_id"}, "invalid_custom_id"),
        (request_line("x", method="GET"), "invalid_method"),
        ({k: v for k, v in request_line("x").items() if k != "method"}, "invalid_method"),
        (request_line("x", url="/v1/audio/speech"), "invalid_url"),
        (request_line("x", url=None), "invalid_url"),
        ({k: v for k, v in request_line("x").items() if k != "body"}, "missing_body"),
        (request_line("x", body="text"), "missing_body"),
        (request_line("x", body={"messages": []}), "missing_model"),
        (request_line("x", body={"model": 4}), "missing_model"),
    ],
)
def test_each_rule_names_the_line_it_breaks(bad_line: dict[str, Any] | str, code: str) -> None:
    assert problems(jsonl(request_line("first"), bad_line)) == [(2, code)]


def test_a_duplicate_custom_id_names_both_lines() -> None:
    report = check_batch_input(jsonl(request_line("same"), request_line("other"), request_line("same")))
    assert [(p.line, p.code) for p in report.problems] == [(3, "duplicate_custom_id")]
    assert "line 1" in report.problems[0].message


def test_a_second_url_or_model_is_a_mismatch_against_the_first() -> None:
    stream = jsonl(
        request_line("a"),
        request_line("b", url="/v1/embeddings"),
        request_line("c", body={"model": "gpt-4o"}),
    )
    assert problems(stream) == [(2, "mismatched_url"), (3, "mismatched_model")]


@pytest.mark.parametrize("url", ["/chat/completions", "chat/completions", "/v1/chat/completions"])
def test_urls_are_accepted_with_or_without_v1(url: str) -> None:
    assert normalize_endpoint(url) == "/v1/chat/completions"
    assert check_batch_input(jsonl(request_line("a", url=url), request_line("b"))).ok


def test_an_empty_file_and_a_file_of_blank_lines_have_no_requests() -> None:
    assert problems(io.BytesIO(b"")) == [(None, "empty_file")]
    assert problems(io.BytesIO(b"\n  \n")) == [(None, "empty_file")]


def test_blank_lines_between_requests_are_errors_but_trailing_ones_are_not() -> None:
    stream = io.BytesIO(
        (json.dumps(request_line("a")) + "\n\n" + json.dumps(request_line("b")) + "\n\n\n").encode()
    )
    assert problems(stream) == [(2, "invalid_json_line")]


def test_too_many_requests_stops_the_check() -> None:
    stream = jsonl(*(request_line(f"r{i}") for i in range(5)))
    assert problems(stream, CheckRules(max_lines=3)) == [(None, "too_many_tasks")]


def test_a_file_over_the_size_limit_stops_the_check() -> None:
    stream = jsonl(*(request_line(f"r{i}") for i in range(5)))
    limit = len(stream.getvalue()) - 10
    assert problems(stream, CheckRules(max_bytes=limit)) == [(None, "file_too_large")]
    stream.seek(0)
    assert problems(stream, CheckRules(max_bytes=len(stream.getvalue()))) == []


def test_a_line_longer_than_the_line_limit_stops_the_check() -> None:
    stream = jsonl(request_line("a"), request_line("b", body={"model": "m", "pad": "x" * 500}))
    assert problems(stream, CheckRules(max_line_bytes=300)) == [(2, "line_too_long")]


def test_a_custom_id_pattern_applies_when_the_provider_has_one() -> None:
    rules = CheckRules(custom_id_pattern=re.compile(r"[a-zA-Z0-9_-]{1,64}"))
    assert problems(jsonl(request_line("ok_1"), request_line("not ok!")), rules) == [(2, "invalid_custom_id")]


def test_a_file_with_twelve_bad_lines_lists_the_first_ten() -> None:
    stream = jsonl(request_line("good"), *["{broken" for _ in range(12)])
    report = check_batch_input(stream)
    assert report.problem_count == 12
    assert [p.line for p in report.problems] == list(range(2, 12))
    with pytest.raises(InvalidRequestError) as raised:
        raise_if_invalid(report)
    error = raised.value
    assert (error.status_code, error.code, error.param) == (400, "invalid_json_line", "file")
    assert error.message.startswith("The batch input file has 12 problems: line 2: ")
    assert "line 11: " in error.message and "line 12: " not in error.message
    assert error.message.endswith("; and 2 more.")


def test_windows_line_ends_are_accepted() -> None:
    text = "\r\n".join(json.dumps(request_line(f"r{i}")) for i in range(3)) + "\r\n"
    assert check_batch_input(io.BytesIO(text.encode())).ok


def test_deeply_nested_json_is_an_invalid_line_not_a_crash() -> None:
    assert problems(jsonl(request_line("a"), "[" * 100_000 + "]" * 100_000)) == [(2, "invalid_json_line")]


def test_the_report_bounds_the_tokens_a_budget_must_hold() -> None:
    stream = jsonl(
        request_line("a", body={"model": "m", "max_tokens": 100}),
        request_line("b", body={"model": "m", "max_completion_tokens": 50}),
        request_line("c", body={"model": "m"}),
    )
    report = check_batch_input(stream)
    assert (report.output_token_limit, report.lines_without_output_limit) == (150, 1)
    assert report.input_token_estimate >= len(stream.getvalue()) // 4


def test_each_of_n_choices_is_held_for_as_the_provider_bills_each() -> None:
    stream = jsonl(
        request_line("a", body={"model": "m", "n": 128, "max_tokens": 1000}),
        request_line("b", body={"model": "m", "n": 3, "max_completion_tokens": 10}),
        request_line("c", body={"model": "m", "n": 4}),
        request_line("d", body={"model": "m", "max_tokens": 5, "best_of": 6, "n": 2}),
    )
    report = check_batch_input(stream)
    assert report.output_token_limit == 128 * 1000 + 3 * 10 + 6 * 5
    assert report.lines_without_output_limit == 4  # four uncapped choices, each at the default
