"""Splits a batch input file into parts a provider takes, in one pass over its lines.

A part is closed before the next line would take it over its request count, its bytes or its
token estimate (the upload check's own, `batch_input_check.line_token_estimate`); a line that
alone is over a part's bytes or tokens raises `LineExceedsPart`, naming it. Each part's sink
is given its lines (each with its end, exactly the part file's bytes) and, for each, the input
line number (1-based, as the upload check numbers lines) and `custom_id`: the part's index,
kept beside the part file, is what `merge` orders results by. Memory holds one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.formats.custom_ids import custom_id_of
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


_NO_CUSTOM_ID = "no custom_id (or not a JSON object)"


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
    max_requests, max_bytes = limits.max_requests, limits.max_bytes
    max_tokens = limits.max_tokens if limits.max_tokens is not None else sys.maxsize
    slices: list[PartSlice] = []
    sink: PartSink | None = None
    # the open part's figures and methods (a loop of locals: this runs once per line of the file)
    count = size_sum = token_sum = first = last = 0
    write: Callable[[bytes], None]  # the open sink's (bound once a part)
    record: Callable[[int, str], None]
    try:
        for number, raw in enumerate(lines, start=1):
            if select is not None and not select(number):
                continue
            # a request line starts with "{": only another line can be blank (strip copies it)
            if raw[:1] != b"{" and not raw.strip():
                continue
            custom_id = custom_id_of(raw)
            if custom_id is None:
                raise SplitError(number, _NO_CUSTOM_ID)
            size, tokens = len(raw) + 1, line_token_estimate(raw)
            if size > max_bytes or tokens > max_tokens:
                raise LineExceedsPart(number, custom_id, size, tokens, limits)
            if sink is not None and (
                count >= max_requests or size_sum + size > max_bytes or token_sum + tokens > max_tokens
            ):
                sink.close()
                slices.append(PartSlice(len(slices), count, size_sum, token_sum, first, last))
                sink = None
            if sink is None:
                sink = open_part(len(slices))
                write, record = sink.write, sink.record
                count = size_sum = token_sum = 0
                first = number
            write(raw + b"\n")
            record(number, custom_id)
            count += 1
            size_sum += size
            token_sum += tokens
            last = number
        if sink is not None:
            sink.close()
            slices.append(PartSlice(len(slices), count, size_sum, token_sum, first, last))
            sink = None
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    return slices
