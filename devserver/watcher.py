"""The batch watcher under `make serve`: the scheduled function's own handler, run every
WATCH_INTERVAL_SECONDS (default 5) on a background thread, as EventBridge Scheduler runs it
every minute in AWS. One pass at a time here; in AWS two may overlap, which is safe too."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.routes import SCHEDULED_FUNCTIONS

from devserver.apigw import Handler, import_handler
from devserver.events import lambda_context

logger = logging.getLogger("devserver.watcher")

DEFAULT_INTERVAL_SECONDS = 5.0
(_WATCHER,) = SCHEDULED_FUNCTIONS


def interval_from_env() -> float:
    raw = os.environ.get("WATCH_INTERVAL_SECONDS")
    return float(raw) if raw else DEFAULT_INTERVAL_SECONDS


class LocalWatcher:
    def __init__(self, interval_seconds: float, handler: Handler | None = None) -> None:
        resolved = handler or import_handler(_WATCHER.name)
        assert resolved is not None, "functions/handlers/batch_watcher.py is missing"
        self.handler: Handler = resolved  # replaceable (tests/infra/code_usage.py wraps it)
        self.interval = interval_seconds
        self.passes = 0
        self._run_lock = threading.Lock()
        self._paused = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval_seconds > 0:
            self.start(interval_seconds)

    def start(self, interval_seconds: float) -> None:
        """Run a pass every `interval_seconds` from now on (until stop)."""
        self.stop()
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(self._stop,), name="batch-watcher", daemon=True
        )
        self._thread.start()

    def run_once(self) -> Any:
        """One pass now (after any pass under way), through the function's handler."""
        with self._run_lock:
            context = lambda_context(
                _WATCHER.name, memory_mb=_WATCHER.memory_mb, timeout_seconds=_WATCHER.timeout_seconds
            )
            result = self.handler({"source": "aws.scheduler"}, context)
            self.passes += 1
            return result

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No scheduled pass starts meanwhile (a pass under way finishes first); run_once still runs."""
        with self._run_lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._run_lock:
                self._paused -= 1

    def stop(self) -> None:
        """No more scheduled passes (a pass under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            if self._paused:
                continue
            try:
                self.run_once()
            except Exception:
                logger.exception("watcher pass failed")
