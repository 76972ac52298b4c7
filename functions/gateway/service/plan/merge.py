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
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.custom_ids import custom_id_of

OUTPUT, ERROR = 0, 1
# a spooled result as merge reads it: (input line, attempt, kind, line with its end)
_Record = tuple[int, int, int, bytes]
# A spooled record is one line of its spool: the input line number in NUMBER_DIGITS digits,
# the kind (OUTPUT/ERROR) in one, then the result line with its end (which has no other).
_NUMBER_DIGITS = 12
_SPOOL_BUFFER = 1024 * 1024
_WRITE_BATCH = 512  # lines handed to an output writer at once


class BytesWriter(Protocol):
    """Where merged lines go: a binary file, or storage.plan_files.S3ObjectWriter."""

    def write(self, data: bytes, /) -> object: ...


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


def merge_results(attempts: Sequence[PartResult], output: BytesWriter, errors: BytesWriter) -> MergeCounts:
    """Writes every line's last result to `output` or `errors`, in input order."""
    with tempfile.TemporaryDirectory(prefix="plan-merge-") as spool_dir:
        spools = [_spool(number, attempt, spool_dir) for number, attempt in enumerate(attempts)]
        return _write_merged(_chains(spools), len(attempts), output, errors)


@dataclass(frozen=True)
class _Spool:
    """An attempt's results sorted by input line, in a file; the lines it spans."""

    path: str
    attempt: int
    first: int
    last: int

    def records(self) -> Iterator[_Record]:
        """(input line, attempt, kind, line with its end), in input line order."""
        attempt, digits = self.attempt, _NUMBER_DIGITS
        with open(self.path, "rb", buffering=_SPOOL_BUFFER) as file:
            for record in file:
                yield int(record[:digits]), attempt, record[digits] - 48, record[digits + 1 :]


def _chains(spools: list[_Spool]) -> list[Iterator[_Record]]:
    """The spools as few sorted streams as can be: spools whose lines do not overlap (the parts
    of one split) are read one after the other, so the heap merges only what overlaps (a retry
    part with the parts it retries), and holds one record of each stream."""
    chains: list[list[_Spool]] = []
    for spool in sorted((spool for spool in spools if spool.first >= 0), key=lambda s: (s.first, s.attempt)):
        chain = next((chain for chain in chains if chain[-1].last < spool.first), None)
        if chain is None:
            chains.append([spool])
        else:
            chain.append(spool)
    return [itertools.chain.from_iterable(spool.records() for spool in chain) for chain in chains]


def _write_merged(
    streams: list[Iterator[_Record]],
    attempts: int,
    output: BytesWriter,
    errors: BytesWriter,
) -> MergeCounts:
    per_part = [0] * attempts
    counts = [0, 0]
    replaced = 0
    # (input line, attempt) orders the records: of a line's results, its last attempt's is last
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    writers = (output, errors)
    batches: tuple[list[bytes], list[bytes]] = ([], [])
    pending: _Record | None = None
    for record in itertools.chain(merged, [None]):
        if pending is not None and record is not None and record[0] == pending[0]:
            replaced += 1  # a later result of the same line: it wins
        elif pending is not None:
            _, attempt, kind, line = pending
            batch = batches[kind]
            batch.append(line)
            if len(batch) >= _WRITE_BATCH:
                writers[kind].write(b"".join(batch))
                batch.clear()
            counts[kind] += 1
            per_part[attempt] += 1
        pending = record
    for kind, batch in enumerate(batches):
        if batch:
            writers[kind].write(b"".join(batch))
    return MergeCounts(counts[OUTPUT], counts[ERROR], tuple(per_part), replaced)


def _spool(attempt: int, result: PartResult, spool_dir: str) -> _Spool:
    """The attempt's lines as records sorted by input line (stable: a line's later result in
    the same attempt comes after its earlier one), in a file of `spool_dir`."""
    index = result.index()
    path = os.path.join(spool_dir, f"{attempt}.spool")
    # each record's input line and start, in the order written (arrays: 16 bytes a record)
    numbers, offsets = array("q"), array("q")
    in_order = True
    offset = previous = 0
    find, record_format = index.get, b"%0" + str(_NUMBER_DIGITS).encode() + b"d%d%s"
    with open(path, "wb", buffering=_SPOOL_BUFFER) as spool:
        held: list[bytes] = []  # records written _WRITE_BATCH at a time: a write is a call
        keep = held.append
        for kind, lines in ((OUTPUT, result.output()), (ERROR, result.errors())):
            for raw in lines:
                line = raw if raw[-1:] == b"\n" else raw + b"\n"
                if line[:1] != b"{" and not line.strip():
                    continue
                if line.count(b"\n") != 1:
                    raise MergeError(attempt, "a result line holds a line break")
                custom_id = custom_id_of(line)
                number = find(custom_id) if custom_id is not None else None
                if number is None:
                    raise MergeError(attempt, f"a result for {custom_id!r}, not in the part's index")
                if number < previous:
                    in_order = False
                previous = number
                record = record_format % (number, kind, line)
                keep(record)
                numbers.append(number)
                offsets.append(offset)
                offset += len(record)
                if len(held) >= _WRITE_BATCH:
                    spool.write(b"".join(held))
                    held.clear()
        spool.write(b"".join(held))
    del index
    offsets.append(offset)  # the end of the last record
    if not numbers:
        return _Spool(path, attempt, -1, -1)
    if in_order:
        return _Spool(path, attempt, numbers[0], numbers[-1])
    order = sorted(range(len(numbers)), key=numbers.__getitem__)  # stable: ties keep read order
    sorted_path = path + ".sorted"
    unsorted = os.open(path, os.O_RDONLY)
    try:
        with open(sorted_path, "wb", buffering=_SPOOL_BUFFER) as out:
            for first in range(0, len(order), _WRITE_BATCH):
                out.write(
                    b"".join(
                        [
                            os.pread(unsorted, offsets[at + 1] - offsets[at], offsets[at])
                            for at in order[first : first + _WRITE_BATCH]
                        ]
                    )
                )
    finally:
        os.close(unsorted)
    os.remove(path)
    return _Spool(sorted_path, attempt, numbers[order[0]], numbers[order[-1]])
