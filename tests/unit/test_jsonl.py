"""gateway.formats.jsonl: the lines of a stream in chunks of any sizes, long lines cut (split_lines),
and the same lines in blocks of whole lines (line_blocks)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from gateway.formats.jsonl import LineTooLong, line_blocks, split_lines
from hypothesis import given, settings
from hypothesis import strategies as st


def expected_lines(data: bytes, max_line_bytes: int | None) -> Iterator[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:
        if max_line_bytes is not None and len(line) > max_line_bytes:
            yield line[: max_line_bytes + 1]
            return
        yield line


@settings(max_examples=400, deadline=None)
@given(
    data=st.binary(max_size=200) | st.lists(st.sampled_from([b"ab", b"\n", b"xyz" * 5, b""])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    max_line_bytes=st.none() | st.integers(min_value=0, max_value=20),
)
def test_lines_of_any_chunking(data: bytes, cuts: list[int], max_line_bytes: int | None) -> None:
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    assert list(split_lines(iter(chunks), max_line_bytes)) == list(expected_lines(data, max_line_bytes))


def test_the_stream_after_a_long_line_is_not_read() -> None:
    read: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"ok\nthis line is long", b" and goes on", b"\nnever read\n"):
            read.append(chunk)
            yield chunk

    assert list(split_lines(chunks(), max_line_bytes=10)) == [b"ok", b"this line i"]
    assert len(read) == 1


@settings(max_examples=400, deadline=None)
@given(
    data=st.binary(max_size=200) | st.lists(st.sampled_from([b"ab", b"\n", b"xyz" * 5, b""])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    block_bytes=st.integers(min_value=1, max_value=40),
)
def test_blocks_of_whole_lines_of_any_chunking(data: bytes, cuts: list[int], block_bytes: int) -> None:
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    blocks = list(line_blocks(iter(chunks), block_bytes))
    assert b"".join(blocks) == (data if not data or data.endswith(b"\n") else data + b"\n")
    assert all(block.endswith(b"\n") for block in blocks)
    # a block holds one line, or whole lines within block_bytes
    assert all(len(block) <= block_bytes or block.count(b"\n") == 1 for block in blocks)


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"ab", b"\n", b"xyz" * 5, b"q" * 30])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
    block_bytes=st.integers(min_value=1, max_value=40),
    extra_line_bytes=st.integers(min_value=0, max_value=40),
)
def test_blocks_stop_at_a_line_over_the_limit(
    data: bytes, cuts: list[int], block_bytes: int, extra_line_bytes: int
) -> None:
    max_line_bytes = block_bytes + extra_line_bytes
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    too_long = any(len(line) > max_line_bytes for line in data.split(b"\n"))
    if too_long:
        with pytest.raises(LineTooLong):
            list(line_blocks(iter(chunks), block_bytes, max_line_bytes))
    else:
        assert b"".join(line_blocks(iter(chunks), block_bytes, max_line_bytes)).split(b"\n")[:-1] == (
            data.split(b"\n")[:-1] if data.endswith(b"\n") or not data else data.split(b"\n")
        )
