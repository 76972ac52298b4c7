"""The functions' log keys, one set per thread, as one set per Lambda execution environment.

In AWS each execution environment serves one request at a time, so Powertools keeps the keys
of the request (function name, correlation id, key id) in one dict on the logger's formatter.
The local server runs every function in one process, a thread per connection: with that one
dict, a line logged by one request carries whatever keys the request that started last set.
Here the formatter's keys live per thread (each thread starting from the keys set at import).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["keys_per_thread"]


class _KeysPerThread:
    """Mixed in front of the formatter's own class: `log_format` (Powertools' keys) per thread."""

    @property
    def log_format(self) -> dict[str, Any]:
        local = self.__dict__["_thread_keys"]
        keys: dict[str, Any] | None = getattr(local, "keys", None)
        if keys is None:
            keys = local.keys = dict(self.__dict__["_import_keys"])
        return keys

    @log_format.setter
    def log_format(self, value: dict[str, Any]) -> None:
        self.__dict__["_thread_keys"].keys = value


def keys_per_thread() -> None:
    """Give the functions' logger (gateway.observability.logger) per-thread keys (idempotent)."""
    from gateway.observability import logger

    formatter = logger.registered_formatter
    if isinstance(formatter, _KeysPerThread):
        return
    formatter.__dict__["_import_keys"] = dict(formatter.__dict__.pop("log_format"))
    formatter.__dict__["_thread_keys"] = threading.local()
    cls = type(formatter)
    formatter.__class__ = type(f"{cls.__name__}PerThread", (_KeysPerThread, cls), {})
