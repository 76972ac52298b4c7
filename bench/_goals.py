"""A bench's goals: each figure against its limit, one verdict line each, and the exit status.

A bench exits 1 when it misses a goal, so `make bench` fails on a regression; with
`--report-only` it prints the same verdicts and exits 0 (for exploring settings, or on a
machine known to be too slow). Plain standard library, like `_stats.py`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Goal", "add_report_only_flag", "verdict"]


@dataclass(frozen=True)
class Goal:
    name: str
    value: float
    limit: float
    unit: str
    at_most: bool = True  # False: the value must be at least the limit

    @property
    def met(self) -> bool:
        # A NaN figure (nothing measured) compares False both ways: a miss, never a pass.
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def line(self) -> str:
        bound = "<=" if self.at_most else ">="
        return (
            f"goal {self.name}: {self.value:.3f} {self.unit} (goal {bound} {self.limit:g} {self.unit}): "
            f"{'met' if self.met else 'MISSED'}"
        )


def add_report_only_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="print the goals' verdicts but exit 0 even when a goal is missed",
    )


def verdict(goals: Sequence[Goal], *, report_only: bool, out: TextIO | None = None) -> int:
    """Print one line per goal; the exit status: 1 if a goal is missed (0 with report_only)."""
    out = out or sys.stdout
    if not goals:
        raise ValueError("a bench with a goal must check at least one figure")
    for goal in goals:
        print(goal.line(), file=out)
    missed = [goal.name for goal in goals if not goal.met]
    if not missed:
        return 0
    if report_only:
        print(f"--report-only: exit status 0 although {len(missed)} goal(s) missed", file=out)
        return 0
    print(f"{len(missed)} goal(s) missed: {', '.join(missed)}", file=out)
    return 1
