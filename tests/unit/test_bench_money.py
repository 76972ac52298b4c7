"""bench/validate.py and bench/settle.py run end to end on small files, and their goal checks can fail."""

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


def test_settle_bench_tallies_what_it_wrote_and_its_goal_check_can_fail(tmp_path: Path) -> None:
    from bench.settle import missed_goals as settle_missed_goals

    report = tmp_path / "settle.json"
    completed = subprocess.run(
        [sys.executable, "bench/settle.py", "--sizes-mb", "0.2", "1", "--runs", "1", "--json", str(report)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    figures = json.loads(report.read_text())
    assert figures["missed"] == [] and figures["results"]["1"]["lines"] > figures["results"]["0.2"]["lines"]
    flat = {"20": {"peak_rss_mib": 40.0}, "200": {"peak_rss_mib": 41.0}}
    assert settle_missed_goals(flat, []) == []
    assert settle_missed_goals(flat, ["20 MB: tallied x"]) == ["wrong tally: 20 MB: tallied x"]
    assert settle_missed_goals({**flat, "200": {"peak_rss_mib": 90.0}}, [])[0].startswith("peak RSS grows")
