"""Load and consistency: concurrent tenants creating, reading, listing and cancelling at once.

    .venv/bin/python bench/load.py                           # 16 clients for 60 s against `make serve`
    .venv/bin/python bench/load.py --seconds 3 --clients 2   # a smoke run (tests/unit/test_bench_load.py)
    .venv/bin/python bench/load.py --report-only --json bench/results/load.json

Starts `python -m devserver` (what `make serve` runs: gateway, provider simulator and moto in
one process) as a subprocess, makes two virtual keys with /key/generate, then runs `--clients`
threads for `--seconds`, client i speaking with key i % 2. Each picks its next operation at
random: files.create (a small JSONL), batches.create (on one of its files), files.retrieve and
batches.retrieve (of its own objects), files.list and batches.list, batches.cancel (of one of
its running batches), and a retrieve of the OTHER key's object, which must answer 404.

Afterwards the consistency check, per key: every file and batch the key created is listed
(all pages) exactly once, no list holds an object of the other key, and every batch whose
cancel was accepted ends `cancelled` (polled until terminal). The report gives requests,
errors and p50/p95 per operation. Exit status 1 when the check fails or any request got a 5xx
(or no answer); `--report-only` always exits 0.

A 409 on a cancel (the batch finished first) is an expected answer and counted apart.
Batch phases last `--phase-seconds` (2 s), so batches finish and get cancelled during the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from bench._processes import Process, clean_environment, free_port, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import milliseconds, percentile  # noqa: E402
from bench.overhead import parse_banner  # noqa: E402

MASTER_KEY = "sk-bench-load"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
JSONL = b"".join(
    json.dumps(
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
    ).encode()
    + b"\n"
    for i in range(2)
)
# Operation -> weight of its draw.
MIX: dict[str, int] = {
    "files.create": 3,
    "batches.create": 3,
    "files.retrieve": 3,
    "batches.retrieve": 3,
    "files.list": 2,
    "batches.list": 2,
    "batches.cancel": 2,
    "foreign.retrieve": 1,
}


@dataclass
class Tenant:
    """One virtual key and what its clients made with it."""

    name: str
    key: str
    files: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    cancelled: set[str] = field(default_factory=set)  # cancel answered 200
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class Outcome:
    operation: str
    seconds: float
    status: int  # 0: no answer (connection error, timeout)
    expected: bool  # the answer this operation may give
    detail: str = ""  # what an unexpected answer said (its error message, or the exception)


@dataclass
class Recorder:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


# -- the clients --------------------------------------------------------------------------


class Client:
    def __init__(self, base: str, tenant: Tenant, other: Tenant, recorder: Recorder, seed: int) -> None:
        self.http = httpx.Client(
            base_url=base + "/v1", headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60
        )
        self.tenant, self.other, self.recorder = tenant, other, recorder
        self.random = random.Random(seed)

    def run(self, deadline: float) -> None:
        operations, weights = list(MIX), list(MIX.values())
        try:
            while time.monotonic() < deadline:
                operation = self.random.choices(operations, weights)[0]
                getattr(self, "op_" + operation.replace(".", "_"))()
        finally:
            self.http.close()

    def _call(
        self, operation: str, method: str, path: str, ok: Iterable[int] = (200,), **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self.recorder.add(Outcome(operation, time.perf_counter() - started, 0, False, repr(error)))
            return None
        elapsed = time.perf_counter() - started
        expected = response.status_code in ok
        detail = "" if expected else f"{method} {path}: {response.text[:300]}"
        self.recorder.add(Outcome(operation, elapsed, response.status_code, expected, detail))
        return response

    def _pick(self, ids: list[str]) -> str | None:
        with self.tenant.lock:
            return self.random.choice(ids) if ids else None

    def op_files_create(self) -> None:
        files = {"file": ("load.jsonl", JSONL, "application/jsonl")}
        response = self._call("files.create", "POST", "/files", files=files, data={"purpose": "batch"})
        if response is not None and response.status_code == 200:
            with self.tenant.lock:
                self.tenant.files.append(response.json()["id"])

    def op_batches_create(self) -> None:
        file_id = self._pick(self.tenant.files)
        if file_id is None:
            return self.op_files_create()
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        response = self._call("batches.create", "POST", "/batches", json=body)
        if response is not None and response.status_code == 200:
            with self.tenant.lock:
                self.tenant.batches.append(response.json()["id"])
        return None

    def op_files_retrieve(self) -> None:
        file_id = self._pick(self.tenant.files)
        if file_id is not None:
            self._call("files.retrieve", "GET", f"/files/{file_id}")

    def op_batches_retrieve(self) -> None:
        batch_id = self._pick(self.tenant.batches)
        if batch_id is not None:
            self._call("batches.retrieve", "GET", f"/batches/{batch_id}")

    def op_files_list(self) -> None:
        self._call("files.list", "GET", "/files", params={"limit": 20})

    def op_batches_list(self) -> None:
        self._call("batches.list", "GET", "/batches", params={"limit": 20})

    def op_batches_cancel(self) -> None:
        with self.tenant.lock:
            running = [b for b in self.tenant.batches if b not in self.tenant.cancelled]
            batch_id = self.random.choice(running[-8:]) if running else None  # the newest run longest
        if batch_id is None:
            return
        # 409: it finished (or is being cancelled) before the cancel landed.
        response = self._call("batches.cancel", "POST", f"/batches/{batch_id}/cancel", ok=(200, 409))
        if response is not None and response.status_code == 200:
            with self.tenant.lock:
                self.tenant.cancelled.add(batch_id)

    def op_foreign_retrieve(self) -> None:
        with self.other.lock:
            choices = [("files", f) for f in self.other.files] + [("batches", b) for b in self.other.batches]
            kind, object_id = self.random.choice(choices) if choices else (None, None)
        if object_id is not None:
            self._call("foreign.retrieve", "GET", f"/{kind}/{object_id}", ok=(404,))


# -- the consistency check -------------------------------------------------------------------


def list_all(http: httpx.Client, kind: str) -> list[str]:
    """Every id of a list, following `after` through all pages."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = http.get(f"/{kind}", params=params)
        response.raise_for_status()
        page = response.json()
        ids.extend(item["id"] for item in page["data"])
        if not page.get("has_more") or not page["data"]:
            return ids
        params["after"] = page["data"][-1]["id"]


def final_statuses(http: httpx.Client, batch_ids: Iterable[str], timeout: float) -> dict[str, str]:
    """Each batch's status once terminal (or the last one seen at the timeout)."""
    pending, statuses = set(batch_ids), {}
    deadline = time.monotonic() + timeout
    while pending:
        for batch_id in sorted(pending):
            status = http.get(f"/batches/{batch_id}").json().get("status", "?")
            statuses[batch_id] = status
            if status in TERMINAL:
                pending.discard(batch_id)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return statuses


def consistency_problems(
    name: str,
    created: Mapping[str, list[str]],
    listed: Mapping[str, list[str]],
    foreign: set[str],
    cancelled: Mapping[str, str],
) -> list[str]:
    """What is wrong with one tenant's lists. `created`/`listed`: kind -> ids; `foreign`: the
    other tenant's ids; `cancelled`: final status of each batch whose cancel was accepted."""
    problems = []
    for kind, ids in created.items():
        counts: dict[str, int] = defaultdict(int)
        for object_id in listed.get(kind, []):
            counts[object_id] += 1
        for object_id in ids:
            if counts.get(object_id, 0) != 1:
                problems.append(f"{name}: {kind} {object_id} listed {counts.get(object_id, 0)} times")
        for object_id in sorted(set(counts) & foreign):
            problems.append(f"{name}: {kind} list holds {object_id} of the other key")
    for batch_id, status in sorted(cancelled.items()):
        if status != "cancelled":
            problems.append(f"{name}: batch {batch_id} was cancelled but ended {status}")
    return problems


def check(base: str, tenants: list[Tenant], poll_timeout: float) -> list[str]:
    problems: list[str] = []
    for tenant, other in ((tenants[0], tenants[1]), (tenants[1], tenants[0])):
        with httpx.Client(
            base_url=base + "/v1", headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60
        ) as http:
            cancelled = final_statuses(http, tenant.cancelled, poll_timeout)
            listed = {"files": list_all(http, "files"), "batches": list_all(http, "batches")}
        created = {"files": tenant.files, "batches": tenant.batches}
        problems += consistency_problems(
            tenant.name, created, listed, set(other.files) | set(other.batches), cancelled
        )
    return problems


# -- running it --------------------------------------------------------------------------------


def start_gateway(logdir: Path, phase_seconds: float) -> tuple[Process, str]:
    env = clean_environment()
    env.update(GATEWAY_MASTER_KEY=MASTER_KEY, SIM_BATCH_PHASE_SECONDS=str(phase_seconds), LOG_LEVEL="WARNING")
    process = spawn("gateway", ["-m", "devserver"], {**env, "PORT": str(free_port())}, logdir)
    wait_until(process, lambda: "Ctrl-C to stop" in process.output())
    urls = parse_banner(process.output())
    if "gateway" not in urls:
        raise RuntimeError(f"no gateway URL in the banner:\n{process.output()}")
    return process, urls["gateway"].removesuffix("/v1")


def make_tenants(base: str) -> list[Tenant]:
    tenants = []
    for name in ("tenant-a", "tenant-b"):
        response = httpx.post(
            base + "/key/generate",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
            json={"key_alias": f"load-{name}-{int(time.time())}"},
            timeout=30,
        )
        response.raise_for_status()
        tenants.append(Tenant(name, response.json()["key"]))
    return tenants


def summarize(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    by_operation: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_operation[outcome.operation].append(outcome)
    operations = {}
    for operation in MIX:
        done = by_operation.get(operation, [])
        timings = [milliseconds(o.seconds) for o in done]
        operations[operation] = {
            "requests": len(done),
            "errors": sum(1 for o in done if not o.expected),
            "5xx": sum(1 for o in done if o.status >= 500 or o.status == 0),
            "expected_4xx": sum(1 for o in done if o.expected and o.status >= 400),
            "p50_ms": percentile(timings, 50) if timings else None,
            "p95_ms": percentile(timings, 95) if timings else None,
        }
    return {
        "requests": len(outcomes),
        "requests_per_second": len(outcomes) / seconds if seconds else 0.0,
        "errors": sum(o["errors"] for o in operations.values()),
        "5xx": sum(o["5xx"] for o in operations.values()),
        "operations": operations,
        "unexpected": [
            {"operation": o.operation, "status": o.status, "detail": o.detail}
            for o in outcomes
            if not o.expected
        ][:20],
    }


def print_report(report: dict[str, Any]) -> None:
    summary = report["summary"]
    print(
        f"\n{report['clients']} clients x {report['seconds']:.0f} s, {summary['requests']} requests "
        f"({summary['requests_per_second']:.1f}/s), {summary['errors']} errors, "
        f"{summary['5xx']} 5xx or no answer"
    )
    print(f"{'operation':<18} {'requests':>8} {'errors':>6} {'4xx ok':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for operation, figures in summary["operations"].items():
        p50 = "-" if figures["p50_ms"] is None else f"{figures['p50_ms']:.1f}"
        p95 = "-" if figures["p95_ms"] is None else f"{figures['p95_ms']:.1f}"
        print(
            f"{operation:<18} {figures['requests']:>8} {figures['errors']:>6} "
            f"{figures['expected_4xx']:>6} {p50:>8} {p95:>8}"
        )
    for answer in summary["unexpected"]:
        print(f"unexpected {answer['operation']} {answer['status']}: {answer['detail']}")
    created = report["created"]
    print(f"created: {created}")
    problems = report["consistency_problems"]
    print("consistency: " + ("ok" if not problems else f"{len(problems)} problems"))
    for problem in problems[:50]:
        print("  " + problem)


def run(
    clients: int, seconds: float, phase_seconds: float, poll_timeout: float, logdir: Path
) -> dict[str, Any]:
    process, base = start_gateway(logdir, phase_seconds)
    try:
        tenants = make_tenants(base)
        recorder = Recorder()
        workers = [
            Client(base, tenants[i % 2], tenants[(i + 1) % 2], recorder, seed=i) for i in range(clients)
        ]
        started = time.monotonic()
        deadline = started + seconds
        threads = [
            threading.Thread(target=worker.run, args=(deadline,), name=f"client-{i}")
            for i, worker in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        problems = check(base, tenants, poll_timeout)
        return {
            "clients": clients,
            "seconds": elapsed,
            "phase_seconds": phase_seconds,
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "summary": summarize(recorder.outcomes, elapsed),
            "created": {
                t.name: {"files": len(t.files), "batches": len(t.batches), "cancelled": len(t.cancelled)}
                for t in tenants
            },
            "consistency_problems": problems,
        }
    finally:
        process.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--phase-seconds", type=float, default=2.0, help="the simulator's batch phase")
    parser.add_argument("--poll-timeout", type=float, default=60.0, help="wait for cancelled batches to end")
    parser.add_argument("--report-only", action="store_true", help="exit 0 whatever the check finds")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    if args.clients < 2:
        parser.error("--clients must be at least 2 (one per key)")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as logdir:
        report = run(args.clients, args.seconds, args.phase_seconds, args.poll_timeout, Path(logdir))
    print_report(report)
    if args.json:
        write_json(args.json, report)
    failed = bool(report["consistency_problems"]) or report["summary"]["5xx"] > 0
    return 0 if args.report_only or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
