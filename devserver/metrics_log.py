"""The functions' metrics under the local server: the EMF lines each invocation wrote go to
standard error with METRICS_LOG=1 (a developer sees what a request emitted), nowhere otherwise
(the functions' standard output stays their JSON log, as before)."""

from __future__ import annotations

import os
import sys
import threading

ENV_METRICS_LOG = "METRICS_LOG"
_lock = threading.Lock()


def _to_stderr(line: str) -> None:
    with _lock:  # one line at a time from the request threads
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _drop(line: str) -> None:
    return None


def wanted() -> bool:
    return (os.environ.get(ENV_METRICS_LOG) or "").strip().lower() in ("1", "true", "yes", "on")


def attach() -> None:
    # imported here: the functions' logger takes its level from the environment the server
    # sets before it loads them
    from gateway.observability import metrics

    metrics.set_sink(_to_stderr if wanted() else _drop)


def detach() -> None:
    from gateway.observability import metrics

    metrics.set_sink(None)
