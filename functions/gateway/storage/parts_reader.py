"""A file-like view of a byte range of an upload's parts, read from S3 in order.

The transfer hands it to httpx as the file of a multipart request: httpx learns the length
with tell/seek(0, SEEK_END) without reading, then reads 64 KiB at a time, so memory stays
bounded by a constant whatever the file size. It can rewind to its start (a request sent
again) by opening the parts again, and it keeps the running md5 of what it gave out unless
told no one will check it (`hashed=False`: an md5 is a few ms of CPU per MB).
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

from gateway.storage.upload_parts import StoredPart, open_part


class PartsReader(io.RawIOBase):
    def __init__(
        self,
        upload_id: str,
        parts: list[StoredPart],
        start: int,
        length: int,
        md5: Any | None = None,
        *,
        hashed: bool = True,
    ) -> None:
        super().__init__()
        self.upload_id = upload_id
        self.length = length
        self._start_md5 = (
            None if not hashed else md5.copy() if md5 is not None else hashlib.md5(usedforsecurity=False)
        )
        # (part, first byte, last byte) of every part overlapping [start, start + length)
        self._pieces: list[tuple[StoredPart, int, int]] = []
        offset, end = 0, start + length
        for part in parts:
            lo, hi = max(start, offset), min(end, offset + part.size)
            if lo < hi:
                self._pieces.append((part, lo - offset, hi - offset - 1))
            offset += part.size
        self._rewind()

    # What the transfer reads afterwards ----------------------------------------------------
    @property
    def md5(self) -> Any:
        """The running md5: of everything before `start` (as given) plus what was read (None
        when not `hashed`)."""
        return self._md5

    @property
    def bytes_read(self) -> int:
        return self._pos

    # io ------------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = {os.SEEK_SET: offset, os.SEEK_CUR: self._pos + offset, os.SEEK_END: self.length + offset}[
            whence
        ]
        if target == 0:
            self._rewind()
        elif target == self.length and self._pos in (0, self.length):
            # httpx measures the length (seek to the end, then back); nothing to read there.
            self._at_end = True
        elif target == self._pos and not self._at_end:
            pass
        else:
            raise io.UnsupportedOperation("PartsReader only rewinds to its start or measures its end")
        return target

    def read(self, size: int | None = -1) -> bytes:
        if self._at_end:
            return b""
        chunks: list[bytes] = []
        wanted = -1 if size is None or size < 0 else size
        while wanted != 0:
            body = self._current_body()
            if body is None:
                break
            chunk = body.read(wanted if wanted > 0 else 1 << 20)
            if not chunk:
                body.close()
                self._body = None
                self._piece += 1
                continue
            chunks.append(chunk)
            if wanted > 0:
                wanted -= len(chunk)
        data = b"".join(chunks)
        self._pos += len(data)
        if self._md5 is not None:
            self._md5.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._close_body()
        super().close()

    # internals -----------------------------------------------------------------------------
    def _rewind(self) -> None:
        self._close_body()
        self._piece = 0
        self._pos = 0
        self._at_end = False
        self._md5 = self._start_md5.copy() if self._start_md5 is not None else None

    def _current_body(self) -> Any | None:
        if self._body is None:
            if self._piece >= len(self._pieces):
                return None
            part, first, last = self._pieces[self._piece]
            whole = first == 0 and last == part.size - 1
            self._body = (
                open_part(self.upload_id, part.part_id)
                if whole
                else open_part(self.upload_id, part.part_id, first, last)
            )
        return self._body

    def _close_body(self) -> None:
        body = getattr(self, "_body", None)
        if body is not None:
            body.close()
        self._body = None
