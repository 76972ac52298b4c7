"""A split sink that writes each part's lines and index to S3 (`<prefix>NNNNN.jsonl` and
`<prefix>NNNNN.index`), for tests of `split_input`, `S3ObjectWriter`, `IndexWriter` and
`read_index` together. The runner's own sink (`runner._PartWriter`) spools a part's lines and
uploads them to the provider; its tests are the runner's."""

from __future__ import annotations

from collections.abc import Callable

from gateway.storage.plan_files import IndexWriter, S3ObjectWriter, index_key


def part_key(prefix: str, number: int) -> str:
    return f"{prefix}{number:05d}.jsonl"


class S3PartSink:
    """Part `number` of the plan under `prefix`: its lines handed to the writer HELD_LINES at
    a time, its index beside it, written last (a part whose index exists is whole)."""

    HELD_LINES = IndexWriter.HELD_LINES

    def __init__(self, prefix: str, number: int, *, bucket: str) -> None:
        self.part = S3ObjectWriter(part_key(prefix, number), bucket=bucket)
        self.index = IndexWriter(index_key(prefix, number), bucket=bucket, held_lines=self.HELD_LINES)
        self._lines: list[bytes] = []

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.HELD_LINES:
            self._hand_on()

    def record(self, line_number: int, custom_id: str) -> None:
        self.index.record(line_number, custom_id)

    def close(self) -> None:
        self._hand_on()
        self.part.close()
        self.index.close()

    def abort(self) -> None:
        self._lines = []
        self.part.abort()
        self.index.abort()

    def _hand_on(self) -> None:
        if self._lines:
            self.part.write(b"".join(self._lines))
            self._lines = []


def part_sinks(prefix: str, *, bucket: str) -> Callable[[int], S3PartSink]:
    """split_input's `open_part` for parts under `prefix`."""
    return lambda number: S3PartSink(prefix, number, bucket=bucket)
