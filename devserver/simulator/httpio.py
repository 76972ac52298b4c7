"""Streaming request bodies: Content-Length and chunked framing, and multipart/form-data to disk.

Nothing here holds a whole body in memory: bodies are read in fixed-size chunks and file parts are
written to disk as they arrive, hashing on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError, bad_request

CHUNK = 1 << 16
MAX_JSON_BODY = 16 << 20  # JSON request bodies are small; refuse anything bigger
MAX_FORM_FIELD = 1 << 16  # non-file multipart fields (purpose, expires_after[...])


class BodyReader:
    """Reads one request body from the connection, decoding ``Transfer-Encoding: chunked`` if used."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile: BinaryIO = rfile
        te = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self._chunk_left = 0
        self._done = False
        self.bytes_read = 0
        if self.chunked:
            self._remaining = 0
        else:
            raw = headers.get("Content-Length")
            try:
                self._remaining = int(raw) if raw else 0
            except ValueError:
                self._remaining = 0
                self._done = True
                self.invalid = True
                return
            if self._remaining < 0:
                self._remaining = 0
            self._done = self._remaining == 0
        self.invalid = False

    @property
    def done(self) -> bool:
        return self._done

    def read(self, size: int = CHUNK) -> bytes:
        """Return up to ``size`` bytes of body; ``b""`` at the end of the body."""
        if self._done:
            return b""
        if not self.chunked:
            data = self._rfile.read(min(size, self._remaining))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            self._remaining -= len(data)
            self.bytes_read += len(data)
            if self._remaining == 0:
                self._done = True
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise bad_request("Malformed chunked request body.") from exc
            if self._chunk_left == 0:
                # trailers, then the blank line that ends the body
                while True:
                    trailer = self._rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                self._done = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        self._chunk_left -= len(data)
        self.bytes_read += len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)  # CRLF closing the chunk
        return data

    def drain(self) -> None:
        while not self._done:
            if not self.read(1 << 20) and not self._done:
                break

    def read_json(self) -> dict[str, Any]:
        parts: list[bytes] = []
        total = 0
        while True:
            data = self.read()
            if not data:
                break
            total += len(data)
            if total > MAX_JSON_BODY:
                self.drain()
                raise ApiError(413, "Request body too large.", code="request_too_large")
            parts.append(data)
        raw = b"".join(parts)
        if not raw.strip():
            return {}
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
                "not valid JSON.)"
            ) from exc
        if not isinstance(obj, dict):
            raise bad_request("The request body must be a JSON object.")
        return obj


@dataclass
class ReceivedFile:
    """A multipart file part written to disk."""

    path: str
    filename: str
    content_type: str
    size: int = 0
    sha256: str = ""
    md5: str = ""


@dataclass
class FormData:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, ReceivedFile] = field(default_factory=dict)

    def discard(self) -> None:
        for f in self.files.values():
            _unlink(f.path)
        self.files.clear()


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _FormCollector:
    """python-multipart callbacks: headers per part, file parts streamed to temp files."""

    def __init__(self, tmp_dir: str, file_fields: frozenset[str]) -> None:
        self.tmp_dir = tmp_dir
        self.file_fields = file_fields
        self.form = FormData()
        self._hfield = bytearray()
        self._hvalue = bytearray()
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._buf: bytearray | None = None
        self._file: BinaryIO | None = None
        self._rec: ReceivedFile | None = None
        self._sha: Any = None
        self._md5: Any = None

    # header callbacks
    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._buf = None
        self._file = None
        self._rec = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hfield += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hfield.decode("latin-1").lower()] = self._hvalue.decode("latin-1")
        self._hfield.clear()
        self._hvalue.clear()

    def on_headers_finished(self) -> None:
        _, opts = parse_options_header(self._headers.get("content-disposition", ""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        filename = opts.get(b"filename")
        if name in self.file_fields:
            fd, path = tempfile.mkstemp(prefix="part-", dir=self.tmp_dir)
            self._file = os.fdopen(fd, "wb", buffering=0)
            self._rec = ReceivedFile(
                path=path,
                filename=filename.decode("utf-8", "replace") if filename is not None else "",
                content_type=self._headers.get("content-type", "application/octet-stream"),
            )
            old = self.form.files.pop(name, None)
            if old is not None:
                _unlink(old.path)
            self.form.files[name] = self._rec
            self._sha = hashlib.sha256()
            self._md5 = hashlib.md5(usedforsecurity=False)
        else:
            self._buf = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._rec is not None:
            self._file.write(chunk)
            self._sha.update(chunk)
            self._md5.update(chunk)
            self._rec.size += len(chunk)
        elif self._buf is not None:
            self._buf += chunk
            if len(self._buf) > MAX_FORM_FIELD:
                raise bad_request(f"Form field '{self._name}' is too large.", param=self._name)

    def on_part_end(self) -> None:
        if self._file is not None and self._rec is not None:
            self._file.close()
            self._rec.sha256 = self._sha.hexdigest()
            self._rec.md5 = self._md5.hexdigest()
            self._file = None
        elif self._buf is not None and self._name is not None:
            self.form.fields[self._name] = self._buf.decode("utf-8", "replace")
            self._buf = None

    @property
    def open_part(self) -> bool:
        return self._file is not None or self._buf is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_multipart(
    body: BodyReader, content_type: str | None, tmp_dir: str, file_fields: frozenset[str]
) -> FormData:
    """Parse a multipart/form-data body incrementally. Parts named in ``file_fields`` go to disk."""
    ctype, opts = parse_options_header(content_type or "")
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        body.drain()
        raise bad_request("Expected a multipart/form-data request body with a boundary.")
    collector = _FormCollector(tmp_dir, file_fields)
    callbacks: Any = {
        "on_part_begin": collector.on_part_begin,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        while True:
            data = body.read(CHUNK * 4)
            if not data:
                break
            parser.write(data)
        parser.finalize()
    except FormParserError as exc:
        collector.close()
        collector.form.discard()
        body.drain()
        raise bad_request(f"Invalid multipart/form-data body: {exc}") from exc
    except BaseException:
        collector.close()
        collector.form.discard()
        with contextlib.suppress(Exception):
            body.drain()
        raise
    if collector.open_part:
        collector.close()
        collector.form.discard()
        raise bad_request("Invalid multipart/form-data body: the closing boundary is missing.")
    return collector.form
