"""One call to a provider, measured: ProviderCalls by outcome, ProviderLatency, and an X-Ray
subsegment annotated with the provider and the answer's status (never the key or the body)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.observability import metric_names, tracing
from gateway.observability.metrics import emit

OK = "ok"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"  # no answer at all: DNS, connection refused or reset


def outcome_of(status: int) -> str:
    if status < 400:
        return OK
    if status == 429:
        return "429"
    return "4xx" if status < 500 else "5xx"


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
