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
    the rest of the stream is not read. Each chunk is cut at once (`bytes.split`): a Python step
    per line, not per search, since every batch line of a file passes here."""
    held: list[bytes] = []  # the start of a line that goes on in the next chunks
    held_bytes = 0
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            if chunk:
                held.append(chunk)
                held_bytes += len(chunk)
                if max_line_bytes is not None and held_bytes > max_line_bytes:
                    yield b"".join(held)[: max_line_bytes + 1]
                    return
            continue
        tail = pieces.pop()
        if held:
            held.append(pieces[0])
            pieces[0] = b"".join(held)
            held = []
        # a line longer than the limit can only be the first, or in a chunk longer than it
        if max_line_bytes is not None and (len(pieces[0]) > max_line_bytes or len(chunk) > max_line_bytes):
            for line in pieces:
                if len(line) > max_line_bytes:
                    yield line[: max_line_bytes + 1]
                    return
                yield line
        else:
            yield from pieces
        held_bytes = len(tail)
        if tail:
            held.append(tail)
            if max_line_bytes is not None and held_bytes > max_line_bytes:
                yield tail[: max_line_bytes + 1]
                return
    if held:
        yield b"".join(held)


class LineTooLong(ValueError):
    """A line of the stream is longer than its reader takes."""


def line_blocks(
    chunks: Iterable[bytes], block_bytes: int, max_line_bytes: int | None = None
) -> Iterator[bytes]:
    """The chunks' bytes in blocks of whole lines, each ended (the last one's end supplied if
    the stream had none), of at most `block_bytes` unless one line is longer: a reader that
    works a block at a time (a regex over many lines) takes no Python step per line. A line
    longer than `max_line_bytes` raises LineTooLong once it passes that length (a block is
    never a cut line: its reader would take what is left of it for a whole one); it is at least
    `block_bytes`, so that only a line that fills a block by itself needs measuring."""
    if max_line_bytes is not None and max_line_bytes < block_bytes:
        raise ValueError("max_line_bytes must be at least block_bytes")
    held = b""
    for chunk in chunks:
        data = held + chunk if held else chunk
        start = 0
        while True:
            cut = data.rfind(b"\n", start, start + block_bytes) + 1  # the block's last line end
            if cut == 0:  # none: a line longer than a block, or the start of the next chunk's
                cut = data.find(b"\n", start + block_bytes) + 1
                if cut == 0:
                    break
                _check_line(cut - 1 - start, max_line_bytes)
            yield data[start:cut]
            start = cut
        held = data[start:]
        _check_line(len(held), max_line_bytes)
    if held:
        yield held + b"\n"


def _check_line(size: int, max_line_bytes: int | None) -> None:
    if max_line_bytes is not None and size > max_line_bytes:
        raise LineTooLong(f"a line is longer than {max_line_bytes} bytes")
