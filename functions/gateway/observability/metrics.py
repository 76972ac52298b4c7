"""The gateway's metrics: CloudWatch embedded metric format (EMF) lines, written by Powertools'
EMF provider, no API call. A metric is kept in memory where its event happens (`emit`) and
written when the function's invocation ends (`flush`, by observability.instrument).

One Powertools `Metrics` object holds one dimension set per line, and the gateway's metrics
have different dimensions (a route; a provider and an outcome; a status): so `flush` writes one
EMF line per dimension set. What is emitted is kept process-wide, as Lambda runs one invocation
at a time per process: a provider call made on a worker thread (batches.list refreshes in a
pool) is written by its invocation's flush. (The local server runs requests on many threads at
once: there a flush may write a concurrent request's metrics too; each is written once.)
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from gateway.observability.metric_names import NAMESPACE, SERVICE, MetricName

Sink = Callable[[str], None]
Dimensions = tuple[tuple[str, str], ...]

# EMF takes at most 100 values of a metric per line (Powertools writes a line itself at 100).
_VALUES_PER_LINE = 99
# Written early past this many in one invocation (a long watcher pass): memory stays bounded.
_MAX_PENDING = 1000
# Units whose values add up: one datapoint per line is as good as many.
_SUMMED_UNITS = frozenset({"Count", "Bytes", "None"})
# A dimension value comes from the route table or the configuration; this bounds a mistake.
_MAX_DIMENSION_CHARS = 128


class _Pending:
    def __init__(self) -> None:
        self.items: list[tuple[MetricName, Dimensions, float]] = []
        self.lock = threading.Lock()

    def take(self) -> list[tuple[MetricName, Dimensions, float]]:
        with self.lock:
            items, self.items = self.items, []
        return items


class _Providers(threading.local):
    def __init__(self) -> None:
        # one per thread, cleared for each line (making one costs more than a line)
        self.provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)


_pending = _Pending()
_providers = _Providers()


def _stdout(line: str) -> None:
    # Lambda hands standard output to CloudWatch Logs, which extracts the metrics from EMF lines.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


_sink: Sink = _stdout


def emit(metric: MetricName, value: float = 1, **dimensions: str) -> None:
    """Record `value` of `metric` with exactly the dimensions metric_names lists for it."""
    if set(dimensions) != set(metric.dimensions):
        raise ValueError(f"{metric.name} takes dimensions {metric.dimensions}, got {tuple(dimensions)}")
    bounded = tuple(sorted((name, str(value)[:_MAX_DIMENSION_CHARS]) for name, value in dimensions.items()))
    with _pending.lock:
        _pending.items.append((metric, bounded, float(value)))
        full = len(_pending.items) >= _MAX_PENDING
    if full:
        flush()


def flush() -> None:
    """Write what was emitted since the last flush, one EMF line per dimension set."""
    items = _pending.take()
    if not items or is_metrics_disabled():
        return
    for line in emf_lines(items):
        _sink(json.dumps(line, separators=(",", ":")))


def emf_lines(items: list[tuple[MetricName, Dimensions, float]]) -> Iterator[dict[str, Any]]:
    # one line per dimension set (and its rollups: a line publishes all its metrics under each)
    Group = tuple[Dimensions, tuple[tuple[str, ...], ...]]
    by_dimensions: dict[Group, dict[MetricName, list[float]]] = {}
    for metric, dimensions, value in items:
        by_dimensions.setdefault((dimensions, metric.rollups), {}).setdefault(metric, []).append(value)
    for (dimensions, rollups), metrics in by_dimensions.items():
        values = {
            metric: [sum(vals)] if metric.unit in _SUMMED_UNITS else vals for metric, vals in metrics.items()
        }
        start = 0
        while any(len(vals) > start for vals in values.values()):
            provider = _providers.provider
            provider.clear_metrics()
            for name, label in dimensions:
                provider.add_dimension(name=name, value=label)
            labels = dict(dimensions)
            for rollup in rollups:
                provider.add_dimensions(service=SERVICE, **{name: labels[name] for name in rollup})
            for metric, vals in values.items():
                for value in vals[start : start + _VALUES_PER_LINE]:
                    provider.add_metric(name=metric.name, unit=metric.unit, value=value)
            yield dict(provider.serialize_metric_set())
            start += _VALUES_PER_LINE


def set_sink(sink: Sink | None) -> None:
    """Where EMF lines go: standard output (None, as in Lambda), or e.g. the local server's stderr."""
    global _sink
    _sink = sink or _stdout


def discard() -> None:
    """Forget what was emitted and not flushed (a test's leftovers)."""
    _pending.take()


@contextmanager
def capture() -> Iterator[list[dict[str, Any]]]:
    """The EMF lines flushed inside the block, parsed (tests; any thread's)."""
    lines: list[dict[str, Any]] = []
    lock = threading.Lock()

    def keep(line: str) -> None:
        with lock:
            lines.append(json.loads(line))

    previous = _sink
    discard()
    set_sink(keep)
    try:
        yield lines
    finally:
        set_sink(previous)
