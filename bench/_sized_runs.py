"""What bench/validate.py and bench/settle.py share: a stream read from files of a few sizes,
throughput and peak memory per size, a goal that memory stays flat as the file grows."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._results import write_json

REPO_ROOT = Path(__file__).resolve().parent.parent

GOAL_RSS_GROWTH_MIB = 16.0


def arguments(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[20.0, 200.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--report-only", action="store_true", help="exit 0 even when a goal is missed")
    return parser


def run_child(script: str, path: Path) -> dict[str, Any]:
    """`script` in a fresh interpreter (its peak RSS is the run's alone) on `path`; its JSON line."""
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def rss_growth_missed(results: dict[str, dict[str, float]]) -> list[str]:
    """The memory goal as a sentence when missed: peak RSS of the largest size at most
    GOAL_RSS_GROWTH_MIB above the smallest's."""
    sizes = sorted(results, key=float)
    growth = results[sizes[-1]]["peak_rss_mib"] - results[sizes[0]]["peak_rss_mib"]
    if growth <= GOAL_RSS_GROWTH_MIB:
        return []
    return [
        f"peak RSS grows {growth:.1f} MiB from {sizes[0]} to {sizes[-1]} MB, goal <= {GOAL_RSS_GROWTH_MIB:g}"
    ]


def finish(args: Any, results: dict[str, dict[str, float]], missed: list[str]) -> int:
    """Prints the table and the missed goals, writes --json; the exit status."""
    print(f"{'size MB':>8} {'lines':>8} {'MB/s (median)':>14} {'peak RSS MiB':>13}")
    for size, figures in results.items():
        rate, rss = figures["mb_per_second"], figures["peak_rss_mib"]
        print(f"{size:>8} {int(figures['lines']):>8} {rate:>14.1f} {rss:>13.1f}")
    for sentence in missed:
        print(f"GOAL MISSED: {sentence}")
    if args.json:
        write_json(args.json, {"runs": args.runs, "results": results, "missed": missed})
    return 1 if missed and not args.report_only else 0
