"""Settling a batch: usage summed from its output file, streamed; memory constant in file size.

    .venv/bin/python bench/settle.py                         # 20 and 200 MB outputs, 3 runs each
    .venv/bin/python bench/settle.py --sizes-mb 2 20 --runs 1 --report-only

Writes OpenAI-shaped output files (chat.completion bodies with usage, one in 50 lines a
failed request), then in a fresh process per run streams each through the settlement's own
line splitter and usage tally (gateway.formats.jsonl.split_lines, service.usage), in
256 KiB chunks as it reads a provider's response, and reports the median throughput and the
process's peak RSS.

Goals (exit 1 when missed, unless --report-only): peak RSS of the largest size at most
16 MiB above the smallest's; the tally matches the usage written into the file.
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
FAILED_EVERY = 50

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, "functions")
from gateway.formats.jsonl import split_lines
from gateway.service.usage import tally_output

def chunks(path):
    with open(path, "rb") as stream:
        while chunk := stream.read(256 * 1024):
            yield chunk

started = time.perf_counter()
tally = tally_output(split_lines(chunks(sys.argv[1])))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "succeeded": tally.succeeded, "failed": tally.failed,
                  "input_tokens": tally.usage.input_tokens, "output_tokens": tally.usage.output_tokens,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_output_file(path: Path, size_bytes: int) -> dict[str, int]:
    """An output file of about `size_bytes`; returns what a correct tally must find."""
    expected = {"succeeded": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0}
    written, index = 0, 0
    with path.open("wb") as out:
        while written < size_bytes:
            failed = index % FAILED_EVERY == FAILED_EVERY - 1
            prompt, completion = 50 + index % 700, 10 + index % 300
            body: dict[str, Any] = (
                {"error": {"message": "rate limited", "type": "server_error"}}
                if failed
                else {
                    "id": f"chatcmpl-{index}",
                    "object": "chat.completion",
                    "model": "gpt-4o-mini-2024-07-18",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "word " * 120},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                }
            )
            line = {
                "id": f"batch_req_{index}",
                "custom_id": f"request-{index}",
                "response": {
                    "status_code": 500 if failed else 200,
                    "request_id": f"req_{index}",
                    "body": body,
                },
                "error": None,
            }
            data = json.dumps(line).encode() + b"\n"
            out.write(data)
            written += len(data)
            if failed:
                expected["failed"] += 1
            else:
                expected["succeeded"] += 1
                expected["input_tokens"] += prompt
                expected["output_tokens"] += completion
            index += 1
    return expected


def settle_once(path: Path) -> dict[str, Any]:
    return run_child(_CHILD, path)


def measure(sizes_mb: list[float], runs: int, workdir: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    results: dict[str, dict[str, float]] = {}
    wrong: list[str] = []
    for size in sizes_mb:
        path = workdir / f"output-{size}MB.jsonl"
        expected = write_output_file(path, int(size * MB))
        samples = [settle_once(path) for _ in range(runs)]
        for sample in samples:
            found = {name: sample[name] for name in expected}
            if found != expected:
                wrong.append(f"{size:g} MB: tallied {found}, file holds {expected}")
        file_bytes = path.stat().st_size
        results[f"{size:g}"] = {
            "lines": float(expected["succeeded"] + expected["failed"]),
            "mb_per_second": median(file_bytes / MB / s["seconds"] for s in samples),
            "peak_rss_mib": median(s["peak_rss_kib"] / 1024 for s in samples),
        }
        path.unlink()
    return results, wrong


def missed_goals(results: dict[str, dict[str, float]], wrong: list[str]) -> list[str]:
    return [f"wrong tally: {sentence}" for sentence in wrong] + rss_growth_missed(results)


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-settle-") as workdir:
        results, wrong = measure(args.sizes_mb, args.runs, Path(workdir))
    return finish(args, results, missed_goals(results, wrong))


if __name__ == "__main__":
    raise SystemExit(main())
