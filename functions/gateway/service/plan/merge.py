"""Merges the results of a plan's parts into one output file and one error file.

Every input line appears once, in input order, in the output file or the error file, from
the last attempt (in `attempts` order) that has a result for it: a retry part's line replaces
the earlier part's. Lines are copied byte for byte; only `custom_id` is read, to find the
line's input number in the part's index. Memory is bounded by RUN_BYTES whatever a part's
size (an external sort):

1. spool: each attempt's output lines, then its error lines, are held until RUN_BYTES, sorted
   by input line and appended to one temporary file as a run (one kind of line), with the
   lines' input numbers and lengths after it;
2. merge: runs that do not overlap (the parts of one split; the runs of a part answered about
   in order) are read one after the other as one stream; the streams are merged a block at a
   time: the stream with the lowest next line copies every line below the other streams' next
   ones with one read and one write, so only where streams overlap (a retry part and the
   parts it retries) does the merge take a step per line.

Results come in blocks: each item a part yields is one line or several whole lines (`\\n`
between them; the last one's end optional). A block whose every line starts with the
custom_id where OpenAI's lines put it is read with one regex search; any other is read line
by line (`custom_id_of`), so the per-line cost is a few C loops on the common path.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from gateway.formats.custom_ids import custom_id_of, id_key

OUTPUT, ERROR = 0, 1
RUN_BYTES = 2 * 1024 * 1024  # lines held and sorted in memory before a run is written
BLOCK_BYTES = 256 * 1024  # single lines are read in blocks of about this many bytes
# Large objects come and go once per run: kept small (below what the allocator maps at once
# after one such object has come and gone), they do not fragment its heap as a merge goes on.
COPY_BYTES = 128 * 1024  # the merge hands its writers at most this much at once
_JOINED_LINES = 256  # a run is written this many lines at once
_ID_KEY = b'"custom_id"'
# A line's custom_id where OpenAI's output and error lines put it (first key, or second after a
# plain "id"), without escapes: on a block where every line matches and `"custom_id"` occurs
# once a line, exactly what json.loads would read (see formats.custom_ids). The lines after the
# first are found by their preceding end: a literal the regex engine searches for quickly.
_LEADING_ID = (
    rb'\{[ \t\r]*(?:"id"[ \t\r]*:[ \t\r]*"[^"\\\n]*"[ \t\r]*,[ \t\r]*)?'
    rb'"custom_id"[ \t\r]*:[ \t\r]*"([^"\\\n]*)"'
)
_FIRST_ID = re.compile(_LEADING_ID)
_NEXT_IDS = re.compile(rb"\n" + _LEADING_ID)
_NUMBERS = "q"  # array typecodes: input line numbers, line lengths
_LENGTHS = "Q"


class BytesWriter(Protocol):
    """Where merged lines go: a binary file, or storage.plan_files.S3ObjectWriter."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class PartResult:
    """One attempt's results: its index (custom_id's `id_key` -> input line number) and its output and
    error lines (each read once, in any order, one line or a block of whole lines an item).
    Callables, so that a part's index and files are read only while that part is spooled.
    `first_line`, when known, is the lowest input line its index holds: the merge then writes
    every line below the unread attempts' first lines before it reads them (None: read first)."""

    index: Callable[[], Mapping[bytes, int]]
    output: Callable[[], Iterable[bytes]]
    errors: Callable[[], Iterable[bytes]]
    first_line: int | None = None

    @classmethod
    def of(
        cls,
        index: Mapping[str, int],
        output: Iterable[bytes],
        errors: Iterable[bytes] = (),
        first_line: int | None = None,
    ) -> PartResult:
        """An attempt whose index is at hand, by custom_id."""
        keyed = {id_key(custom_id): number for custom_id, number in index.items()}
        return cls(lambda: keyed, lambda: output, lambda: errors, first_line)


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
    """Writes every line's last result to `output` or `errors`, in input order. Attempts are
    read in the order of their first lines (unknown first); after each, every line below the
    next one's first line is written: no attempt still unread can hold a result for it, so the
    writers' uploads overlap the reading of the later parts."""
    order = sorted(range(len(attempts)), key=lambda number: attempts[number].first_line or 0)
    with tempfile.TemporaryFile(prefix="plan-merge-") as spool_file:
        spool = _Spool(spool_file)
        merge = _Merge((output, errors), [0] * len(attempts))
        live: list[_Stream] = []
        for position, number in enumerate(order):
            attempt = attempts[number]
            new_runs = spool.add_attempt(number, attempt)
            if (
                attempt.first_line is not None
                and new_runs
                and min(run.first for run in new_runs) < attempt.first_line
            ):
                raise MergeError(number, f"a result for a line before its first line, {attempt.first_line}")
            for run in new_runs:
                merge.per_part[number] += run.records
            spool_file.flush()
            live += [stream for stream in _streams(spool_file.fileno(), new_runs) if stream.next_run()]
            following = order[position + 1] if position + 1 < len(order) else None
            live = merge.run(live, below=None if following is None else attempts[following].first_line or 0)
        merge.replaced += spool.replaced
        return MergeCounts(merge.counts[OUTPUT], merge.counts[ERROR], tuple(merge.per_part), merge.replaced)


# Spool ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    """Lines of one attempt and one kind sorted by input line, each once: `size` bytes of the
    spool file from `at`, then each line's input number and length. `tag` (attempt, runs read
    before it) orders results: of two results of one line, the higher tag's is the later."""

    at: int
    size: int
    attempt: int
    kind: int
    tag: tuple[int, int]
    first: int
    last: int
    records: int


class _RunBuffer:
    """The lines of the run being filled (without their ends) and their input numbers."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.lines: list[bytes] = []
        self.numbers: list[int] = []
        self.size = 0
        self.in_order = True  # the numbers rise strictly: the run is written as it is

    def add(self, numbers: list[int], lines: list[bytes]) -> None:
        if not numbers:
            return
        if self.in_order and (
            (self.numbers and numbers[0] <= self.numbers[-1])
            or not all(map(operator.lt, numbers, itertools.islice(numbers, 1, None)))
        ):
            self.in_order = False
        self.lines += lines
        self.numbers += numbers
        self.size += sum(map(len, lines))

    def write(self, spool: IO[bytes], attempt: int, tag: tuple[int, int]) -> tuple[_Run, int]:
        """The run sorted by input line, the later of a line's results kept (stable: the later
        read is the later), appended to `spool`; and how many results it dropped."""
        lines, numbers = self.lines, self.numbers
        dropped = 0
        if not self.in_order:
            order = sorted(range(len(numbers)), key=numbers.__getitem__)
            numbers = list(map(numbers.__getitem__, order))
            if len(set(numbers)) != len(order):
                kept = [
                    at
                    for at, number in enumerate(numbers)
                    if at + 1 == len(order) or numbers[at + 1] != number
                ]
                dropped = len(order) - len(kept)
                order = [order[at] for at in kept]
                numbers = [numbers[at] for at in kept]
            lines = list(map(lines.__getitem__, order))
        at = spool.tell()
        for first in range(0, len(lines), _JOINED_LINES):  # no object of the whole run's size
            spool.write(b"\n".join(lines[first : first + _JOINED_LINES]))
            spool.write(b"\n")
        size = spool.tell() - at
        spool.write(array(_NUMBERS, numbers).tobytes())
        spool.write(array(_LENGTHS, map(len, lines)).tobytes())
        return _Run(at, size, attempt, self.kind, tag, numbers[0], numbers[-1], len(numbers)), dropped


class _Spool:
    """The attempts' lines as runs sorted by input line, one after another in `spool`."""

    def __init__(self, spool: IO[bytes]) -> None:
        self.spool = spool
        self.runs: list[_Run] = []
        self.replaced = 0  # results a later result of the same line, in the same run, replaced

    def add_attempt(self, attempt: int, result: PartResult) -> list[_Run]:
        """The attempt's runs, added to `runs`."""
        before = len(self.runs)
        find = result.index().get
        for kind, items in ((OUTPUT, result.output()), (ERROR, result.errors())):
            run = _RunBuffer(kind)
            for item in _blocks(items):
                run.add(*_numbered(attempt, item, find))
                if run.size >= RUN_BYTES:
                    self._write(run, attempt)
                    run = _RunBuffer(kind)
            if run.numbers:
                self._write(run, attempt)
        return self.runs[before:]

    def _write(self, run: _RunBuffer, attempt: int) -> None:
        written, dropped = run.write(self.spool, attempt, (attempt, len(self.runs)))
        self.runs.append(written)
        self.replaced += dropped


def _blocks(items: Iterable[bytes]) -> Iterator[bytes]:
    """The items as blocks of about BLOCK_BYTES: single lines joined (an item's own end
    dropped first), a block of its own passed as it is (each item is read once, whole)."""
    held: list[bytes] = []
    size = 0
    for item in items:
        if len(item) >= BLOCK_BYTES:
            if held:
                yield b"\n".join(held)
                held, size = [], 0
            yield item
            continue
        held.append(item[:-1] if item[-1:] == b"\n" else item)
        size += len(item)
        if size >= BLOCK_BYTES:
            yield b"\n".join(held)
            held, size = [], 0
    if held:
        yield b"\n".join(held)


def _numbered(
    attempt: int, item: bytes, find: Callable[[bytes], int | None]
) -> tuple[list[int], list[bytes]]:
    """The item's input line numbers and its lines (without their ends, blank ones left out)."""
    lines = item.split(b"\n")
    if not lines[-1]:
        lines.pop()
    first = _FIRST_ID.match(item)
    if first is not None:
        ids = _NEXT_IDS.findall(item)
        ids.insert(0, first.group(1))
        if len(ids) == len(lines) and item.count(_ID_KEY) == len(ids):
            numbers = list(map(find, ids))  # an id without escapes is its own key
            if None not in numbers:
                return numbers, lines  # type: ignore[return-value]  # None is not in it
    kept_numbers: list[int] = []
    kept_lines: list[bytes] = []
    for line in lines:
        if line[:1] != b"{" and not line.strip():
            continue
        custom_id = custom_id_of(line)
        number = find(id_key(custom_id)) if custom_id is not None else None
        if number is None:
            raise MergeError(attempt, f"a result for {custom_id!r}, not in the part's index")
        kept_numbers.append(number)
        kept_lines.append(line)
    return kept_numbers, kept_lines


# Merge ---------------------------------------------------------------------------------------
class _Stream:
    """Runs that do not overlap, read one after another: the loaded run's numbers and where
    the stream stands in it. A run's lines are read from its file only as they are copied, so
    memory holds the run's numbers and lengths, not its lines."""

    def __init__(self, spool: int, runs: list[_Run]) -> None:
        self._spool = spool
        self._runs = iter(runs)
        self.run: _Run
        self.numbers = array(_NUMBERS)
        self.at = 0
        self._lengths = array(_LENGTHS)
        self._ends: list[int] | None = None

    def next_run(self) -> bool:
        """Loads the next run; False when there is none (the stream is done)."""
        run = next(self._runs, None)
        if run is None:
            return False
        self.run, self.at, self._ends = run, 0, None
        numbers_bytes = run.records * self.numbers.itemsize
        self.numbers = array(_NUMBERS, os.pread(self._spool, numbers_bytes, run.at + run.size))
        lengths_at = run.at + run.size + numbers_bytes
        self._lengths = array(
            _LENGTHS, os.pread(self._spool, run.records * self._lengths.itemsize, lengths_at)
        )
        return True

    @property
    def head(self) -> int:
        return self.numbers[self.at]

    def read(self, start: int, stop: int) -> Iterator[bytes]:
        """The bytes of lines `start` to `stop` (exclusive) of the loaded run, each ended, in
        pieces of at most COPY_BYTES (cut anywhere: its reader is a byte stream)."""
        if start == 0 and stop == len(self.numbers):
            offset, end = 0, self.run.size
        else:
            if self._ends is None:  # only where streams overlap: a part of a run is copied
                self._ends = list(itertools.accumulate(map((1).__add__, self._lengths)))
            offset, end = self._ends[start - 1] if start else 0, self._ends[stop - 1]
        while offset < end:
            piece = os.pread(self._spool, min(COPY_BYTES, end - offset), self.run.at + offset)
            yield piece
            offset += len(piece)


def _streams(spool: int, runs: list[_Run]) -> list[_Stream]:
    """The runs as few sorted streams as can be: the merge holds one run of each."""
    chains: list[list[_Run]] = []
    for run in sorted(runs, key=lambda r: r.first):  # stable: in attempt and run order
        chain = next((chain for chain in chains if chain[-1].last < run.first), None)
        if chain is None:
            chains.append([run])
        else:
            chain.append(run)
    return [_Stream(spool, chain) for chain in chains]


class _Merge:
    def __init__(self, writers: tuple[BytesWriter, BytesWriter], per_part: list[int]) -> None:
        self.writers = writers
        self.per_part = per_part  # each attempt's lines kept so far
        self.replaced = 0
        self.counts = [0, 0]

    def run(self, live: list[_Stream], below: int | None) -> list[_Stream]:
        """Writes the streams' lines below line `below` (None: all of them); the streams left."""
        while live:
            heads = [stream.head for stream in live]
            low = min(heads)
            if below is not None and low >= below:
                break
            tied = [stream for stream, head in zip(live, heads, strict=True) if head == low]
            if len(tied) > 1:
                self._drop_all_but_last(tied)
            else:
                stream = tied[0]
                limit = min((head for head in heads if head != low), default=below)
                if below is not None and limit is not None:
                    limit = min(limit, below)
                stop = (
                    len(stream.numbers)
                    if limit is None
                    else bisect.bisect_left(stream.numbers, limit, stream.at)
                )
                self._copy(stream, stop)
            live = [stream for stream in live if stream.at < len(stream.numbers) or stream.next_run()]
        return live

    def _drop_all_but_last(self, tied: list[_Stream]) -> None:
        """Results of one line in several streams: the last read (highest run tag) stays."""
        last = max(tied, key=lambda stream: stream.run.tag)
        for stream in tied:
            if stream is not last:
                stream.at += 1
                self.replaced += 1
                self.per_part[stream.run.attempt] -= 1

    def _copy(self, stream: _Stream, stop: int) -> None:
        """The stream's lines from where it stands to `stop` (exclusive)."""
        if stop > stream.at:
            kind = stream.run.kind
            write = self.writers[kind].write
            for piece in stream.read(stream.at, stop):
                write(piece)
            self.counts[kind] += stop - stream.at
        stream.at = stop
