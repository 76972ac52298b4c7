"""The metrics of a batch's life, each emitted once per batch: at the write that makes it so
(its provider batch attached, its settlement committed), never on a retry that finds it done."""

from __future__ import annotations

from decimal import Decimal

from gateway.observability import metric_names
from gateway.observability.metrics import emit


def created(provider: str) -> None:
    emit(metric_names.BATCHES_CREATED, provider=provider)


def finished(
    provider: str,
    status: str,
    *,
    succeeded: int,
    failed: int,
    model: str | None = None,
    cost_usd: Decimal | None = None,
) -> None:
    """A batch settled: its final status, its lines, and its cost when its model has a price
    (a priced model is one the price table or the configuration names: a bounded dimension)."""
    emit(metric_names.BATCHES_FINISHED, provider=provider, status=status)
    emit(metric_names.REQUESTS_COMPLETED, succeeded, provider=provider)
    emit(metric_names.REQUESTS_FAILED, failed, provider=provider)
    if cost_usd is not None and model:
        emit(metric_names.COST_SETTLED, float(cost_usd), provider=provider, model=model)


def budget_refused() -> None:
    emit(metric_names.BUDGET_REFUSALS)
