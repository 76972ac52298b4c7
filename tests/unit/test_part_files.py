"""storage.part_files: chunks regrouped into fixed-size parts, each read from one reused file."""

from __future__ import annotations

import pytest
from gateway.storage import part_files
from gateway.storage.part_files import spooled_parts
from hypothesis import given
from hypothesis import strategies as st


def _read_all(chunks: list[bytes], size: int) -> list[bytes]:
    """Each part's bytes, read as an upload reads them: from its body, to its end."""
    read = []
    for part in spooled_parts(iter(chunks), size):
        body = part.body.read()
        assert len(body) == part.size
        read.append(body)
    return read


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
def test_parts_have_the_size_asked_the_last_shorter(sizes: list[int], expected: list[int]) -> None:
    chunks = [bytes([i + 1]) * n for i, n in enumerate(sizes)]
    parts = _read_all(chunks, 4)
    assert [len(p) for p in parts] == expected
    assert b"".join(parts) == b"".join(chunks)


@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(min_value=1, max_value=17))
def test_the_parts_join_to_the_chunks(chunks: list[bytes], size: int) -> None:
    parts = _read_all(chunks, size)
    assert b"".join(parts) == b"".join(chunks)
    assert all(len(part) == size for part in parts[:-1])
    assert 0 < len(parts[-1]) <= size or parts == [b""]


def test_a_body_read_twice_gives_the_same_bytes() -> None:
    """botocore reads a body once for its checksum, rewinds it and reads it again to send it."""
    for part in spooled_parts(iter([b"abcdefghij"]), 4):
        start = part.body.tell()
        first = part.body.read()
        part.body.seek(start)
        assert part.body.read() == first


def test_a_large_part_is_held_on_the_disk_not_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(part_files, "IN_MEMORY_BYTES", 8)
    rolled = []
    for part in spooled_parts(iter([b"x" * 30]), 16):
        rolled.append(part.body._rolled)  # type: ignore[attr-defined]
    assert rolled == [True, True]
    small = [part.body._rolled for part in spooled_parts(iter([b"x" * 5]), 16)]  # type: ignore[attr-defined]
    assert small == [False]
