"""The plan's fast paths give what the simple ones give: split (held lines), merge (sorted runs
compared as bytes) and a part's index (read a chunk at once), each against a reference that
parses every line with json.loads, on tricky lines: escaped quotes and backslashes in
custom_id, unicode, \\r\\n ends, blank lines, very long lines, a line answered twice."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.formats.custom_ids import id_key
from gateway.service.plan import merge
from gateway.service.plan.merge import MergeCounts, PartResult, merge_results
from gateway.service.plan.split import PartLimits, split_input
from gateway.storage import plan_files
from gateway.storage.plan_files import index_key, object_lines, read_index
from gateway.storage.s3 import s3_client
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import plan_sinks
from tests.unit.plan_sinks import part_key, part_sinks

BUCKET = "plan-fast-paths"
TRICKY_IDS = [
    "plain-1",
    'say "hi"',
    "back\\slash",
    "ends with backslash\\",
    "héllo wörld ✓",
    "emoji 🚀",
    "tab\there",
    "cr\rin it",
    "x" * 300,
]
custom_ids = st.text(min_size=1, max_size=20) | st.sampled_from(TRICKY_IDS)


def request_line(custom_id: str, padding: int, compact: bool) -> bytes:
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "é" * padding}]},
    }
    text = json.dumps(line, separators=(",", ":") if compact else None, ensure_ascii=padding % 2 == 0)
    return text.encode()


def result_line(custom_id: str, tag: str, padding: int = 0) -> bytes:
    answer = {"id": f"batch_req_{tag}", "custom_id": custom_id, "response": {"body": "é" * padding}}
    return json.dumps(answer, ensure_ascii=False).encode()


# Merge ---------------------------------------------------------------------------------------


def reference_merge(
    attempts: list[tuple[dict[str, int], list[bytes], list[bytes]]],
) -> tuple[bytes, bytes, MergeCounts]:
    """Every result parsed; a line's last result (attempt order, then read order) kept."""
    last: dict[int, tuple[int, int, bytes]] = {}  # input line -> (attempt, kind, line)
    seen = 0
    for attempt, (index, output, errors) in enumerate(attempts):
        for kind, lines in ((0, output), (1, errors)):
            for raw in lines:
                if not raw.strip():
                    continue
                seen += 1
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                last[index[json.loads(raw)["custom_id"]]] = (attempt, kind, line)
    files = [b"", b""]
    per_part = [0] * len(attempts)
    for number in sorted(last):
        attempt, kind, line = last[number]
        files[kind] += line
        per_part[attempt] += 1
    kept = [sum(1 for a, k, _ in last.values() if k == kind) for kind in (0, 1)]
    return files[0], files[1], MergeCounts(kept[0], kept[1], tuple(per_part), seen - len(last))


def fast_merge(
    attempts: list[tuple[dict[str, int], list[bytes], list[bytes]]],
    block_lines: int = 1,
    first_lines: bool = False,
) -> tuple[bytes, bytes, MergeCounts]:
    """`block_lines` > 1: the results handed on as blocks of that many whole lines, as a part's
    files are read (the last one's end dropped where the line had one); `first_lines`: each
    attempt names the lowest line of its index (the merge writes ahead of reading the rest)."""
    output, errors = io.BytesIO(), io.BytesIO()
    results = [
        PartResult.of(
            index,
            as_blocks(lines, block_lines),
            as_blocks(failed, block_lines),
            min(index.values()) if first_lines and index else None,
        )
        for index, lines, failed in attempts
    ]
    counts = merge_results(results, output, errors)
    return output.getvalue(), errors.getvalue(), counts


def as_blocks(lines: list[bytes], block_lines: int) -> list[bytes]:
    if block_lines == 1:
        return lines
    ended = [line if line.endswith(b"\n") else line + b"\n" for line in lines]
    blocks = [b"".join(ended[at : at + block_lines]) for at in range(0, len(ended), block_lines)]
    return [block[:-1] if number % 2 else block for number, block in enumerate(blocks)]


@st.composite
def plans(draw: st.DrawFn) -> list[tuple[dict[str, int], list[bytes], list[bytes]]]:
    """Parts of an input of distinct custom ids, answered in any order with tricky lines; then
    retry attempts over any of the lines (overlapping the parts), some answered twice."""
    ids = draw(st.lists(custom_ids, unique=True, max_size=40))
    part_size = draw(st.integers(min_value=1, max_value=12))
    rng = random.Random(draw(st.integers(min_value=0, max_value=10**6)))
    attempts = []

    def answer(chosen: list[tuple[int, str]], tag: str) -> tuple[dict[str, int], list[bytes], list[bytes]]:
        output: list[bytes] = []
        errors: list[bytes] = []
        for _number, custom_id in chosen:
            line = result_line(custom_id, tag, padding=rng.choice([0, 0, 5, 3000]))
            line += rng.choice([b"", b"", b"\n", b"\r\n"])
            target = errors if rng.random() < 0.3 else output
            target.append(line)
            if rng.random() < 0.1:  # answered twice: the later one read wins
                target.append(result_line(custom_id, tag + "-again"))
            if rng.random() < 0.1:
                target.append(rng.choice([b"", b"   ", b"\r\n", b"\n"]))
        rng.shuffle(output)
        return {custom_id: number for number, custom_id in chosen}, output, errors

    numbered = list(enumerate(ids, start=1))
    for start in range(0, len(numbered), part_size):
        attempts.append(answer(numbered[start : start + part_size], f"p{start}"))
    for retry in range(draw(st.integers(min_value=0, max_value=2))):
        chosen = [item for item in numbered if rng.random() < 0.4]
        attempts.append(answer(chosen, f"r{retry}"))
    rng.shuffle(attempts[: len(attempts) // 2])  # parts need not come in input order
    return attempts


@settings(max_examples=150, deadline=None)
@given(
    attempts=plans(),
    run_bytes=st.sampled_from([1, 150, 4000, merge.RUN_BYTES]),
    block_lines=st.sampled_from([1, 2, 5, 1000]),
    block_bytes=st.sampled_from([1, 300, merge.BLOCK_BYTES]),
    first_lines=st.booleans(),
)
def test_merge_in_sorted_runs_gives_what_parsing_every_line_gives(
    attempts: list[tuple[dict[str, int], list[bytes], list[bytes]]],
    run_bytes: int,
    block_lines: int,
    block_bytes: int,
    first_lines: bool,
) -> None:
    originals = merge.RUN_BYTES, merge.BLOCK_BYTES
    # many runs per attempt, overlapping or not; lines handed on one by one or in blocks
    merge.RUN_BYTES, merge.BLOCK_BYTES = run_bytes, block_bytes
    try:
        assert fast_merge(attempts, block_lines, first_lines) == reference_merge(attempts)
    finally:
        merge.RUN_BYTES, merge.BLOCK_BYTES = originals


def test_a_block_naming_a_line_outside_the_parts_index_is_a_merge_error() -> None:
    block = result_line("a", "x") + b"\n" + result_line("zz", "x")
    with pytest.raises(merge.MergeError, match="'zz'"):
        fast_merge([({"a": 1}, [block], [])])


def test_a_block_whose_line_names_custom_id_twice_reads_it_as_json_does() -> None:
    """The regex path stands aside where a line names `custom_id` twice (JSON keeps the last)."""
    twice = b'{"custom_id": "a", "response": {}, "custom_id": "b"}'
    attempts = [({"a": 1, "b": 2}, [result_line("a", "x") + b"\n" + twice], [])]
    output, _, counts = fast_merge(attempts)
    assert output == result_line("a", "x") + b"\n" + twice + b"\n"
    assert counts.completed == 2 and counts.replaced == 0


def test_a_line_answered_twice_in_one_attempt_keeps_the_later_answer_across_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(merge, "RUN_BYTES", 1)  # every record its own run
    first, again = result_line("a", "first"), result_line("a", "again")
    output, _, counts = fast_merge([({"a": 1, "b": 2}, [result_line("b", "x"), first, again], [])])
    assert output == result_line("a", "again") + b"\n" + result_line("b", "x") + b"\n"
    assert counts.replaced == 1 and counts.lines_per_part == (2,)


def test_a_very_long_result_line_is_copied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merge, "RUN_BYTES", 1024)
    long_line = result_line("long", "x", padding=3 * 1024 * 1024)
    attempts = [({"long": 2, "short": 1}, [long_line, result_line("short", "y")], [])]
    assert fast_merge(attempts) == reference_merge(attempts)


# Split ---------------------------------------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.data = b""
        self.index: list[tuple[int, str]] = []

    def write(self, line: bytes) -> None:
        self.data += line

    def record(self, line_number: int, custom_id: str) -> None:
        self.index.append((line_number, custom_id))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def reference_split(lines: list[bytes], max_requests: int) -> list[tuple[bytes, list[tuple[int, str]]]]:
    parts: list[tuple[bytes, list[tuple[int, str]]]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if not parts or len(parts[-1][1]) >= max_requests:
            parts.append((b"", []))
        data, index = parts[-1]
        parts[-1] = (data + raw + b"\n", [*index, (number, json.loads(raw)["custom_id"])])
    return parts


@st.composite
def input_lines(draw: st.DrawFn) -> list[bytes]:
    ids = draw(st.lists(custom_ids, unique=True, max_size=30))
    lines = []
    for custom_id in ids:
        padding = draw(st.sampled_from([0, 1, 40, 5000]))
        line = request_line(custom_id, padding, compact=draw(st.booleans()))
        lines.append(line + draw(st.sampled_from([b"", b"", b"\r"])))  # \r: the line ended \r\n
        lines.extend(draw(st.lists(st.sampled_from([b"", b"  ", b"\r", b"\t"]), max_size=1)))
    return lines


@settings(max_examples=150, deadline=None)
@given(lines=input_lines(), max_requests=st.integers(min_value=1, max_value=7))
def test_split_gives_what_parsing_every_line_gives(lines: list[bytes], max_requests: int) -> None:
    sinks: list[ListSink] = []

    def open_part(number: int) -> ListSink:
        sinks.append(ListSink())
        return sinks[-1]

    split_input(iter(lines), PartLimits(max_requests, 10**9, None), open_part)
    assert [(sink.data, sink.index) for sink in sinks] == reference_split(lines, max_requests)


# A part's files in S3 --------------------------------------------------------------------------


@pytest.fixture
def s3(aws: None) -> Iterator[Any]:
    s3_client.cache_clear()
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    s3_client.cache_clear()


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1024 * 1024])
@pytest.mark.parametrize("held_lines", [1, 3, 1024])
def test_part_files_and_indexes_in_s3_hold_every_tricky_line(
    s3: Any, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, held_lines: int
) -> None:
    monkeypatch.setattr(plan_files, "READ_CHUNK_BYTES", chunk_bytes)  # lines and entries cut across chunks
    monkeypatch.setattr(plan_sinks.S3PartSink, "HELD_LINES", held_lines)
    monkeypatch.setattr(plan_files, "INDEX_PIECE_BYTES", chunk_bytes * 3)  # entries parsed a few at once
    lines = [request_line(custom_id, n * 7, compact=n % 2 == 0) for n, custom_id in enumerate(TRICKY_IDS)]
    lines.insert(3, b"")
    lines.append(request_line("long", 200_000, compact=True))
    prefix = f"fast/{chunk_bytes}/{held_lines}/"
    split_input(iter(lines), PartLimits(4, 10**9, None), part_sinks(prefix, bucket=BUCKET))
    for number, (data, index) in enumerate(reference_split(lines, 4)):
        assert s3.get_object(Bucket=BUCKET, Key=part_key(prefix, number))["Body"].read() == data
        assert read_index(index_key(prefix, number), bucket=BUCKET) == {id_key(cid): n for n, cid in index}
        assert list(object_lines(part_key(prefix, number), bucket=BUCKET)) == data.splitlines()


def test_an_index_read_a_chunk_at_once_or_line_by_line_is_the_same(s3: Any) -> None:
    entries = [(n + 1, custom_id) for n, custom_id in enumerate(TRICKY_IDS * 3)]
    body = b"".join(b"%d\t%s\n" % (n, json.dumps(cid).encode()) for n, cid in entries)
    s3.put_object(Bucket=BUCKET, Key="escape-free", Body=b'1\t"a"\n2\t"b"')  # no final end
    s3.put_object(Bucket=BUCKET, Key="mixed", Body=body)
    assert read_index("escape-free", bucket=BUCKET) == {b"a": 1, b"b": 2}
    assert read_index("mixed", bucket=BUCKET) == {id_key(cid): n for n, cid in entries}


def test_lines_below_the_unread_attempts_first_lines_are_written_before_they_are_read() -> None:
    written: list[bytes] = []
    read: list[str] = []

    class Recorder:
        def write(self, data: bytes) -> None:
            written.append(data)

    def part(name: str, ids: dict[str, int]) -> PartResult:
        def output() -> list[bytes]:
            read.append(f"{name}: {len(written)} written")
            return [result_line(custom_id, name) for custom_id in ids]

        return PartResult(
            lambda: {id_key(cid): n for cid, n in ids.items()}, output, lambda: [], min(ids.values())
        )

    retry = part("retry", {"b": 2})
    counts = merge_results(
        [part("p1", {"c": 3, "d": 4}), part("p0", {"a": 1, "b": 2}), retry], Recorder(), Recorder()
    )
    # read by first line (p0, then the retry, which starts at 2, then p1); a written before the retry
    assert read == ["p0: 0 written", "retry: 1 written", "p1: 2 written"]
    assert b"".join(written) == b"".join(
        result_line(cid, tag) + b"\n" for cid, tag in (("a", "p0"), ("b", "retry"), ("c", "p1"), ("d", "p1"))
    )
    assert counts.replaced == 1 and counts.lines_per_part == (2, 1, 1)


def test_a_result_below_its_attempts_first_line_is_a_merge_error() -> None:
    late = PartResult.of({"a": 1, "b": 5}, [result_line("a", "x")], first_line=5)
    with pytest.raises(merge.MergeError, match="before its first line"):
        merge_results([late], io.BytesIO(), io.BytesIO())
