"""Chunks regrouped into the fixed-size parts of an S3 multipart write, each held in a file.

A part held in memory costs its size twice over while it is sent (the part, and the next one
filling); a part held in a temporary file costs a chunk, and two files let one part be sent
while the next fills. botocore sends a file body a block at a
time and can rewind it to retry, so `upload_part(Body=part)` reads it from the disk (the page
cache, in practice) instead of from the heap.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

# A part this small stays in memory: a small file is never written to the disk.
IN_MEMORY_BYTES = 1024 * 1024


class SpooledPart:
    """One part: `body` holds exactly its `size` bytes, positioned at its start."""

    def __init__(self, body: IO[bytes], size: int) -> None:
        self.body, self.size = body, size


class PartFiles:
    """`files` temporary files that take turns holding the parts `parts` cuts (closed on exit:
    a part's body stays readable until then, the last one included)."""

    def __init__(self, files: int = 1) -> None:
        self._stack = contextlib.ExitStack()
        self._spools: list[IO[bytes]] = []
        self.files = files

    def __enter__(self) -> PartFiles:
        self._spools = [
            self._stack.enter_context(tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES))  # noqa: SIM115
            for _ in range(self.files)
        ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def parts(self, chunks: Iterable[bytes], size: int) -> Iterator[SpooledPart]:
        """Regroup `chunks` into parts of exactly `size` bytes, the last one shorter (never
        empty, except a single empty part for empty input). A part must be sent before the part
        `files` after it is asked for (its file is then emptied and refilled): with two files,
        one part can be sent while the next one fills."""
        spools, turn, held, produced = self._spools, 0, 0, False
        for chunk in chunks:
            with memoryview(chunk) as view:
                start = 0
                while start < len(view):
                    taken = view[start : start + size - held]
                    spools[turn].write(taken)
                    held += len(taken)
                    start += len(taken)
                    if held == size:
                        yield _rewound(spools[turn], held)
                        produced, held, turn = True, 0, (turn + 1) % len(spools)
                        spools[turn].seek(0)
                        spools[turn].truncate()
        if held or not produced:
            yield _rewound(spools[turn], held)


def _rewound(spool: IO[bytes], size: int) -> SpooledPart:
    spool.seek(0)
    return SpooledPart(spool, size)
