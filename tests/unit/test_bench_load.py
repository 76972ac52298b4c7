"""bench/load.py: a smoke run end to end (its own `make serve` subprocess), and its consistency check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.load import MIX, consistency_problems

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_creates_lists_cancels_and_finds_everything_consistent(tmp_path: Path) -> None:
    report_path = tmp_path / "load.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    # make test runs this beside the other suites and LocalStack on 2 cores: a request head read
    # late there is the machine's stall, not what this smoke run checks
    env["DEVSERVER_READ_TIMEOUT_SECONDS"] = "60"
    completed = subprocess.run(
        [sys.executable, "bench/load.py", "--seconds", "3", "--clients", "2", "--json", str(report_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["consistency_problems"] == []
    summary = report["summary"]
    assert summary["5xx"] == 0 and summary["errors"] == 0, completed.stdout[-3000:]
    assert set(summary["operations"]) == set(MIX)
    assert summary["requests"] == sum(figures["requests"] for figures in summary["operations"].values()) > 0
    assert sum(counts["files"] for counts in report["created"].values()) > 0
    assert "consistency: ok" in completed.stdout


def test_the_check_finds_a_missing_a_doubled_and_a_foreign_object_and_a_batch_not_cancelled() -> None:
    created = {"files": ["file-a", "file-b", "file-c"], "batches": ["batch_a"]}
    listed = {"files": ["file-a", "file-b", "file-b", "file-x"], "batches": ["batch_a"]}
    problems = consistency_problems(
        "t", created, listed, foreign={"file-x"}, cancelled={"batch_a": "completed", "batch_b": "cancelled"}
    )
    assert problems == [
        "t: files file-b listed 2 times",
        "t: files file-c listed 0 times",
        "t: files list holds file-x of the other key",
        "t: batch batch_a was cancelled but ended completed",
    ]


def test_a_consistent_tenant_has_no_problems() -> None:
    created = {"files": ["file-a"], "batches": ["batch_a", "batch_b"]}
    listed = {"files": ["file-a", "file-out"], "batches": ["batch_b", "batch_a"]}
    assert (
        consistency_problems("t", created, listed, foreign={"file-z"}, cancelled={"batch_a": "cancelled"})
        == []
    )
