"""bench/validate.py runs end to end on small files, and its goal check can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.validate import missed_goals

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_validate_bench_reports_throughput_and_memory_per_size(tmp_path: Path) -> None:
    report = tmp_path / "validate.json"
    completed = subprocess.run(
        [
            sys.executable,
            "bench/validate.py",
            "--sizes-mb",
            "0.2",
            "1",
            "--runs",
            "1",
            "--report-only",
            "--json",
            str(report),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    assert list(results) == ["0.2", "1"]
    assert results["1"]["lines"] > results["0.2"]["lines"] > 0
    assert all(figures["mb_per_second"] > 0 and figures["peak_rss_mib"] > 0 for figures in results.values())


def test_missed_goals_names_slow_throughput_and_growing_memory() -> None:
    fine = {
        "20": {"mb_per_second": 150.0, "peak_rss_mib": 30.0},
        "200": {"mb_per_second": 120.0, "peak_rss_mib": 40.0},
    }
    assert missed_goals(fine) == []
    slow = {**fine, "200": {"mb_per_second": 80.0, "peak_rss_mib": 40.0}}
    assert [s.split(" ")[0] for s in missed_goals(slow)] == ["throughput"]
    growing = {**fine, "200": {"mb_per_second": 120.0, "peak_rss_mib": 230.0}}
    assert [s.split(" ")[0] for s in missed_goals(growing)] == ["peak"]
