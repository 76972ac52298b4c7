"""Every function's entry point wrapped once: Powertools' logger context, X-Ray's handler segment
(when tracing is on) and the metrics the invocation emitted, flushed when it ends, whatever way."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.observability import logger, metrics, tracing

Handler = TypeVar("Handler", bound=Callable[..., Any])


def instrumented(
    handler: Handler | None = None, *, correlation_id_path: str | None = None, clear_state: bool = True
) -> Any:
    """`@instrumented` or `@instrumented(clear_state=False)` on a handler."""
    if handler is None:
        return functools.partial(
            instrumented, correlation_id_path=correlation_id_path, clear_state=clear_state
        )
    active = tracing.tracer()
    inner: Callable[..., Any] = handler
    if active is not None:
        # a response may hold a client's data: never in a trace
        inner = active.capture_lambda_handler(inner, capture_response=False)
    inner = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=clear_state)(
        inner
    )

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        tracing.about(None)  # what the environment's previous invocation worked on
        try:
            return inner(event, context)
        finally:
            metrics.flush()

    entry.instrumented = True  # type: ignore[attr-defined]
    return entry
