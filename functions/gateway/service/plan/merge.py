"""Merges the results of a plan's parts into one output file and one error file.

Every input line appears once, in input order, in the output file or the error file, from
the last attempt (in `attempts` order) that has a result for it: a retry part's line replaces
the earlier part's. Lines are copied byte for byte; only `custom_id` is parsed, to find the
line's input number in the part's index. Memory is bounded by RUN_BYTES whatever a part's
size: each attempt's lines are held until RUN_BYTES, sorted by input line in memory and
written to a temporary file as a sorted run (an external sort); the runs are then merged with
`heapq.merge`, reading one record of each at a time, and runs that do not overlap (the parts
of one split; the runs of a part returned about in order) are read one after the other.
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

from gateway.formats.custom_ids import custom_id_of

OUTPUT, ERROR = 0, 1
# A spooled record is one line of its run: the input line number in NUMBER_DIGITS digits, the
# run's number (in attempt order) in RUN_DIGITS, the kind (OUTPUT/ERROR) in one, then the
# result line with its end (which has no other). Records compare as (input line, attempt, run):
# of a line's results, the last one read is last, and merge compares records as bytes.
_NUMBER_DIGITS = 12
_RUN_DIGITS = 6
_KIND_AT = _NUMBER_DIGITS + _RUN_DIGITS
_RECORD = b"%0" + str(_NUMBER_DIGITS).encode() + b"d%s%d%s"
_RECORD_ENDED = _RECORD + b"\n"
RUN_BYTES = 2 * 1024 * 1024  # records held and sorted in memory before a run is written
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
        runs: list[_Run] = []
        for number, attempt in enumerate(attempts):
            _spool(number, attempt, spool_dir, runs)
        return _write_merged(runs, len(attempts), output, errors)


@dataclass(frozen=True)
class _Run:
    """Records of one attempt sorted by input line, in a file; the lines they span."""

    path: str
    attempt: int
    first: int
    last: int
    records: int

    def read(self) -> Iterator[bytes]:
        with open(self.path, "rb", buffering=_SPOOL_BUFFER) as file:
            yield from file


def _chains(runs: list[_Run]) -> list[Iterator[bytes]]:
    """The runs as few sorted streams as can be: runs whose lines do not overlap (the parts of
    one split, the runs of a part returned about in order) are read one after the other, so
    the heap merges only what overlaps (a retry part with the parts it retries), and holds one
    record of each stream."""
    chains: list[list[_Run]] = []
    for run in sorted(runs, key=lambda r: r.first):  # stable: in attempt and run order
        chain = next((chain for chain in chains if chain[-1].last < run.first), None)
        if chain is None:
            chains.append([run])
        else:
            chain.append(run)
    return [itertools.chain.from_iterable(run.read() for run in chain) for chain in chains]


def _write_merged(runs: list[_Run], attempts: int, output: BytesWriter, errors: BytesWriter) -> MergeCounts:
    streams = _chains(runs)
    if not streams:
        return MergeCounts(0, 0, (0,) * attempts, 0)
    per_part = [0] * attempts
    for run in runs:
        per_part[run.attempt] += run.records
    counts = [0, 0]
    replaced = 0
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    writers = (output, errors)
    batches: tuple[list[bytes], list[bytes]] = ([], [])
    pending = b""
    pending_number = None
    kind_at, line_at, digits = _KIND_AT, _KIND_AT + 1, _NUMBER_DIGITS
    for record in merged:
        number = record[:digits]
        if number == pending_number:
            replaced += 1  # a later result of the same line: it wins
            per_part[runs[int(pending[digits:kind_at])].attempt] -= 1
        elif pending_number is not None:
            kind = pending[kind_at] - 48
            batch = batches[kind]
            batch.append(pending[line_at:])
            if len(batch) >= _WRITE_BATCH:
                writers[kind].write(b"".join(batch))
                counts[kind] += len(batch)
                batch.clear()
        pending, pending_number = record, number
    kind = pending[kind_at] - 48
    batches[kind].append(pending[line_at:])
    for kind, batch in enumerate(batches):
        if batch:
            writers[kind].write(b"".join(batch))
            counts[kind] += len(batch)
    return MergeCounts(counts[OUTPUT], counts[ERROR], tuple(per_part), replaced)


class _RunBuffer:
    """The records of the run being filled, in one buffer with each record's input line and
    end beside it (arrays): a few large blocks, where as many small objects would leave the
    allocator's arenas fragmented, and a merge's memory growing with the parts it reads."""

    def __init__(self) -> None:
        self.records = bytearray()
        self.numbers = array("q")
        self.ends = array("q")
        self.in_order = True

    def add(self, number: int, record: bytes) -> None:
        numbers = self.numbers
        if numbers and number < numbers[-1]:
            self.in_order = False
        self.records += record
        numbers.append(number)
        self.ends.append(len(self.records))

    def write(self, path: str, attempt: int) -> _Run:
        """The records sorted by input line (stable: ties keep read order) into `path`."""
        numbers, ends = self.numbers, self.ends
        with open(path, "wb", buffering=_SPOOL_BUFFER) as spool, memoryview(self.records) as view:
            if self.in_order:
                spool.write(view)
                first, last = numbers[0], numbers[-1]
            else:
                order = sorted(range(len(numbers)), key=numbers.__getitem__)
                for at in range(0, len(order), _WRITE_BATCH):
                    spool.writelines(
                        [view[ends[i - 1] if i else 0 : ends[i]] for i in order[at : at + _WRITE_BATCH]]
                    )
                first, last = numbers[order[0]], numbers[order[-1]]
        return _Run(path, attempt, first, last, len(numbers))


def _spool(attempt: int, result: PartResult, spool_dir: str, runs: list[_Run]) -> None:
    """The attempt's lines as records sorted by input line, in runs of about RUN_BYTES added
    to `runs`, each a file of `spool_dir` (stable: a line's later result in the same attempt
    comes after its earlier one)."""
    index = result.index()
    find = index.get
    run = _RunBuffer()
    tag = b"%0*d" % (_RUN_DIGITS, len(runs))
    for kind, lines in ((OUTPUT, result.output()), (ERROR, result.errors())):
        for raw in lines:
            if raw[:1] != b"{" and not raw.strip():
                continue
            ended = raw[-1:] == b"\n"
            if (raw.count(b"\n") != 1) if ended else (b"\n" in raw):
                raise MergeError(attempt, "a result line holds a line break")
            custom_id = custom_id_of(raw)
            number = find(custom_id) if custom_id is not None else None
            if number is None:
                raise MergeError(attempt, f"a result for {custom_id!r}, not in the part's index")
            run.add(number, (_RECORD if ended else _RECORD_ENDED) % (number, tag, kind, raw))
            if len(run.records) >= RUN_BYTES:
                runs.append(run.write(_run_path(spool_dir, runs), attempt))
                run = _RunBuffer()
                tag = b"%0*d" % (_RUN_DIGITS, len(runs))
    if run.numbers:
        runs.append(run.write(_run_path(spool_dir, runs), attempt))


def _run_path(spool_dir: str, runs: list[_Run]) -> str:
    return os.path.join(spool_dir, f"{len(runs)}.run")
