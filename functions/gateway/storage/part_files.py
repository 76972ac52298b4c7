"""Chunks regrouped into the fixed-size parts of an S3 multipart write, each held in a file.

A part held in memory costs its size twice over while it is sent (the part, and the next one
filling); a part held in a temporary file costs a chunk. botocore sends a file body a block at a
time and can rewind it to retry, so `upload_part(Body=part)` reads it from the disk (the page
cache, in practice) instead of from the heap.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

# A part this small stays in memory: a small file is never written to the disk.
IN_MEMORY_BYTES = 1024 * 1024


class SpooledPart:
    """One part: `body` holds exactly its `size` bytes, positioned at its start."""

    def __init__(self, body: IO[bytes], size: int) -> None:
        self.body, self.size = body, size


def spooled_parts(chunks: Iterable[bytes], size: int) -> Iterator[SpooledPart]:
    """Regroup `chunks` into parts of exactly `size` bytes, the last one shorter (never empty,
    except a single empty part for empty input). One file serves every part: a part must be
    sent before the next is asked for (its file is then emptied and refilled)."""
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as spool:
        held = 0
        produced = False
        for chunk in chunks:
            with memoryview(chunk) as view:
                start = 0
                while start < len(view):
                    taken = view[start : start + size - held]
                    spool.write(taken)
                    held += len(taken)
                    start += len(taken)
                    if held == size:
                        yield _rewound(spool, held)
                        produced, held = True, 0
                        spool.seek(0)
                        spool.truncate()
        if held or not produced:
            yield _rewound(spool, held)


def _rewound(spool: IO[bytes], size: int) -> SpooledPart:
    spool.seek(0)
    return SpooledPart(spool, size)
