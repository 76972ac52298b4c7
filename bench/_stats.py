"""Statistics shared by the benchmarks: median and percentiles of timing samples.

Plain standard library, no third-party imports, so that the benches and their unit test
(tests/unit/test_bench_stats.py) import it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["median", "milliseconds", "percentile", "summarize"]


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks.

    The same definition as numpy's default ("linear"): p50 of an even count is the mean of
    the two middle values, p0 the minimum, p100 the maximum.
    """
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("percentile of no samples")
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def median(samples: Iterable[float]) -> float:
    return percentile(samples, 50.0)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95, min, max and count of `samples` (same unit as the samples)."""
    return {
        "p50": percentile(samples, 50.0),
        "p95": percentile(samples, 95.0),
        "min": min(samples),
        "max": max(samples),
        "n": float(len(samples)),
    }


def milliseconds(seconds: float) -> float:
    return seconds * 1000.0
