"""What the plan of parts costs a small batch: batches.create and batches.retrieve latency, with
the plan engine's decision as shipped against the same gateway with the decision disabled.

    .venv/bin/python bench/plan_overhead.py                  # 5 runs x 40 requests per operation
    .venv/bin/python bench/plan_overhead.py --quick          # a smoke run, a few seconds
    .venv/bin/python bench/plan_overhead.py --runs 7 --json bench/results/plan-overhead.json

Three `python -m devserver` processes (`make serve`, the embedded simulator and moto), started
alike: `current` as shipped, `baseline` with `service.plan.create.plan_for` replaced by "no
plan" before it serves (this file run with `--serve-baseline`), and `control`, the shipped
code again: control / baseline is what two processes of the same work differ by on this
machine (the noise floor). The decision alone is also timed in this process (`plan_for` on a
small file's record, microseconds per call). A batch of three lines fits one
provider batch, so both take the create path every batch took before plans existed; the only
difference is the plan engine's decision (the provider's caps read, the retry default taken,
the figures compared) and the checks of `state.plan` on the way.

Why this baseline and not the commit before the plan engine (`git worktree add`): that commit
is 120+ commits behind, so its figures would carry every other change made since (auth, the
id map, the simulator) and the ratio would not be the plan's. Disabling the decision in the
same code measures exactly what a small batch pays for plans.

Each run starts the three processes afresh and sends, per operation, `--requests` requests to
each server, interleaved (current, baseline, control, rotating who goes first) from one httpx
client, so that noise from the machine's other work
hits all alike; p50 and p90 per server per run, and the ratios current / baseline and
control / baseline per run. The table shows each run and the median over runs. The goal (exit
status 1 when missed, 0 with `--report-only`): the median p50 ratio within `--tolerance`
(default 1.10), or within the control's ratio times it when the noise floor is wider
(unchanged within noise), for both operations. Batches stay `validating` (a batch phase of one hour), so
every request does the same work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._processes import Process, clean_environment, free_port, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median, milliseconds, percentile  # noqa: E402

MASTER_KEY = "sk-bench-plan-overhead"
BATCH_PHASE_SECONDS = 3600.0
# `control` is `current` again, in a process of its own: control / baseline is the noise floor
# (two processes doing the same work differ by that much on this machine).
SERVERS = ("current", "baseline", "control")
OPERATIONS = ("batches.create", "batches.retrieve")
SMALL_JSONL = b"".join(
    json.dumps(
        {
            "custom_id": f"bench-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {n}"}]},
        }
    ).encode()
    + b"\n"
    for n in range(3)
)


def serve_baseline() -> int:
    """`python -m devserver` with the plan decision disabled: every batch one provider batch."""
    from gateway.service.plan import create as plan_create

    plan_create.plan_for = lambda input_file, retry=None: None
    from devserver.__main__ import main

    return main()


class Server:
    def __init__(self, name: str, process: Process, base: str, client: httpx.Client) -> None:
        self.name, self.process, self.base, self.client = name, process, base.rstrip("/"), client
        self.headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        self.file_id = self.batch_id = ""

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, self.base + path, headers=self.headers, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{self.name} {method} {path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    def prepare(self) -> None:
        files = {"file": ("small.jsonl", SMALL_JSONL, "application/jsonl")}
        self.file_id = self.request("POST", "/files", files=files, data={"purpose": "batch"})["id"]
        self.batch_id = self.create()["id"]

    def create(self) -> dict[str, Any]:
        body = {"input_file_id": self.file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        batch = self.request("POST", "/batches", json=body)
        if batch.get("parts") or batch.get("status") != "validating":
            raise RuntimeError(f"{self.name}: the small batch did not take the one-batch path: {batch}")
        return batch

    def operation(self, name: str) -> Callable[[], object]:
        if name == "batches.create":
            return self.create
        return lambda: self.request("GET", f"/batches/{self.batch_id}")


@contextlib.contextmanager
def servers(logdir: Path) -> Iterator[dict[str, Server]]:
    env = clean_environment()
    env["SIM_BATCH_PHASE_SECONDS"] = str(BATCH_PHASE_SECONDS)
    env["GATEWAY_MASTER_KEY"] = MASTER_KEY
    started: dict[str, Server] = {}
    client = httpx.Client(timeout=60)
    try:
        for name in SERVERS:
            port = free_port()
            args = [str(Path(__file__)), "--serve-baseline"] if name == "baseline" else ["-m", "devserver"]
            process = spawn(name, args, {**env, "PORT": str(port), "SIM_PORT": str(free_port())}, logdir)
            started[name] = Server(name, process, f"http://127.0.0.1:{port}/v1", client)
            wait_until(process, lambda process=process: "Ctrl-C to stop" in process.output())  # type: ignore[misc]
        yield started
    finally:
        client.close()
        for server in started.values():
            server.process.stop()


def measure(pair: dict[str, Server], operation: str, requests: int) -> dict[str, list[float]]:
    """Seconds per request for each server, the servers interleaved request by request."""
    samples: dict[str, list[float]] = {name: [] for name in pair}
    calls = {name: server.operation(operation) for name, server in pair.items()}
    for index in range(requests):
        order = SERVERS[index % 3 :] + SERVERS[: index % 3]  # none always first
        for name in order:
            started = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - started)
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for number in range(1, args.runs + 1):
        # fresh processes each run: a process's own luck (its CPU, its moto) is not carried
        # from run to run, so the median over runs compares the code, not three processes
        with tempfile.TemporaryDirectory(prefix="plan-overhead-") as logdir, servers(Path(logdir)) as trio:
            for server in trio.values():
                server.prepare()
            for operation in OPERATIONS:  # warm all (imports, caches, connections)
                measure(trio, operation, args.warmup)
            figures: dict[str, Any] = {"run": number}
            for operation in OPERATIONS:
                samples = measure(trio, operation, args.requests)
                row: dict[str, Any] = {
                    name: {
                        "p50_ms": milliseconds(percentile(values, 50.0)),
                        "p90_ms": milliseconds(percentile(values, 90.0)),
                    }
                    for name, values in samples.items()
                }
                for quantile in ("p50_ms", "p90_ms"):
                    row[f"ratio_{quantile[:3]}"] = row["current"][quantile] / row["baseline"][quantile]
                    row[f"control_{quantile[:3]}"] = row["control"][quantile] / row["baseline"][quantile]
                figures[operation] = row
        runs.append(figures)
        print(_run_line(figures), flush=True)
    summary = {
        operation: {
            f"{name}_{quantile}": median(run_[operation][name][quantile] for run_ in runs)
            for name in SERVERS
            for quantile in ("p50_ms", "p90_ms")
        }
        | {
            f"{kind}_{quantile}": median(run_[operation][f"{kind}_{quantile}"] for run_ in runs)
            for kind in ("ratio", "control")
            for quantile in ("p50", "p90")
        }
        | {
            # the noise: how far the baseline's own p50 moves from run to run
            "baseline_p50_spread": max(r[operation]["baseline"]["p50_ms"] for r in runs)
            / min(r[operation]["baseline"]["p50_ms"] for r in runs)
        }
        for operation in OPERATIONS
    }
    return {
        "plan_decision_us": decision_cost_us(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "runs": args.runs,
        "requests_per_run": args.requests,
        "per_run": runs,
        "median_over_runs": summary,
        "tolerance": args.tolerance,
    }


def decision_cost_us(calls: int = 5000) -> float:
    """The plan decision alone, in this process: `plan_for` on a small file's record (the
    provider's caps read, the figures compared), microseconds per call."""
    from gateway.service.batch_input_check import BATCH_CHECK_STATE
    from gateway.service.plan import create as plan_create
    from gateway.storage.id_map import ObjectRecord

    figures = {"lines": 3, "bytes": len(SMALL_JSONL), "input_token_estimate": 60, "model": "gpt-4o-mini"}
    small = ObjectRecord(
        id="file-bench",
        kind="file",
        owner="master",
        provider="openai",
        created_at=0,
        object={"bytes": len(SMALL_JSONL)},
        upstream_id="file-upstream",
        state={BATCH_CHECK_STATE: figures},
    )
    assert plan_create.plan_for(small) is None
    started = time.perf_counter()
    for _ in range(calls):
        plan_create.plan_for(small)
    return (time.perf_counter() - started) / calls * 1e6


def _run_line(figures: dict[str, Any]) -> str:
    parts = [f"run {figures['run']}"]
    for operation in OPERATIONS:
        row = figures[operation]
        parts.append(
            f"{operation}: p50 {row['current']['p50_ms']:.2f}/{row['baseline']['p50_ms']:.2f} ms "
            f"(x{row['ratio_p50']:.3f}, control x{row['control_p50']:.3f}), "
            f"p90 {row['current']['p90_ms']:.2f}/{row['baseline']['p90_ms']:.2f} ms (x{row['ratio_p90']:.3f})"
        )
    return "  ".join(parts)


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nmedian over {report['runs']} runs of {report['requests_per_run']} requests (current / baseline):"
    )
    print(f"plan decision alone (in process): {report['plan_decision_us']:.1f} us per create")
    header = f"{'operation':<18}{'p50 ms':>18}{'ratio':>8}{'p90 ms':>18}{'ratio':>8}{'control p50':>12}"
    print(header + f"{'baseline spread':>17}")
    for operation, row in report["median_over_runs"].items():
        print(
            f"{operation:<18}{row['current_p50_ms']:>8.2f} / {row['baseline_p50_ms']:<7.2f}"
            f"{row['ratio_p50']:>8.3f}"
            f"{row['current_p90_ms']:>8.2f} / {row['baseline_p90_ms']:<7.2f}{row['ratio_p90']:>8.3f}"
            f"{row['control_p50']:>12.3f}"
            f"{row['baseline_p50_spread']:>16.3f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="requests per operation per server per run")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=1.10, help="largest median p50 ratio that passes")
    parser.add_argument("--quick", action="store_true", help="2 runs of 10 requests: a smoke run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    add_report_only_flag(parser)
    args = parser.parse_args()
    if args.serve_baseline:
        return serve_baseline()
    if args.quick:
        args.runs, args.requests, args.warmup = 2, 10, 3
    report = run(args)
    print_table(report)
    if args.json:
        write_json(args.json, report)
    # unchanged within noise: the ratio within the tolerance, or within what two processes of
    # the same code differ by in this run (the control's ratio), whichever is wider
    goals = [
        Goal(
            f"{operation} p50 current/baseline",
            row["ratio_p50"],
            max(args.tolerance, row["control_p50"] * args.tolerance),
            "x",
        )
        for operation, row in report["median_over_runs"].items()
    ]
    return verdict(goals, report_only=args.report_only)


if __name__ == "__main__":
    sys.exit(main())
