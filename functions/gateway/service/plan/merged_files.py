"""A plan's merged files (partial and final output and errors), kept in the gateway's bucket.

They are the gateway's own product: no provider stores them (Azure's Files API takes no purpose
they could be uploaded as), none is uploaded. Each is a kept file of the batch's deployment
(`providers.kept_files`, which every adapter's file methods read) whose id is derived from the
batch id and what the file holds, so a merge run again writes the same id: the write is
conditional, and a second writer learns the file is there (the same parts merge to the same
lines). Nothing is named before it is written, and nothing written is lost: a step that dies
after the write finds the file by its id.
"""

from __future__ import annotations

import functools
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import IO

from gateway.errors import UpstreamRequestError
from gateway.formats.jsonl import stream_chunks
from gateway.providers.kept_files import FileExists, KeptFiles, derived_id

PURPOSE = "batch_output"
STREAM_CHUNK_BYTES = 1024 * 1024  # what a streamed merged file hands its writer at once
STREAM_QUEUE_CHUNKS = 4  # chunks a streamed merged file holds while its writer is busy


def merged_file_id(batch_id: str, which: str, parts: Sequence[int] | None = None) -> str:
    """`which`: output or error; `parts`: the finished parts a partial file merges (None: final)."""
    scope = "final" if parts is None else "partial:" + ",".join(str(number) for number in parts)
    return derived_id("plan-merge", batch_id, scope, which)


def filename(batch_id: str, which: str, parts: Sequence[int] | None = None) -> str:
    return f"{batch_id}_{which}.jsonl" if parts is None else f"{batch_id}_partial{len(parts)}_{which}.jsonl"


def keep(
    deployment: str, batch_id: str, which: str, content: IO[bytes], parts: Sequence[int] | None = None
) -> str | None:
    """The kept id of `content` (None when empty: no file), written once."""
    content.seek(0)
    kept = StreamedKeep(deployment, batch_id, which, parts)
    try:
        for chunk in stream_chunks(content):
            kept.write(chunk)
    except BaseException:
        kept.abort()
        raise
    return kept.close()


def find(deployment: str, batch_id: str, which: str, parts: Sequence[int] | None = None) -> str | None:
    """The kept id of a merged file an earlier step wrote, or None."""
    file_id = merged_file_id(batch_id, which, parts)
    try:
        KeptFiles(deployment).retrieve_file(file_id)
    except UpstreamRequestError as exc:
        if exc.status_code == 404:
            return None
        raise
    return file_id


class _Aborted(Exception):
    """The merge failed: the streamed file's writer stops and writes nothing."""


class StreamedKeep:
    """A merged file kept while it is being written (the merge's output or errors): `write`
    hands chunks of STREAM_CHUNK_BYTES to a thread that writes the kept file (`keep`'s id and
    conditional write, once), so its upload overlaps the merge. `close` waits for it: the kept
    id, None when nothing was written (no file). `abort` makes the writer stop without writing
    the file (a multipart write is aborted)."""

    def __init__(
        self, deployment: str, batch_id: str, which: str, parts: Sequence[int] | None = None
    ) -> None:
        self.deployment, self.batch_id, self.which, self.parts = deployment, batch_id, which, parts
        self.file_id = merged_file_id(batch_id, which, parts)
        self.size = 0
        self._held = bytearray()
        self._chunks: queue.Queue[bytes | type[_Aborted] | None] = queue.Queue(STREAM_QUEUE_CHUNKS)
        self._writer: Future[None] | None = None

    def write(self, data: bytes, /) -> int:
        self._held += data
        self.size += len(data)
        if len(self._held) >= STREAM_CHUNK_BYTES:
            self._hand_on()
        return len(data)

    def close(self) -> str | None:
        if self._held:
            self._hand_on()
        if self._writer is None:
            return None
        self._chunks.put(None)
        self._writer.result()
        return self.file_id

    def abort(self) -> None:
        self._held = bytearray()
        if self._writer is not None:
            self._chunks.put(_Aborted)
            with suppress(Exception):
                self._writer.result()

    def _hand_on(self) -> None:
        if self._writer is None:
            self._writer = _writers().submit(self._write_kept)
        self._chunks.put(bytes(self._held))
        self._held = bytearray()

    def _received(self) -> Iterator[bytes]:
        while (chunk := self._chunks.get()) is not None:
            if chunk is _Aborted:
                raise _Aborted
            assert isinstance(chunk, bytes)
            yield chunk

    def _write_kept(self) -> None:
        chunks = self._received()
        try:
            with suppress(FileExists):  # an earlier run of this merge wrote it: the same lines
                KeptFiles(self.deployment).put_file(
                    self.file_id,
                    chunks,
                    filename=filename(self.batch_id, self.which, self.parts),
                    purpose=PURPOSE,
                )
        finally:
            # what the write left unread (it stopped early), so the merge never waits on a full queue
            with suppress(_Aborted):
                for _ in chunks:
                    pass


@functools.cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2, thread_name_prefix="plan-merged-file")  # the output and the errors
