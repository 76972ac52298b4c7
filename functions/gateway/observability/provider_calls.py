"""One call to a provider, measured: ProviderCalls by outcome, ProviderLatency, and an X-Ray
subsegment annotated with the provider and the answer's status (never the key or the body)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.observability import metric_names, tracing
from gateway.observability.metric_names import (
    PROVIDER_4XX,
    PROVIDER_5XX,
    PROVIDER_429,
    PROVIDER_OK,
    PROVIDER_TIMEOUT,
    PROVIDER_UNREACHABLE,
)
from gateway.observability.metrics import emit

# The outcomes a caller sets itself (`CallOutcome.failed`).
TIMEOUT = PROVIDER_TIMEOUT
UNREACHABLE = PROVIDER_UNREACHABLE


def outcome_of(status: int) -> str:
    if status < 400:
        return PROVIDER_OK
    if status == 429:
        return PROVIDER_429
    return PROVIDER_4XX if status < 500 else PROVIDER_5XX


class CallOutcome:
    """Set by the caller once the provider answered (`answered`) or did not (`failed`)."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.outcome = UNREACHABLE

    def answered(self, status: int) -> None:
        self.status = status
        self.outcome = outcome_of(status)

    def failed(self, outcome: str) -> None:
        self.outcome = outcome


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[CallOutcome]:
    """`operation`: a fixed name such as "GET /batches" or "get_model_invocation_job"."""
    call = CallOutcome()
    started = time.perf_counter()
    with tracing.subsegment(f"## provider {operation}") as segment:
        try:
            yield call
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if segment is not None:
                segment.put_annotation("provider", provider)
                segment.put_annotation("outcome", call.outcome)
                if call.status is not None:
                    segment.put_annotation("status", call.status)
            emit(metric_names.PROVIDER_CALLS, provider=provider, outcome=call.outcome)
            emit(metric_names.PROVIDER_LATENCY, elapsed_ms, provider=provider)
