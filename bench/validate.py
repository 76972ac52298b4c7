"""How fast the upload-time batch check reads a file, and that its memory does not grow with it.

    .venv/bin/python bench/validate.py                         # 20 and 200 MB, 3 runs each
    .venv/bin/python bench/validate.py --sizes-mb 2 20 --runs 1 --report-only

Writes valid batch files of each size (50,000 requests at the largest size, as many as a
batch takes, so lines weigh about 4 KB there; the smaller files keep the same line size),
then checks each --runs times in a fresh process (gateway.service.batch_input_check, reading
the file from disk as a stream) and reports the median throughput and the process's peak RSS.

Goals (exit 1 when missed, unless --report-only):
  - throughput >= 100 MB/s at the largest size, on one core;
  - peak RSS of the largest size at most 16 MiB above the smallest's: memory is constant in
    file size.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench._sized_runs import arguments, finish, rss_growth_missed, run_child  # noqa: E402
from bench._stats import median  # noqa: E402

MB = 1_000_000
GOAL_MB_PER_SECOND = 100.0
MAX_REQUESTS = 50_000

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, "functions")
from gateway.service.batch_input_check import check_batch_input
with open(sys.argv[1], "rb") as stream:
    started = time.perf_counter()
    report = check_batch_input(stream)
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "ok": report.ok, "lines": report.lines, "bytes": report.bytes,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_batch_file(path: Path, size_bytes: int, line_bytes: int) -> int:
    """A valid chat-completions batch file of about `size_bytes`; returns its line count."""
    count = max(1, size_bytes // line_bytes)
    with path.open("wb") as out:
        for index in range(count):
            line = {
                "custom_id": f"request-{index}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "max_tokens": 200,
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": ""},
                    ],
                },
            }
            frame = len(json.dumps(line)) + 1
            line["body"]["messages"][1]["content"] = f"Item {index}: " + "lorem ipsum " * max(
                0, (line_bytes - frame - 20) // 12
            )
            out.write(json.dumps(line).encode() + b"\n")
    return count


def check_once(path: Path) -> dict[str, Any]:
    result = run_child(_CHILD, path)
    if not result["ok"]:
        raise SystemExit(f"the generated file {path} did not pass the check: {result}")
    return result


def measure(sizes_mb: list[float], runs: int, workdir: Path) -> dict[str, dict[str, float]]:
    line_bytes = max(300, int(max(sizes_mb) * MB) // MAX_REQUESTS)
    results: dict[str, dict[str, float]] = {}
    for size in sizes_mb:
        path = workdir / f"batch-{size}MB.jsonl"
        lines = write_batch_file(path, int(size * MB), line_bytes)
        samples = [check_once(path) for _ in range(runs)]
        file_bytes = path.stat().st_size
        results[f"{size:g}"] = {
            "lines": float(lines),
            "bytes": float(file_bytes),
            "mb_per_second": median(file_bytes / MB / s["seconds"] for s in samples),
            "peak_rss_mib": median(s["peak_rss_kib"] / 1024 for s in samples),
        }
        path.unlink()
    return results


def missed_goals(results: dict[str, dict[str, float]]) -> list[str]:
    """The goals the figures miss, as sentences (none when every goal is met)."""
    sizes = sorted(results, key=float)
    largest = results[sizes[-1]]
    missed = []
    if largest["mb_per_second"] < GOAL_MB_PER_SECOND:
        missed.append(
            f"throughput at {sizes[-1]} MB is {largest['mb_per_second']:.1f} MB/s, "
            f"goal >= {GOAL_MB_PER_SECOND:g}"
        )
    missed.extend(rss_growth_missed(results))
    return missed


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as workdir:
        results = measure(args.sizes_mb, args.runs, Path(workdir))
    return finish(args, results, missed_goals(results))


if __name__ == "__main__":
    raise SystemExit(main())
