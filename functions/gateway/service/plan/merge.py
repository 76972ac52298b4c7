"""Merges the results of a plan's parts into one output file and one error file.

Every input line appears once, in input order, in the output file or the error file, from
the last attempt (in `attempts` order) that has a result for it: a retry part's line replaces
the earlier part's. Lines are copied byte for byte; only `custom_id` is parsed, to find the
line's input number in the part's index. Memory is bounded by one part: each attempt's lines
are spooled to a temporary file, sorted by input line there (an external sort of one part),
and the sorted spools are merged with `heapq.merge`, reading one record of each at a time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO

OUTPUT, ERROR = 0, 1
# one spooled record: input line number, kind (OUTPUT/ERROR), length; then the line's bytes
_HEADER = struct.Struct(">QBI")
_SPOOL_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class PartResult:
    """One attempt's results: its index (custom_id -> input line number) and its output and
    error lines (each read once, in any order, with or without their ends). Callables, so that
    a part's index and files are read only while that part is spooled."""

    index: Callable[[], Mapping[str, int]]
    output: Callable[[], Iterable[bytes]]
    errors: Callable[[], Iterable[bytes]]

    @classmethod
    def of(
        cls, index: Mapping[str, int], output: Iterable[bytes], errors: Iterable[bytes] = ()
    ) -> PartResult:
        return cls(lambda: index, lambda: output, lambda: errors)


@dataclass(frozen=True)
class MergeCounts:
    completed: int  # lines in the output file
    failed: int  # lines in the error file
    lines_per_part: tuple[int, ...]  # how many of each attempt's lines the files hold
    replaced: int = 0  # results of a line that a later attempt replaced

    @property
    def total(self) -> int:
        return self.completed + self.failed


class MergeError(ValueError):
    """A part's results name a line its index does not hold (nothing is written in its name)."""

    def __init__(self, attempt: int, message: str) -> None:
        super().__init__(f"part result {attempt}: {message}")
        self.attempt = attempt


def result_custom_id(line: bytes) -> str | None:
    """The `custom_id` of an OpenAI output or error line (None when it has none)."""
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        return None
    custom_id = parsed.get("custom_id") if isinstance(parsed, dict) else None
    return custom_id if isinstance(custom_id, str) else None


def merge_results(attempts: Sequence[PartResult], output: BinaryIO, errors: BinaryIO) -> MergeCounts:
    """Writes every line's last result to `output` or `errors`, in input order."""
    with tempfile.TemporaryDirectory(prefix="plan-merge-") as spool_dir:
        spools = [_spool(number, attempt, spool_dir) for number, attempt in enumerate(attempts)]
        files = [open(path, "rb", buffering=_SPOOL_BUFFER) for path in spools]  # noqa: SIM115
        try:
            return _merge_sorted(files, output, errors)
        finally:
            for file in files:
                file.close()


def _merge_sorted(files: Sequence[IO[bytes]], output: BinaryIO, errors: BinaryIO) -> MergeCounts:
    per_part = [0] * len(files)
    counts = [0, 0]
    replaced = 0
    streams = [_records(file, number) for number, file in enumerate(files)]
    merged = heapq.merge(*streams, key=lambda record: (record[0], record[1]))
    targets = (output, errors)
    pending: tuple[int, int, int, bytes] | None = None
    for record in itertools.chain(merged, [None]):
        if pending is not None and record is not None and record[0] == pending[0]:
            replaced += 1  # a later result of the same line: it wins
        elif pending is not None:
            _, attempt, kind, line = pending
            targets[kind].write(line)
            counts[kind] += 1
            per_part[attempt] += 1
        pending = record
    return MergeCounts(counts[OUTPUT], counts[ERROR], tuple(per_part), replaced)


def _records(file: IO[bytes], attempt: int) -> Iterator[tuple[int, int, int, bytes]]:
    """(input line, attempt, kind, line with its end) of a sorted spool, in its order."""
    read = file.read
    size, unpack = _HEADER.size, _HEADER.unpack
    while header := read(size):
        number, kind, length = unpack(header)
        yield number, attempt, kind, read(length)


def _spool(attempt: int, result: PartResult, spool_dir: str) -> str:
    """The attempt's lines as records sorted by input line (stable: a line's later result in
    the same attempt comes after its earlier one), in a file of `spool_dir`; its path."""
    index = result.index()
    path = os.path.join(spool_dir, f"{attempt}.spool")
    # (input line, order read, offset, record length) of each record, while appending them
    entries: list[tuple[int, int, int, int]] = []
    in_order = True
    offset = 0
    with open(path, "wb", buffering=_SPOOL_BUFFER) as spool:
        for kind, lines in ((OUTPUT, result.output()), (ERROR, result.errors())):
            for raw in lines:
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                if not line.strip():
                    continue
                custom_id = result_custom_id(line)
                number = index.get(custom_id) if custom_id is not None else None
                if number is None:
                    raise MergeError(attempt, f"a result for {custom_id!r}, not in the part's index")
                if entries and number < entries[-1][0]:
                    in_order = False
                record_length = _HEADER.size + len(line)
                spool.write(_HEADER.pack(number, kind, len(line)))
                spool.write(line)
                entries.append((number, len(entries), offset, record_length))
                offset += record_length
    del index
    if in_order:
        return path
    entries.sort()
    sorted_path = path + ".sorted"
    with open(path, "rb") as unsorted, open(sorted_path, "wb", buffering=_SPOOL_BUFFER) as out:
        for _, _, start, length in entries:
            unsorted.seek(start)
            out.write(unsorted.read(length))
    os.remove(path)
    return sorted_path
