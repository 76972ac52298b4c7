"""bench/moto_table_size.py runs end to end (a tiny run, in a subprocess: it points boto3 at its own moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_moto_table_size_bench_reports_every_call_at_every_size(tmp_path: Path) -> None:
    report = tmp_path / "moto.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    completed = subprocess.run(
        [
            sys.executable,
            "bench/moto_table_size.py",
            "--sizes",
            "4",
            "12",
            "--rounds",
            "1",
            "--requests",
            "2",
            "--json",
            str(report),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    assert list(results) == ["4", "12"]
    for figures in results.values():
        assert set(figures) == {"GetItem", "Query (object)", "Query (all)"}
        assert all(value > 0 for value in figures.values())
    assert "moto p50 per call" in completed.stdout
