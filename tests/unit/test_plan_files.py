"""storage.plan_files: a plan's part files and indexes streamed to and from S3 (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.service.plan.merge import PartResult, merge_results
from gateway.service.plan.split import LineExceedsPart, PartLimits, split_input
from gateway.storage import plan_files
from gateway.storage.plan_files import (
    S3ObjectWriter,
    index_key,
    object_lines,
    plan_prefix,
    read_index,
)
from gateway.storage.s3 import s3_client

from tests.unit.plan_sinks import part_key, part_sinks

BUCKET = "plan-test"
MiB = 1024 * 1024


@pytest.fixture
def s3(aws: None) -> Iterator[Any]:
    s3_client.cache_clear()
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    s3_client.cache_clear()


def stored(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def pending_uploads(s3: Any) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") or [])


def test_a_short_object_is_one_put_and_a_long_one_goes_in_parts(s3: Any) -> None:
    with S3ObjectWriter("short", bucket=BUCKET) as writer:
        writer.write(b"abc\n")
        writer.write(b"def\n")
    assert stored(s3, "short") == b"abc\ndef\n"

    chunk = bytes(range(256)) * 4096  # 1 MiB
    writer = S3ObjectWriter("long", bucket=BUCKET, part_bytes=5 * MiB)
    for _ in range(11):
        writer.write(chunk)
    assert writer._sent == 2 and len(writer._buffer) == MiB  # one part filling, one uploading at most
    writer.close()
    assert stored(s3, "long") == chunk * 11 and writer.size == 11 * MiB
    assert pending_uploads(s3) == []


def test_a_failed_write_leaves_no_object_and_no_upload(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = S3ObjectWriter("broken", bucket=BUCKET, part_bytes=5 * MiB)
    writer.write(b"x" * 6 * MiB)
    assert len(pending_uploads(s3)) == 1
    real_complete = writer._s3.complete_multipart_upload

    def failing(**kwargs: Any) -> Any:
        raise ConnectionError("lost")

    monkeypatch.setattr(writer._s3, "complete_multipart_upload", failing)
    with pytest.raises(ConnectionError):
        writer.close()
    monkeypatch.setattr(writer._s3, "complete_multipart_upload", real_complete)
    assert pending_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    with pytest.raises(ValueError):
        writer.write(b"more")


def test_object_lines_streams_lines_across_chunks(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_files, "READ_CHUNK_BYTES", 7)
    s3.put_object(Bucket=BUCKET, Key="lines", Body=b"first line\nsecond\n\nlast without end")
    assert list(object_lines("lines", bucket=BUCKET)) == [b"first line", b"second", b"", b"last without end"]


class FakeBody:
    def __init__(self, chunks: list[bytes | Exception]) -> None:
        self.chunks, self.closed = chunks, False

    def read(self, size: int) -> bytes:
        item = self.chunks.pop(0) if self.chunks else b""
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self, body: FakeBody) -> None:
        self.body = body

    def get_object(self, **params: Any) -> dict[str, Any]:
        return {"Body": self.body}


@pytest.mark.parametrize("read_ahead", [0, 1, 4])
def test_reading_ahead_hands_on_errors_and_stops_when_the_reader_does(read_ahead: int) -> None:
    failing = FakeBody([b"a\nb", ConnectionError("reset")])
    with pytest.raises(ConnectionError):
        list(plan_files.object_chunks("k", bucket=BUCKET, client=FakeClient(failing), read_ahead=read_ahead))
    assert failing.closed

    endless = FakeBody([b"x" * 10] * 50)
    chunks = plan_files.object_chunks("k", bucket=BUCKET, client=FakeClient(endless), read_ahead=read_ahead)
    assert next(chunks) == b"x" * 10
    chunks.close()  # the reader stops early: the thread ends, the body is closed
    assert endless.closed and len(endless.chunks) >= 50 - 2 - read_ahead


def request(custom_id: str) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    ).encode()


def test_split_to_s3_and_merge_back_from_it(s3: Any) -> None:
    ids = [f"req-{n}" for n in range(10)]
    s3.put_object(Bucket=BUCKET, Key="input.jsonl", Body=b"\n".join(request(cid) for cid in ids) + b"\n")
    prefix = plan_prefix("batch_abc")
    slices = split_input(
        object_lines("input.jsonl", bucket=BUCKET),
        PartLimits(4, 10**6, None),
        part_sinks(prefix, bucket=BUCKET),
    )
    assert [part.line_count for part in slices] == [4, 4, 2]
    assert stored(s3, part_key(prefix, 1)) == b"".join(request(cid) + b"\n" for cid in ids[4:8])
    assert read_index(index_key(prefix, 2), bucket=BUCKET) == {b"req-8": 9, b"req-9": 10}

    def results(number: int) -> PartResult:
        lines = list(object_lines(part_key(prefix, number), bucket=BUCKET))[::-1]  # out of order
        output = [
            json.dumps({"custom_id": json.loads(line)["custom_id"], "n": number}).encode() for line in lines
        ]
        return PartResult(
            lambda: read_index(index_key(prefix, number), bucket=BUCKET), lambda: output, lambda: []
        )

    with S3ObjectWriter("out", bucket=BUCKET) as output, S3ObjectWriter("err", bucket=BUCKET) as errors:
        counts = merge_results([results(n) for n in range(3)], output, errors)
    assert counts.completed == 10 and counts.lines_per_part == (4, 4, 2)
    assert [json.loads(line)["custom_id"] for line in stored(s3, "out").splitlines()] == ids
    assert stored(s3, "err") == b""


def test_a_split_that_fails_leaves_no_file_of_the_open_part(s3: Any) -> None:
    lines = [request("a"), request("b"), request("c" * 400)]
    with pytest.raises(LineExceedsPart):
        split_input(iter(lines), PartLimits(1, 300, None), part_sinks("p/", bucket=BUCKET))
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or ())
    assert keys == [index_key("p/", 0), part_key("p/", 0)]  # part 0 closed, part 1 aborted


def test_the_gateways_s3_client_does_not_hash_what_it_sends(s3: Any) -> None:
    """The payload is not signed (no SHA-256 of every part), as no checksum is computed."""
    sent: list[Any] = []
    client = s3_client()
    client.meta.events.register("before-send.s3.*", lambda request, **_: sent.append(request.headers))
    with S3ObjectWriter("signed", bucket=BUCKET) as writer:
        writer.write(b"x" * 1000)
    client.put_object(Bucket=BUCKET, Key="also", Body=b"y" * 1000)
    assert [headers.get("X-Amz-Content-SHA256") for headers in sent] == [b"UNSIGNED-PAYLOAD"] * 2
    assert not any(name.lower().startswith("x-amz-checksum") for headers in sent for name in headers)
    assert stored(s3, "signed") == b"x" * 1000


def test_a_split_run_again_writes_the_same_parts(s3: Any) -> None:
    """A split interrupted (here: run to its end) and run again needs no clean-up: it writes
    the same bytes under the same keys."""
    lines = [request(f"r{n}") for n in range(7)]
    limits = PartLimits(3, 10**6, None)
    first = split_input(iter(lines), limits, part_sinks("again/", bucket=BUCKET))
    before = {key: stored(s3, key) for key in (part_key("again/", n) for n in range(3))}
    assert split_input(iter(lines), limits, part_sinks("again/", bucket=BUCKET)) == first
    assert {key: stored(s3, key) for key in before} == before
    assert read_index(index_key("again/", 2), bucket=BUCKET) == {b"r6": 7}


def test_a_plans_files_are_deleted_page_by_page_and_a_repeat_finds_none(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_files, "_DELETE_AT_ONCE", 2)  # three pages of DeleteObjects
    for number in range(5):
        s3.put_object(Bucket=BUCKET, Key=index_key(plan_prefix("batch_a"), number), Body=b'1\t"x"\n')
    s3.put_object(Bucket=BUCKET, Key=index_key(plan_prefix("batch_ab"), 0), Body=b"")  # another plan's
    assert plan_files.batches_with_files(bucket=BUCKET) == {"batch_a", "batch_ab"}
    assert plan_files.delete_plan_files("batch_a", bucket=BUCKET) == 5
    assert plan_files.delete_plan_files("batch_a", bucket=BUCKET) == 0
    assert plan_files.batches_with_files(bucket=BUCKET) == {"batch_ab"}


def test_an_index_exists_or_not(s3: Any) -> None:
    key = index_key(plan_prefix("batch_b"), 0)
    assert not plan_files.object_exists(key, bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    assert plan_files.object_exists(key, bucket=BUCKET)


def test_without_a_bucket_no_batch_has_files(s3: Any) -> None:
    assert plan_files.batches_with_files(bucket="no-such-bucket") == set()
