"""Splits a batch input file into parts a provider takes, in one pass over its lines.

A part is closed before the next line would take it over its request count, its bytes or its
token estimate (the upload check's own, `batch_input_check.line_token_estimate`); a line that
alone is over a part's bytes or tokens raises `LineExceedsPart`, naming it. Each part's sink
is given its lines (each with its end, exactly the part file's bytes) and, for each, the input
line number (1-based, as the upload check numbers lines) and `custom_id`: the part's index,
kept beside the part file, is what `merge` orders results by. Memory holds one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.service.batch_input_check import line_token_estimate


@dataclass(frozen=True)
class PartLimits:
    """What one part may hold (from the provider's BatchCaps; tokens None: no token cap)."""

    max_requests: int
    max_bytes: int
    max_tokens: int | None

    def __post_init__(self) -> None:
        tokens_ok = self.max_tokens is None or self.max_tokens >= 1
        if self.max_requests < 1 or self.max_bytes < 1 or not tokens_ok:
            raise ValueError(f"a part must be able to hold a line: {self}")


@dataclass(frozen=True)
class PartSlice:
    index: int  # 0-based part number within this split
    line_count: int
    byte_count: int
    token_estimate: int  # the same estimate the upload check makes
    first_line: int = 0  # input line numbers (1-based) of its first and last lines
    last_line: int = 0


class PartSink(Protocol):
    """Where part N's lines go: its file and its index."""

    def write(self, line: bytes) -> None:
        """One line of the part file, with its end (b"\\n")."""

    def record(self, line_number: int, custom_id: str) -> None:
        """The line just written is input line `line_number` (1-based) with this custom_id."""

    def close(self) -> None:
        """The part is complete: make its file and index durable."""

    def abort(self) -> None:
        """The split failed: leave no part file behind (best effort)."""


class SplitError(ValueError):
    """The input cannot be split as it is (the upload check should have refused it)."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number


class LineExceedsPart(SplitError):
    """One line is over what a part may hold by itself: no split can place it."""

    def __init__(
        self, line_number: int, custom_id: str, byte_count: int, token_estimate: int, limits: PartLimits
    ) -> None:
        super().__init__(
            line_number,
            f"request {custom_id!r} ({byte_count} bytes, about {token_estimate} tokens) is over what one "
            f"part holds ({limits.max_bytes} bytes, {limits.max_tokens} tokens)",
        )
        self.custom_id = custom_id
        self.byte_count = byte_count
        self.token_estimate = token_estimate


def line_custom_id(line: bytes, line_number: int) -> str:
    """The request line's `custom_id` (a SplitError when it has none)."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise SplitError(line_number, "not a JSON object") from exc
    custom_id = request.get("custom_id") if isinstance(request, dict) else None
    if not isinstance(custom_id, str) or not custom_id:
        raise SplitError(line_number, "no custom_id")
    return custom_id


@dataclass
class _OpenPart:
    index: int
    sink: PartSink
    first_line: int
    lines: int = 0
    bytes: int = 0
    tokens: int = 0
    last_line: int = 0

    def takes(self, size: int, tokens: int, limits: PartLimits) -> bool:
        return (
            self.lines < limits.max_requests
            and self.bytes + size <= limits.max_bytes
            and (limits.max_tokens is None or self.tokens + tokens <= limits.max_tokens)
        )

    def closed(self) -> PartSlice:
        self.sink.close()
        return PartSlice(self.index, self.lines, self.bytes, self.tokens, self.first_line, self.last_line)


def split_input(
    lines: Iterable[bytes],
    limits: PartLimits,
    open_part: Callable[[int], PartSink],
    *,
    select: Callable[[int], bool] | None = None,
) -> list[PartSlice]:
    """Streams `lines` (the input file's lines without their ends) once into parts. Blank lines
    are skipped (they count in the numbering); `select` keeps only the input line numbers it
    accepts (a retry part's lines). The parts in order; none for no line."""
    slices: list[PartSlice] = []
    part: _OpenPart | None = None
    try:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip() or (select is not None and not select(number)):
                continue
            custom_id = line_custom_id(raw, number)
            size, tokens = len(raw) + 1, line_token_estimate(raw)
            if size > limits.max_bytes or (limits.max_tokens is not None and tokens > limits.max_tokens):
                raise LineExceedsPart(number, custom_id, size, tokens, limits)
            if part is not None and not part.takes(size, tokens, limits):
                slices.append(part.closed())
                part = None
            if part is None:
                part = _OpenPart(len(slices), open_part(len(slices)), number)
            part.sink.write(raw + b"\n")
            part.sink.record(number, custom_id)
            part.lines, part.bytes, part.tokens, part.last_line = (
                part.lines + 1,
                part.bytes + size,
                part.tokens + tokens,
                number,
            )
        if part is not None:
            slices.append(part.closed())
            part = None
    except BaseException:
        if part is not None:
            part.sink.abort()
        raise
    return slices
