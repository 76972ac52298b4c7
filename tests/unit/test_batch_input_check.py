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
    batch_problems,
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


def problem_lines(
    stream: io.BytesIO, rules: CheckRules | None = None
) -> list[tuple[int | None, str, str | None]]:
    return [(p.line, p.code, p.param) for p in check_batch_input(stream, rules).problems]


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in request_line("x").items() if k != name}


@pytest.mark.parametrize(
    ("bad_line", "code"),
    [
        ("{not json", "invalid_json_line"),
        ("[1, 2]", "invalid_json_line"),
        ('"a string"', "invalid_json_line"),
    ],
)
def test_a_line_that_is_no_json_object_refuses_the_upload(bad_line: str, code: str) -> None:
    report = check_batch_input(jsonl(request_line("first"), bad_line))
    assert report.refused
    assert [(p.line, p.code) for p in report.refusals.listed] == [(2, code)]
    with pytest.raises(InvalidRequestError) as raised:
        raise_if_invalid(report)
    assert (raised.value.code, raised.value.param) == (code, "file")
    assert "line 2: " in raised.value.message


@pytest.mark.parametrize(
    ("bad_line", "code", "param"),
    [
        (request_line(custom_id=None), "missing_required_parameter", "custom_id"),  # type: ignore[arg-type]
        (without("custom_id"), "missing_required_parameter", "custom_id"),
        (without("method"), "missing_required_parameter", "method"),
        (without("url"), "missing_required_parameter", "url"),
        (request_line("x", url=None), "missing_required_parameter", "url"),
        (without("body"), "missing_required_parameter", "body"),
        (request_line(custom_id=7), "invalid_request", "custom_id"),  # type: ignore[arg-type]
        (request_line(custom_id=""), "invalid_request", "custom_id"),
        (request_line("x", method="GET"), "invalid_request", "method"),
        (request_line("x", url="/v1/audio/speech"), "invalid_url", "url"),
        (request_line("x", body="text"), "invalid_request", "body"),
        (request_line("x", body={"messages": []}), "invalid_request", "body.model"),
        (request_line("x", body={"model": 4}), "invalid_request", "body.model"),
        (
            request_line("x", body={"model": "gpt-4o-mini", "stream": True}),
            "streaming_unsupported",
            "body.stream",
        ),
    ],
)
def test_each_other_rule_is_a_batch_error_naming_its_line_and_param(
    bad_line: dict[str, Any], code: str, param: str
) -> None:
    """OpenAI's batch validation errors: the upload takes the file, a batch of it fails."""
    report = check_batch_input(jsonl(request_line("first"), bad_line))
    assert not report.refused
    raise_if_invalid(report)  # the upload takes it
    assert problem_lines(jsonl(request_line("first"), bad_line)) == [(2, code, param)]
    assert report.figures()["problems"] == [p.as_error() for p in report.problems]
    assert report.figures()["problem_count"] == 1


def test_a_line_missing_every_field_names_each() -> None:
    assert problem_lines(jsonl(request_line("a"), {"test": "data"})) == [
        (2, "missing_required_parameter", name) for name in ("custom_id", "method", "url", "body")
    ]


def test_a_duplicate_custom_id_names_both_lines() -> None:
    report = check_batch_input(jsonl(request_line("same"), request_line("other"), request_line("same")))
    assert [(p.line, p.code, p.param) for p in report.problems] == [(3, "duplicate_custom_id", "custom_id")]
    assert "line 1" in report.problems[0].message


def test_a_second_model_is_a_mismatch_against_the_first() -> None:
    stream = jsonl(request_line("a"), request_line("c", body={"model": "gpt-4o"}))
    assert problem_lines(stream) == [(2, "mismatched_model", "body.model")]


def test_urls_are_kept_per_endpoint_and_checked_against_the_batch_endpoint() -> None:
    report = check_batch_input(
        jsonl(
            request_line("a"),
            request_line("b", url="/v1/embeddings"),
            request_line("c", url="/v1/embeddings"),
        )
    )
    assert report.ok  # which url is wrong depends on the batch's endpoint
    figures = report.figures()
    assert figures["endpoints"] == {
        "/v1/chat/completions": {"line": 1, "count": 1},
        "/v1/embeddings": {"line": 2, "count": 2},
    }
    chat = batch_problems(figures, "/v1/chat/completions")
    assert (chat.count, [(p.line, p.code, p.param) for p in chat.listed]) == (2, [(2, "invalid_url", "url")])
    assert "does not match the batch endpoint" in chat.listed[0].message
    embeddings = batch_problems(figures, "/v1/embeddings")
    assert (embeddings.count, [p.line for p in embeddings.listed]) == (1, [1])


def test_stored_problems_and_url_problems_are_listed_by_line() -> None:
    figures = check_batch_input(
        jsonl(request_line("a", url="/v1/embeddings"), request_line("b"), request_line("b"))
    ).figures()
    found = batch_problems(figures, "/v1/chat/completions")
    assert [(p.line, p.code) for p in found.listed] == [(1, "invalid_url"), (3, "duplicate_custom_id")]
    assert found.count == 2


def test_a_file_checked_before_problems_were_kept_or_never_checked_has_none() -> None:
    old = {"lines": 3, "endpoint": "/v1/chat/completions", "model": "m", "input_token_estimate": 9}
    assert batch_problems(old, "/v1/chat/completions").count == 0
    assert [p.line for p in batch_problems(old, "/v1/embeddings").listed] == [1]
    assert batch_problems(None, "/v1/chat/completions").count == 0


@pytest.mark.parametrize("url", ["/chat/completions", "chat/completions", "/v1/chat/completions"])
def test_urls_are_accepted_with_or_without_v1(url: str) -> None:
    assert normalize_endpoint(url) == "/v1/chat/completions"
    assert check_batch_input(jsonl(request_line("a", url=url), request_line("b"))).ok


def test_an_empty_file_and_a_file_of_blank_lines_have_no_requests() -> None:
    """OpenAI takes the upload and fails the batch (`empty_file`)."""
    assert problems(io.BytesIO(b"")) == [(None, "empty_file")]
    assert problems(io.BytesIO(b"\n  \n")) == [(None, "empty_file")]
    assert not check_batch_input(io.BytesIO(b"")).refused


def test_blank_lines_between_requests_are_errors_but_trailing_ones_are_not() -> None:
    stream = io.BytesIO(
        (json.dumps(request_line("a")) + "\n\n" + json.dumps(request_line("b")) + "\n\n\n").encode()
    )
    assert problems(stream) == [(2, "invalid_json_line")]


def test_too_many_requests_are_counted_to_the_end_and_fail_the_batch() -> None:
    stream = jsonl(*(request_line(f"r{i}") for i in range(5)))
    report = check_batch_input(stream, CheckRules(max_lines=3))
    assert [(p.line, p.code) for p in report.problems] == [(None, "too_many_tasks")]
    assert (report.lines, report.refused) == (5, False)


def test_a_file_over_the_size_limit_stops_the_check_and_refuses_the_upload() -> None:
    stream = jsonl(*(request_line(f"r{i}") for i in range(5)))
    limit = len(stream.getvalue()) - 10
    assert problems(stream, CheckRules(max_bytes=limit)) == [(None, "file_too_large")]
    stream.seek(0)
    assert check_batch_input(stream, CheckRules(max_bytes=limit)).refused
    stream.seek(0)
    assert problems(stream, CheckRules(max_bytes=len(stream.getvalue()))) == []


def test_a_line_longer_than_the_line_limit_stops_the_check() -> None:
    stream = jsonl(request_line("a"), request_line("b", body={"model": "m", "pad": "x" * 500}))
    assert problems(stream, CheckRules(max_line_bytes=300)) == [(2, "line_too_long")]


def test_a_custom_id_pattern_applies_when_the_provider_has_one() -> None:
    rules = CheckRules(custom_id_pattern=re.compile(r"[a-zA-Z0-9_-]{1,64}"))
    assert problem_lines(jsonl(request_line("ok_1"), request_line("not ok!")), rules) == [
        (2, "invalid_request", "custom_id")
    ]


def test_a_file_with_twelve_broken_lines_lists_the_first_ten() -> None:
    stream = jsonl(request_line("good"), *["{broken" for _ in range(12)])
    report = check_batch_input(stream)
    assert report.problem_count == 12
    assert [p.line for p in report.problems] == list(range(2, 12))
    with pytest.raises(InvalidRequestError) as raised:
        raise_if_invalid(report)
    error = raised.value
    assert (error.status_code, error.code, error.param) == (400, "invalid_json_line", "file")
    assert error.message.startswith(
        "The file is not JSON Lines of request objects: it has 12 problems: line 2: "
    )
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


def test_a_file_with_twelve_batch_errors_keeps_the_first_ten_and_the_count() -> None:
    stream = jsonl(request_line("good"), *(request_line("good") for _ in range(12)))
    figures = check_batch_input(stream).figures()
    assert figures["problem_count"] == 12
    assert [error["line"] for error in figures["problems"]] == list(range(2, 12))
    found = batch_problems(figures, "/v1/chat/completions")
    assert (found.count, len(found.listed)) == (12, 10)


def test_a_line_the_provider_cannot_take_is_a_batch_error() -> None:
    def no_tools(body: dict[str, Any]) -> None:
        if "tools" in body:
            raise ValueError("tools are not supported")

    stream = jsonl(request_line("a"), request_line("b", body={"model": "gpt-4o-mini", "tools": []}))
    report = check_batch_input(stream, CheckRules(line_check=no_tools))
    assert not report.refused
    assert [(p.line, p.code, p.message) for p in report.problems] == [
        (2, "untranslatable_line", "tools are not supported")
    ]


def test_an_uncapped_line_with_a_reasoning_effort_counts_its_thinking_budget() -> None:
    stream = jsonl(
        request_line("a", body={"model": "m", "reasoning_effort": "high"}),
        request_line("b", body={"model": "m", "reasoning_effort": "low", "max_tokens": 5000}),
        request_line("c", body={"model": "m", "reasoning_effort": "none"}),
    )
    report = check_batch_input(stream)
    assert report.lines_without_output_limit == 2 and report.output_token_limit == 5000
    assert report.figures()["uncapped_thinking_budget"] == 4096  # high's budget; capped lines hold their cap
