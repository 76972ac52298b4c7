"""Where the benchmarks write their figures (`--json PATH`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, report: Any) -> None:
    """The report as indented JSON at `path` (its folder created), and a line saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
