"""storage.part_files: chunks regrouped into fixed-size parts, each read from files that take turns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gateway.storage import part_files
from gateway.storage.content_cache import fixed_size_parts
from gateway.storage.part_files import PartFiles
from hypothesis import given
from hypothesis import strategies as st


def _read_all(chunks: list[bytes], size: int, files: int = 1) -> list[bytes]:
    """Each part's bytes, read as an upload reads them: from its body, to its end."""
    read = []
    with PartFiles(files) as part_files:
        for part in part_files.parts(iter(chunks), size):
            body = part.body.read()
            assert len(body) == part.size
            read.append(body)
    return read


def _in_memory(chunks: list[bytes], size: int) -> list[bytes]:
    return list(fixed_size_parts(iter(chunks), size))


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([], [0]),
        ([0, 0], [0]),
        ([3], [3]),
        ([4], [4]),
        ([1, 1, 1, 1, 1], [4, 1]),
        ([9], [4, 4, 1]),
        ([2, 6], [4, 4]),
    ],
)
@pytest.mark.parametrize("regroup", [_read_all, _in_memory], ids=["part files", "fixed_size_parts"])
def test_parts_have_the_size_asked_the_last_shorter(
    regroup: Callable[[list[bytes], int], list[bytes]], sizes: list[int], expected: list[int]
) -> None:
    """PartFiles (kept files) and fixed_size_parts (the content cache, Bedrock's records,
    Vertex's uploads) cut alike."""
    chunks = [bytes([i + 1]) * n for i, n in enumerate(sizes)]
    parts = regroup(chunks, 4)
    assert [len(p) for p in parts] == expected
    assert b"".join(parts) == b"".join(chunks)


@given(
    st.lists(st.binary(max_size=40), max_size=12),
    st.integers(min_value=1, max_value=17),
    st.integers(min_value=1, max_value=3),
)
def test_the_parts_join_to_the_chunks(chunks: list[bytes], size: int, files: int) -> None:
    parts = _read_all(chunks, size, files)
    assert b"".join(parts) == b"".join(chunks)
    assert all(len(part) == size for part in parts[:-1])
    assert 0 < len(parts[-1]) <= size or parts == [b""]


def test_a_body_read_twice_gives_the_same_bytes() -> None:
    """botocore reads a body once for its checksum, rewinds it and reads it again to send it."""
    with PartFiles() as part_files:
        for part in part_files.parts(iter([b"abcdefghij"]), 4):
            start = part.body.tell()
            first = part.body.read()
            part.body.seek(start)
            assert part.body.read() == first


def test_a_large_part_is_held_on_the_disk_not_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(part_files, "IN_MEMORY_BYTES", 8)
    with PartFiles() as files:
        rolled = [part.body._rolled for part in files.parts(iter([b"x" * 30]), 16)]  # type: ignore[attr-defined]
    assert rolled == [True, True]
    with PartFiles() as files:
        small = [part.body._rolled for part in files.parts(iter([b"x" * 5]), 16)]  # type: ignore[attr-defined]
    assert small == [False]


def test_with_two_files_a_part_stays_whole_while_the_next_one_fills() -> None:
    """The upload of part N may still read it while part N + 1 is cut (kept files send so)."""
    chunks = [bytes([n]) * 7 for n in range(1, 9)]  # 56 bytes: parts of 16, 16, 16, 8
    with PartFiles(files=2) as part_files:
        parts = part_files.parts(iter(chunks), 16)
        previous = next(parts)
        sent = []
        for part in parts:
            sent.append(previous.body.read())  # read after the next part was cut
            previous = part
        sent.append(previous.body.read())  # the last, read after the listing ended
    assert sent == [b"".join(chunks)[start : start + 16] for start in range(0, 56, 16)]
