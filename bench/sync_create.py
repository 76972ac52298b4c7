"""How fast a batches.create translates and sends its input itself, per provider type: the figure
behind `service.plan.sync_send` (which creates are too large to send before API Gateway's 29 s).

    .venv/bin/python bench/sync_create.py                        # 4 and 24 MB, 3 runs
    .venv/bin/python bench/sync_create.py --sizes-mb 1 4 --runs 1 --report-only

For the provider types whose create reads the kept input file, translates it and sends it
(Anthropic: every request inline in the Message Batches create; Gemini: a translated file to its
Files API; Vertex: translated rows to Cloud Storage; Bedrock: records to S3), each run starts a
fresh `python -m devserver` (the embedded simulator and moto, the watcher off, the sync-send
threshold lifted so that every create takes the direct path) and, per type and size, uploads a
valid file of chat requests (about 500 bytes a line, as bench/split.py) and times
`POST /{type}/v1/batches`: the whole synchronous create, write-ahead records and the provider's
answer included.

Reported per type: the median create seconds per size and the throughput at the largest size
(its bytes over its seconds: the fixed cost counted in, so a conservative figure), on this
machine's shared cores with the simulator and moto competing for them (a wide margin of its
own: in AWS the provider is remote). Beside it the byte threshold that throughput gives
through `sync_send.threshold_for` and the threshold shipped in `sync_send.MEASURED`.

Goal (exit 1 when missed, unless --report-only): for every type, the shipped threshold is at
most the one this run's throughput gives (the figure in the code stays safe on this machine).
Files go through the Uploads API in 4 MB parts (not timed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
from gateway.runtime import resources  # noqa: E402
from gateway.service.plan import sync_send  # noqa: E402

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._processes import Process, clean_environment, free_port, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median  # noqa: E402

MB = 1_000_000
MASTER_KEY = "sk-bench-sync-create"
LINE_BYTES = 500
# every size within one provider batch of every type (Bedrock's 50,000 records): a larger file
# would be planned, not sent by its create
MAX_LINES = 50_000
PART_BYTES = 4 * MB  # an upload part under a function's 6 MB event limit (base64)
MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "vertex": "gemini-2.5-flash",
    "bedrock": "claude-3-5-haiku",
}


def request_file(model: str, size: int) -> bytes:
    """About `size` bytes of chat requests, each line about LINE_BYTES: a system and a user
    message of words (short lines of many fields cost more a byte to translate than one long
    string would: the conservative side)."""
    lines: list[bytes] = []
    total = number = 0
    while total < size:
        messages = [
            {"role": "system", "content": "You are a careful assistant. Answer in one sentence."},
            {"role": "user", "content": ""},
        ]
        line = {
            "custom_id": f"r-{number:07d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 16, "temperature": 0.2, "messages": messages},
        }
        room = LINE_BYTES - len(json.dumps(line)) - 1
        words = f"Question {number}: what is " + "word " * (room // 5)
        messages[1]["content"] = words[: max(0, room)]
        encoded = json.dumps(line).encode() + b"\n"
        lines.append(encoded)
        total += len(encoded)
        number += 1
    return b"".join(lines)


class Gateway:
    def __init__(self, process: Process, base: str) -> None:
        self.process, self.base = process, base
        self.client = httpx.Client(timeout=300, headers={"Authorization": f"Bearer {MASTER_KEY}"})

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, self.base + path, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    def upload(self, provider: str, content: bytes) -> str:
        """The file through the Uploads API (parts under a request's limit), once processed."""
        base = f"/{provider}/v1"
        upload = self.request(
            "POST",
            f"{base}/uploads",
            json={
                "filename": "bench.jsonl",
                "purpose": "batch",
                "bytes": len(content),
                "mime_type": "text/jsonl",
            },
        )
        part_ids = []
        for start in range(0, len(content), PART_BYTES):
            files = {"data": ("part", content[start : start + PART_BYTES], "application/octet-stream")}
            part_ids.append(self.request("POST", f"{base}/uploads/{upload['id']}/parts", files=files)["id"])
        done = self.request("POST", f"{base}/uploads/{upload['id']}/complete", json={"part_ids": part_ids})
        file_id = str(done["file"]["id"])
        deadline = time.monotonic() + 300
        while self.request("GET", f"{base}/files/{file_id}")["status"] != "processed":  # the transfer
            if time.monotonic() > deadline:
                raise RuntimeError(f"{provider}: file {file_id} not processed in 300 s")
            time.sleep(0.1)
        return file_id

    def create_seconds(self, provider: str, content: bytes) -> float:
        file_id = self.upload(provider, content)
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        started = time.perf_counter()
        batch = self.request("POST", f"/{provider}/v1/batches", json=body)
        seconds = time.perf_counter() - started
        if batch.get("parts") or batch.get("status") not in {"validating", "in_progress"}:
            raise RuntimeError(f"{provider}: the create did not take the direct path: {batch}")
        return seconds


@contextlib.contextmanager
def gateway(logdir: Path) -> Iterator[Gateway]:
    env = clean_environment()
    port = free_port()
    env |= {
        "GATEWAY_MASTER_KEY": MASTER_KEY,
        "PORT": str(port),
        "SIM_PORT": str(free_port()),
        "SIM_BATCH_PHASE_SECONDS": "3600",
        "WATCH_INTERVAL_SECONDS": "0",
        "ACCESS_LOG": "0",
        resources.ENV_SYNC_CREATE_MAX_BYTES: str(10**12),  # every create sends its input itself
    }
    process = spawn("devserver", ["-m", "devserver"], env, logdir)
    try:
        wait_until(process, lambda: "Ctrl-C to stop" in process.output())
        server = Gateway(process, f"http://127.0.0.1:{port}")
        try:
            yield server
        finally:
            server.client.close()
    finally:
        process.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(mb * MB) for mb in args.sizes_mb]
    contents = {
        (provider, size): request_file(MODELS[provider], size) for provider in args.types for size in sizes
    }
    samples: dict[str, dict[int, list[float]]] = {p: {s: [] for s in sizes} for p in args.types}
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="sync-create-") as logdir, gateway(Path(logdir)) as server:
            server.create_seconds(args.types[0], contents[(args.types[0], sizes[0])])  # warm up
            for provider in args.types:
                for size in sizes:
                    seconds = server.create_seconds(provider, contents[(provider, size)])
                    samples[provider][size].append(seconds)
                    print(f"run {number} {provider:9} {size / MB:5.1f} MB  {seconds:6.2f} s", flush=True)
    largest = max(sizes)
    figures: dict[str, Any] = {}
    for provider in args.types:
        seconds = {size: median(values) for size, values in samples[provider].items()}
        mb_per_second = largest / MB / seconds[largest]
        figures[provider] = {
            "median_seconds": {f"{size / MB:g} MB": value for size, value in seconds.items()},
            "mb_per_second": mb_per_second,
            "threshold_from_run": sync_send.threshold_for(mb_per_second),
            "threshold_shipped": sync_send.MEASURED[provider].max_bytes,
        }
    return {"machine": platform.platform(), "runs": args.runs, "sizes_mb": args.sizes_mb, "types": figures}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[4.0, 24.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--types", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", type=Path, help="write the figures here")
    add_report_only_flag(parser)
    args = parser.parse_args()
    if max(args.sizes_mb) * MB / LINE_BYTES > MAX_LINES:
        parser.error(
            f"sizes up to {MAX_LINES * LINE_BYTES / MB:g} MB ({MAX_LINES} lines, one batch of every type)"
        )
    result = run(args)
    print(f"\n{'type':10} {'MB/s':>7} {'threshold (this run)':>22} {'threshold (shipped)':>21}")
    goals = []
    for provider, row in result["types"].items():
        print(
            f"{provider:10} {row['mb_per_second']:7.2f} {row['threshold_from_run'] / MB:19.1f} MB"
            f" {row['threshold_shipped'] / MB:18.1f} MB"
        )
        goals.append(
            Goal(
                f"{provider}_shipped_threshold_mb",
                row["threshold_shipped"] / MB,
                row["threshold_from_run"] / MB,
                "MB",
            )
        )
    if args.json:
        write_json(args.json, result)
    return verdict(goals, report_only=args.report_only)


if __name__ == "__main__":
    raise SystemExit(main())
