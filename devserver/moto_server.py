"""moto's server application behind a keep-alive HTTP/1.1 front end.

moto's `ThreadedMotoServer` serves its WSGI application with werkzeug's development server,
which closes the connection after every response (it cannot drain a request body it did
not read and still find the next request line). Every AWS call of a handler then pays a new
TCP connection and a new server thread: about 3 ms of the 5 ms a DynamoDB call costs
locally, against about 1.4 ms in moto itself.

This handler keeps werkzeug's environ building (and moto's header handling) but reads each
request body whole before calling the application, so the connection is always at the next
request line afterwards and stays open. Chunked request bodies, which no AWS SDK sends to
these services, fall back to werkzeug's own close-after-response path.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

# Response headers the front end sets itself.
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive"})
# DynamoDB serves concurrent requests; moto's backend does not (a TransactWriteItems deep-copies
# tables another request may be changing, and fails). Its requests take turns here, so the
# local endpoint fails no more than DynamoDB would.
_DYNAMODB_TURN = threading.Lock()


class KeepAliveMotoRequestHandler(MotoRequestHandler):
    disable_nagle_algorithm = True  # small request/response pairs: no 40 ms delayed-ACK stalls

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            super().run_wsgi()  # closes the connection afterwards
            return
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self.rfile.read(int(length)) if length else b""
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True

        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)  # the legacy write() callable

        chunks: list[bytes] = []
        dynamodb = self.headers.get("X-Amz-Target", "").startswith("DynamoDB_")
        with _DYNAMODB_TURN if dynamodb else contextlib.nullcontext():
            result: Iterable[bytes] = self.server.app(environ, start_response)
            try:
                self._respond(started, chunks, result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    def _respond(self, started: list[Any], chunks: list[bytes], result: Iterable[bytes]) -> None:
        iterator = iter(result)
        # The application may call start_response lazily, on its first chunk.
        first = next(iterator, None)
        if first is not None:
            chunks.append(first)
        status, headers = started
        declared = next((value for name, value in headers if name.lower() == "content-length"), None)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        bodiless = self.command == "HEAD" or int(code) in (204, 304) or 100 <= int(code) < 200
        if bodiless:
            if declared is not None:
                self.send_header("Content-Length", declared)
            self.end_headers()
            return
        if declared is not None:  # stream: an S3 object may be large
            self.send_header("Content-Length", declared)
            self.end_headers()
            for chunk in (*chunks, *iterator):
                self.wfile.write(chunk)
            return
        payload = b"".join((*chunks, *iterator))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class KeepAliveMotoServer:
    """moto's application on `host:port` (0: a free port), served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # werkzeug logs every request at INFO (and adds its own stderr handler): quiet it.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=KeepAliveMotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address
        return f"http://{host}:{port}"

    def start(self) -> KeepAliveMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def table_items(table_name: str, region: str) -> list[dict[str, Any]] | None:
    """Every item of `table_name` as boto3's Scan returns it (typed values, binary as bytes),
    read from this process's moto backend in one DynamoDB turn: no request changes the table
    half-way through (a paginated Scan can see half of a transaction), and none of Scan's
    per-page cost (about a second per 1,000 items here). None when the table is not found there
    (moto serving another account): the caller scans through the API instead."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    with _DYNAMODB_TURN:
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(table_name)
        if table is None:
            return None
        return [{name: _typed(value) for name, value in item.attrs.items()} for item in table.all_items()]


def _typed(value: Any) -> dict[str, Any]:
    """A moto DynamoType as boto3's deserialized wire value."""
    kind, raw = value.type, value.value
    if kind == "M":
        return {"M": {name: _typed(member) for name, member in raw.items()}}
    if kind == "L":
        return {"L": [_typed(member) for member in raw]}
    if kind == "B":
        return {"B": _binary(raw)}
    if kind == "BS":
        return {"BS": [_binary(member) for member in raw]}
    if kind in ("SS", "NS"):
        return {kind: list(raw)}
    return {kind: raw}


def _binary(raw: bytes | str) -> bytes:
    # moto keeps a binary value as the request carried it (base64 text) or as bytes
    return raw if isinstance(raw, bytes) else base64.b64decode(raw)
