"""A batch plan's files in the gateway's bucket, written and read as streams (bounded memory).

`S3ObjectWriter` is a file-like writer of one object: it holds a part (PART_BYTES) and
sends it with a multipart upload as it fills (a single PutObject for a short object), and
aborts the upload when the write fails, so no partial object is ever visible. `object_lines`
reads an object's lines one chunk at a time. `IndexWriter` writes a plan part's index,
`<prefix>NNNNN.index` (one input line number, a tab and the custom_id as a JSON string a line),
which the merge reads back with `read_index`. Each is written whole or not at all; writing one
again writes the same bytes (a split is deterministic), so a split interrupted and run again
needs no clean-up.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from botocore.exceptions import ClientError

from gateway.formats.custom_ids import id_key, quoted, unquoted
from gateway.formats.jsonl import line_blocks, split_lines, stream_chunks
from gateway.observability import logger
from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.s3 import is_missing, part_uploads, s3_client

# S3 parts must be at least 5 MiB except the last; 8 MiB as boto3 and the content cache use.
PART_BYTES = 8 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
READ_AHEAD_CHUNKS = 4
# an index is parsed this much at once: fast, and its entries (small objects) few at a time
INDEX_PIECE_BYTES = 64 * 1024
UPLOADS_IN_FLIGHT = 1  # per writer


def plan_prefix(batch_id: str) -> str:
    return f"{resources.PLAN_FILES_PREFIX}{batch_id}/"


def index_key(prefix: str, number: int) -> str:
    return f"{prefix}{number:05d}.index"


class S3ObjectWriter:
    """Writes one object as a stream: `write` any sizes, then `close` (or `abort`). A full part
    uploads in a thread while the next one fills (UPLOADS_IN_FLIGHT at most): memory is about
    (UPLOADS_IN_FLIGHT + 1) parts whatever the object's size."""

    def __init__(
        self, key: str, *, bucket: str | None = None, client: Any = None, part_bytes: int = PART_BYTES
    ) -> None:
        self.key = key
        self.bucket = bucket or get_settings().bucket_name
        self._s3 = client or s3_client()
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: deque[Future[dict[str, Any]]] = deque()
        self._sent = 0
        self.size = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError(f"write to a closed object writer ({self.key})")
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self._part_bytes:
            try:
                self._send_full_parts()
            except BaseException:
                self.abort()
                raise
        return len(data)

    def close(self) -> None:
        """Make the object visible with everything written."""
        if self.closed:
            return
        try:
            if self._upload_id is None:
                self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send(bytes(self._buffer))
                while self._in_flight:
                    self._parts.append(self._in_flight.popleft().result())
                self._s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        self._finish()

    def abort(self) -> None:
        """Drop what was written; the object is not written (the bucket's lifecycle rule
        aborts an upload this cannot)."""
        for future in self._in_flight:
            future.cancel()
        self._finish()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:
            logger.warning("could not abort a multipart upload", extra={"key": self.key})

    def __enter__(self) -> S3ObjectWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self.close()
        else:
            self.abort()

    def _finish(self) -> None:
        self.closed = True
        self._buffer = bytearray()
        for future in self._in_flight:  # a part still uploading ends before an abort
            with contextlib.suppress(BaseException):
                future.result()
        self._in_flight.clear()

    def _send_full_parts(self) -> None:
        if self._upload_id is None:
            answer = self._s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self._upload_id = str(answer["UploadId"])
        while len(self._buffer) >= self._part_bytes:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self._part_bytes])
            del self._buffer[: self._part_bytes]
            self._send(part)

    def _send(self, body: bytes) -> None:
        self._sent += 1
        self._in_flight.append(part_uploads().submit(self._upload_part, self._sent, body))
        while len(self._in_flight) > UPLOADS_IN_FLIGHT:
            self._parts.append(self._in_flight.popleft().result())

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}


def object_chunks(
    key: str, *, bucket: str | None = None, client: Any = None, read_ahead: int = READ_AHEAD_CHUNKS
) -> Iterator[bytes]:
    """The object's bytes, READ_CHUNK_BYTES at a time; a thread reads up to `read_ahead`
    chunks ahead of the reader (0: none), so S3 and the reader's work overlap. The body is
    closed when the reader is done or stops."""
    answer = (client or s3_client()).get_object(Bucket=bucket or get_settings().bucket_name, Key=key)
    body = answer["Body"]
    if read_ahead < 1:
        try:
            yield from stream_chunks(body, READ_CHUNK_BYTES)
        finally:
            body.close()
        return
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(read_ahead)
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                chunk = body.read(READ_CHUNK_BYTES)
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            chunks.put(exc)

    reader = threading.Thread(target=read, name="plan-files-read", daemon=True)
    reader.start()
    try:
        while item := chunks.get():
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # after `stop` the thread puts at most one more item: emptied, the queue takes it
        while not chunks.empty():
            chunks.get_nowait()
        reader.join()
        body.close()


def object_lines(key: str, *, bucket: str | None = None, client: Any = None) -> Iterator[bytes]:
    """The object's lines without their ends, streamed."""
    return split_lines(object_chunks(key, bucket=bucket, client=client))


def read_index(key: str, *, bucket: str | None = None, client: Any = None) -> dict[bytes, int]:
    """A part's index: custom_id (its `id_key`) -> input line number."""
    index: dict[bytes, int] = {}
    for chunk in line_blocks(object_chunks(key, bucket=bucket, client=client), INDEX_PIECE_BYTES):
        if b"\\" not in chunk:
            # no escaped id: no id holds a quote, a tab or a line end, so the piece's entries
            # are cut into their fields at once (C loops): number, id, number, id, ..., ""
            fields = chunk.replace(b'\t"', b"\t").replace(b'"\n', b"\t").split(b"\t")
            if len(fields) == 2 * chunk.count(b"\n") + 1:
                index.update(zip(fields[1::2], map(int, fields[0:-1:2]), strict=True))
                continue
        for line in chunk.split(b"\n"):
            number, _, text = line.partition(b"\t")
            if text:
                index[id_key(unquoted(text))] = int(number)
    return index


class IndexWriter:
    """A part's index as split records it (`<input line number>\t<quoted custom_id>` a line),
    written whole on `close` or not at all. Entries are held and handed to the object writer
    HELD_LINES at a time: a split records every line, and a writer's `write` is a dozen times
    a list's append."""

    HELD_LINES = 1024

    def __init__(
        self, key: str, *, bucket: str | None = None, client: Any = None, held_lines: int = HELD_LINES
    ) -> None:
        self.writer = S3ObjectWriter(key, bucket=bucket, client=client)
        self._entries: list[bytes] = []
        self._held_lines = held_lines

    def record(self, line_number: int, custom_id: str) -> None:
        self._entries.append(b"%d\t%s\n" % (line_number, quoted(custom_id)))
        if len(self._entries) >= self._held_lines:
            self._hand_on()

    def close(self) -> None:
        self._hand_on()
        self.writer.close()

    def abort(self) -> None:
        self._entries = []
        self.writer.abort()

    def _hand_on(self) -> None:
        if self._entries:
            self.writer.write(b"".join(self._entries))
            self._entries = []


def object_exists(key: str, *, bucket: str | None = None, client: Any = None) -> bool:
    try:
        (client or s3_client()).head_object(Bucket=bucket or get_settings().bucket_name, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise
    return True


_DELETE_AT_ONCE = 1000  # DeleteObjects' limit


def delete_plan_files(batch_id: str, *, bucket: str | None = None, client: Any = None) -> int:
    """Every object under the batch's plan prefix deleted (none left: nothing to do, so a
    repeat is harmless); how many were."""
    s3, bucket = client or s3_client(), bucket or get_settings().bucket_name
    deleted = 0
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=plan_prefix(batch_id), PaginationConfig={"PageSize": _DELETE_AT_ONCE}
    )
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents") or ()]
        if keys:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            if answer.get("Errors"):
                raise RuntimeError(f"plan files of {batch_id} not deleted: {answer['Errors'][:3]}")
            deleted += len(keys)
    return deleted


def batches_with_files(*, bucket: str | None = None, client: Any = None) -> set[str]:
    """The ids of the batches that have objects under the plan prefix (one listing of its
    folders); none when the bucket does not exist (a table without one: tests)."""
    s3, bucket = client or s3_client(), bucket or get_settings().bucket_name
    found: set[str] = set()
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=resources.PLAN_FILES_PREFIX, Delimiter="/"
    )
    try:
        for page in pages:
            for folder in page.get("CommonPrefixes") or ():
                found.add(str(folder["Prefix"])[len(resources.PLAN_FILES_PREFIX) :].rstrip("/"))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return set()
        raise
    return found
