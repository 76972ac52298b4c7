"""Lines of a JSONL byte stream, read in chunks with bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

READ_CHUNK_BYTES = 1024 * 1024


def stream_chunks(stream: IO[bytes], size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def split_lines(chunks: Iterable[bytes], max_line_bytes: int | None = None) -> Iterator[bytes]:
    """Each line without its end. Memory holds one chunk and one line; a line longer than
    `max_line_bytes` is yielded as soon as it passes that length (cut to it plus one byte), and
    the rest of the stream is not read."""
    parts: list[bytes] = []
    held = 0
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            line = b"".join(parts)
            if max_line_bytes is not None and len(line) > max_line_bytes:
                yield line[: max_line_bytes + 1]
                return
            yield line
            parts, held, start = [], 0, end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
            held += len(chunk) - start
            if max_line_bytes is not None and held > max_line_bytes:
                yield b"".join(parts)[: max_line_bytes + 1]
                return
    if parts:
        yield b"".join(parts)
