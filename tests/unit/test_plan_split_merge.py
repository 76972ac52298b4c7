"""service.plan.split and .merge: parts within their limits, results merged once, in input order."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from gateway.formats.custom_ids import id_key
from gateway.service.batch_input_check import check_batch_input
from gateway.service.plan.merge import MergeCounts, MergeError, PartResult, merge_results
from gateway.service.plan.split import LineExceedsPart, PartLimits, PartSlice, SplitError, split_input
from hypothesis import given, settings
from hypothesis import strategies as st


@dataclass
class MemorySink:
    lines: list[bytes] = field(default_factory=list)
    index: list[tuple[int, str]] = field(default_factory=list)
    closed: bool = False
    aborted: bool = False

    def write(self, line: bytes) -> None:
        self.lines.append(line)

    def record(self, line_number: int, custom_id: str) -> None:
        self.index.append((line_number, custom_id))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def request_line(custom_id: str, padding: int = 0) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * padding}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line).encode()


def run_split(
    lines: list[bytes], limits: PartLimits, select: Callable[[int], bool] | None = None
) -> tuple[list[PartSlice], list[MemorySink]]:
    sinks: list[MemorySink] = []

    def open_part(number: int) -> MemorySink:
        assert number == len(sinks)
        sinks.append(MemorySink())
        return sinks[-1]

    return split_input(iter(lines), limits, open_part, select=select), sinks


def test_parts_close_before_each_limit() -> None:
    lines = [request_line(f"r{n}", padding=n % 7 * 10) for n in range(25)]
    by_requests, sinks = run_split(lines, PartLimits(max_requests=10, max_bytes=10**9, max_tokens=None))
    assert [part.line_count for part in by_requests] == [10, 10, 5]
    assert all(sink.closed and not sink.aborted for sink in sinks)
    assert b"".join(line for sink in sinks for line in sink.lines) == b"".join(line + b"\n" for line in lines)

    sizes = [len(line) + 1 for line in lines]
    by_bytes, _ = run_split(lines, PartLimits(10**6, max_bytes=3 * max(sizes), max_tokens=None))
    assert all(part.byte_count <= 3 * max(sizes) for part in by_bytes)
    assert sum(part.byte_count for part in by_bytes) == sum(sizes)

    report = check_batch_input(io.BytesIO(b"\n".join(lines)))
    tokens = report.input_token_estimate
    by_tokens, _ = run_split(lines, PartLimits(10**6, 10**9, max_tokens=tokens // 4))
    assert len(by_tokens) >= 4
    assert sum(part.token_estimate for part in by_tokens) == tokens  # the upload check's estimate
    assert all(part.token_estimate <= tokens // 4 for part in by_tokens)


def test_index_holds_input_line_numbers_skipping_blank_lines() -> None:
    lines = [request_line("a"), b"", request_line("b"), request_line("c"), b"  "]
    slices, sinks = run_split(lines, PartLimits(2, 10**6, None))
    assert [sink.index for sink in sinks] == [[(1, "a"), (3, "b")], [(4, "c")]]
    assert [(part.first_line, part.last_line) for part in slices] == [(1, 3), (4, 4)]


def test_select_keeps_only_the_retried_lines() -> None:
    lines = [request_line(f"r{n}") for n in range(1, 11)]
    slices, sinks = run_split(lines, PartLimits(3, 10**6, None), select=lambda number: number % 4 == 0)
    assert [sink.index for sink in sinks] == [[(4, "r4"), (8, "r8")]]
    assert slices[0].line_count == 2


def test_no_line_no_part() -> None:
    assert run_split([], PartLimits(3, 100, None)) == ([], [])


def test_a_line_over_a_parts_bytes_names_it_and_leaves_no_open_part() -> None:
    lines = [request_line("small"), request_line("big", padding=500)]
    with pytest.raises(LineExceedsPart) as raised:
        run_split(lines, PartLimits(10, 300, None))
    assert raised.value.line_number == 2 and raised.value.custom_id == "big"
    assert "line 2" in str(raised.value)

    sinks: list[MemorySink] = []

    def open_part(number: int) -> MemorySink:
        sinks.append(MemorySink())
        return sinks[-1]

    with pytest.raises(LineExceedsPart):
        split_input(iter(lines), PartLimits(10, 300, None), open_part)
    assert sinks[0].aborted and not sinks[0].closed


def test_a_line_over_a_parts_tokens_is_refused() -> None:
    with pytest.raises(LineExceedsPart) as raised:
        run_split([request_line("big", padding=400)], PartLimits(10, 10**6, max_tokens=50))
    assert raised.value.token_estimate > 50


def test_a_line_without_custom_id_is_a_split_error() -> None:
    with pytest.raises(SplitError, match="line 2"):
        run_split([request_line("a"), b'{"method": "POST"}'], PartLimits(10, 10**6, None))


def test_limits_must_admit_a_line() -> None:
    with pytest.raises(ValueError):
        PartLimits(0, 100, None)
    with pytest.raises(ValueError):
        PartLimits(1, 100, 0)


# merge -----------------------------------------------------------------------------------


def output_line(custom_id: str, attempt: int) -> bytes:
    answer = {"id": f"batch_req_{attempt}", "custom_id": custom_id, "response": {"status_code": 200}}
    return json.dumps(answer).encode()


def error_line(custom_id: str, code: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "response": None, "error": {"code": code}}).encode()


def merged(attempts: list[PartResult]) -> tuple[list[bytes], list[bytes], MergeCounts]:
    output, errors = io.BytesIO(), io.BytesIO()
    counts = merge_results(attempts, output, errors)
    return output.getvalue().splitlines(), errors.getvalue().splitlines(), counts


def test_merge_orders_by_input_line_and_copies_bytes() -> None:
    odd = b'{"custom_id":  "c",   "response": {"body": "kept \\u00e9 as is"}}'
    parts = [
        PartResult.of({"a": 1, "b": 2}, [output_line("b", 0), output_line("a", 0)]),
        PartResult.of({"c": 3, "d": 5}, [odd], [error_line("d", "server_error")]),
    ]
    output, errors, counts = merged(parts)
    assert output == [output_line("a", 0), output_line("b", 0), odd]
    assert errors == [error_line("d", "server_error")]
    assert counts.completed == 3 and counts.failed == 1 and counts.lines_per_part == (2, 2)


def test_a_retry_replaces_the_earlier_attempt_of_its_lines() -> None:
    first = PartResult.of(
        {"a": 1, "b": 2, "c": 3},
        [output_line("a", 0)],
        [error_line("b", "batch_expired"), error_line("c", "server_error")],
    )
    retry = PartResult.of({"b": 2, "c": 3}, [output_line("b", 1)], [error_line("c", "server_error")])
    output, errors, counts = merged([first, retry])
    assert output == [output_line("a", 0), output_line("b", 1)]
    assert errors == [error_line("c", "server_error")]
    assert counts.replaced == 2 and counts.lines_per_part == (1, 2)


def test_a_line_the_retry_has_no_result_for_keeps_its_earlier_result() -> None:
    first = PartResult.of({"a": 1}, [], [error_line("a", "batch_expired")])
    cancelled_retry = PartResult.of({"a": 1}, [], [])
    output, errors, _ = merged([first, cancelled_retry])
    assert output == [] and errors == [error_line("a", "batch_expired")]


def test_interleaved_parts_merge_in_input_order() -> None:
    odd = PartResult.of({"l1": 1, "l3": 3, "l5": 5}, [output_line(c, 0) for c in ("l5", "l1", "l3")])
    even = PartResult.of({"l2": 2, "l4": 4}, [output_line(c, 1) for c in ("l2", "l4")])
    later = PartResult.of({"l7": 7}, [output_line("l7", 2)])
    output, _, counts = merged([later, odd, even])
    assert [json.loads(line)["custom_id"] for line in output] == ["l1", "l2", "l3", "l4", "l5", "l7"]
    assert counts.lines_per_part == (1, 3, 2) and counts.replaced == 0


def test_a_result_outside_the_parts_index_is_a_merge_error() -> None:
    with pytest.raises(MergeError, match="'zz'"):
        merged([PartResult.of({"a": 1}, [output_line("zz", 0)])])


def test_parts_are_read_one_at_a_time() -> None:
    opened: list[int] = []

    def part(number: int, ids: dict[str, int]) -> PartResult:
        def index() -> dict[bytes, int]:
            opened.append(number)
            assert len(opened) == number + 1  # the previous part was read first
            return {id_key(cid): n for cid, n in ids.items()}

        return PartResult(index, lambda: [output_line(cid, number) for cid in ids], lambda: [])

    output, _, _ = merged([part(0, {"a": 2}), part(1, {"b": 1})])
    assert output == [output_line("b", 1), output_line("a", 0)]


# properties ------------------------------------------------------------------------------

line_sizes = st.lists(st.integers(min_value=0, max_value=120), min_size=0, max_size=60)


@st.composite
def limits(draw: st.DrawFn) -> PartLimits:
    # every generated line is at most ~260 bytes and ~66 tokens, so these admit any line
    tokens = draw(st.none() | st.integers(min_value=80, max_value=2000))
    return PartLimits(
        max_requests=draw(st.integers(min_value=1, max_value=20)),
        max_bytes=draw(st.integers(min_value=300, max_value=5000)),
        max_tokens=tokens,
    )


@settings(max_examples=200, deadline=None)
@given(sizes=line_sizes, part_limits=limits())
def test_any_split_respects_the_limits_and_keeps_every_line_once(
    sizes: list[int], part_limits: PartLimits
) -> None:
    lines = [request_line(f"id-{n}", padding) for n, padding in enumerate(sizes)]
    slices, sinks = run_split(lines, part_limits)
    for part, sink in zip(slices, sinks, strict=True):
        assert 1 <= part.line_count <= part_limits.max_requests
        assert part.byte_count == sum(len(line) for line in sink.lines) <= part_limits.max_bytes
        assert part_limits.max_tokens is None or part.token_estimate <= part_limits.max_tokens
        assert part.line_count == len(sink.lines) == len(sink.index)
    assert [number for sink in sinks for number, _ in sink.index] == list(range(1, len(lines) + 1))
    assert b"".join(line for sink in sinks for line in sink.lines) == b"".join(line + b"\n" for line in lines)
    # greedy: a part closed only because the next line would not fit
    for closed, following in itertools.pairwise(sinks):
        size, request = len(following.lines[0]), len(closed.lines) + 1
        tokens = sum((len(line) - 1) // 4 + 1 for line in [*closed.lines, following.lines[0]])
        assert (
            request > part_limits.max_requests
            or sum(len(line) for line in closed.lines) + size > part_limits.max_bytes
            or (part_limits.max_tokens is not None and tokens > part_limits.max_tokens)
        )


@dataclass
class SimulatedProvider:
    """Answers a part's lines in a shuffled order; some fail or expire on a line's first attempt."""

    outcome: Callable[[str, int], str]  # (custom_id, attempt) -> "ok" | error code
    order_seed: int
    seen: dict[str, int] = field(default_factory=dict)

    def run(self, sink: MemorySink, attempt: int) -> PartResult:
        output: list[bytes] = []
        errors: list[bytes] = []
        for _number, custom_id in sink.index:
            tries = self.seen[custom_id] = self.seen.get(custom_id, 0) + 1
            result = self.outcome(custom_id, tries)
            if result == "ok":
                output.append(output_line(custom_id, attempt))
            else:
                errors.append(error_line(custom_id, result))
        shuffled = _shuffled(output, self.order_seed + attempt)
        return PartResult.of({cid: number for number, cid in sink.index}, shuffled, errors[::-1])


def _shuffled(items: list[bytes], seed: int) -> list[bytes]:
    import random

    items = list(items)
    random.Random(seed).shuffle(items)
    return items


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=80),
    max_requests=st.integers(min_value=1, max_value=15),
    first_failures=st.sets(st.integers(min_value=0, max_value=79)),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_split_then_merge_returns_every_line_once_in_input_order_last_attempt_winning(
    count: int, max_requests: int, first_failures: set[int], seed: int
) -> None:
    ids = [f"req-{n}" for n in range(count)]
    lines: list[bytes] = []
    for custom_id in ids:
        lines.extend([request_line(custom_id), b""] if seed % 3 == 0 else [request_line(custom_id)])
    failing = {ids[n] for n in first_failures if n < count}
    provider = SimulatedProvider(
        lambda cid, tries: "server_error" if cid in failing and tries == 1 else "ok", seed
    )
    limits = PartLimits(max_requests, 10**6, None)
    _, sinks = run_split(lines, limits)
    attempts = [provider.run(sink, n) for n, sink in enumerate(sinks)]
    first_output, first_errors, _ = merged(attempts)
    failed_lines = {number for sink in sinks for number, custom_id in sink.index if custom_id in failing}
    _, retry_sinks = run_split(lines, limits, select=failed_lines.__contains__)
    attempts += [provider.run(sink, len(attempts) + n) for n, sink in enumerate(retry_sinks)]
    output, errors, counts = merged(attempts)

    assert [json.loads(line)["custom_id"] for line in first_output] == [c for c in ids if c not in failing]
    assert len(first_errors) == len(failing)
    assert errors == []  # every line's retry succeeded, and replaced its error
    assert [json.loads(line)["custom_id"] for line in output] == ids
    retried_attempt = {cid: json.loads(line)["id"] for cid, line in zip(ids, output, strict=True)}
    assert all(retried_attempt[cid] != "batch_req_0" or cid not in failing for cid in ids)
    assert counts.completed == count and counts.replaced == len(failing)
    assert sum(counts.lines_per_part) == count


def test_merge_of_no_parts_is_empty() -> None:
    assert merged([])[:2] == ([], [])
