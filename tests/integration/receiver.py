"""A webhook receiver on loopback for the tests: records every delivery, answers as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    # status codes to answer, in order; 200 once they run out
    answers: list[int] = field(default_factory=list)


@contextmanager
def webhook_receiver(answers: list[int] | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    state = Receiver(url="", answers=list(answers or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state.deliveries.append(
                    Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = state.answers.pop(0) if state.answers else 200
            reply = b"{}"
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(reply)}\r\n"
                "Content-Type: application/json\r\n\r\n"
            )
            self.wfile.write(head.encode() + reply)  # headers and body in one write

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    state.url = f"http://{host}:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
