"""What a virtual key costs: added latency per request, and key lookups per second.

    .venv/bin/python bench/auth.py                 # ~40 s: 5 runs x 300 requests per key kind
    .venv/bin/python bench/auth.py --quick         # a smoke run, a few seconds
    .venv/bin/python bench/auth.py --json out.json # also write the figures as JSON ("-": stdout)

In-process, at the handler level: the real `handlers.files_list` function, invoked with API
Gateway proxy events (devserver.events) against an embedded moto server, as one warm Lambda
function would be. Each run sends N requests with the master key and N with a virtual key,
interleaved (so drift hits both alike), and the added latency is p50(virtual) - p50(master)
of the same run; the table shows the median over runs. The goal: <= 1 ms p50, warm; the
bench exits 1 when it is missed (`--report-only`: exit 0 whatever the figures).

Lookups per second: `gateway.http.auth.authenticate` alone with a virtual key, warm (the key in
the function's 60 s cache) and cold (cache cleared before each lookup, so each is one
DynamoDB GetItem; against embedded moto here, not DynamoDB's own latency).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "functions")]

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._results import write_json  # noqa: E402

GOAL_ADDED_P50_MS = 1.0
MASTER_KEY = "sk-bench-master"


@dataclass(frozen=True)
class Settings:
    runs: int
    requests: int  # per key kind per run
    lookup_seconds: float  # per lookups/second measurement
    warmup: int


DEFAULT = Settings(runs=5, requests=300, lookup_seconds=2.0, warmup=50)
QUICK = Settings(runs=2, requests=40, lookup_seconds=0.2, warmup=10)


@dataclass(frozen=True)
class RunResult:
    master_p50_ms: float
    master_p95_ms: float
    virtual_p50_ms: float
    virtual_p95_ms: float
    cold_virtual_p50_ms: float
    added_p50_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Bench:
    """One warm files_list function and its keys."""

    def __init__(self) -> None:
        from gateway.http import auth
        from handlers import files_list, keys_generate

        from devserver.events import lambda_context, proxy_event

        self._auth = auth
        self._event = proxy_event
        self._context = lambda_context
        self._handler = files_list.handler
        generated = self._invoke(
            keys_generate.handler,
            "keys_generate",
            proxy_event(
                "POST",
                "/key/generate",
                headers={"Authorization": f"Bearer {MASTER_KEY}"},
                json={"key_alias": "bench", "providers": ["openai"]},
            ),
        )
        self.virtual_key = str(generated["key"])

    def _invoke(self, handler: Callable[..., Any], name: str, event: dict[str, Any]) -> dict[str, Any]:
        result = handler(event, self._context(name))
        if result["statusCode"] != 200:
            raise RuntimeError(f"{name} answered {result['statusCode']}: {result.get('body')}")
        return dict(json.loads(result["body"]))

    def request(self, key: str) -> float:
        """One GET /v1/files with `key`, in seconds (event building excluded)."""
        event = self._event("GET", "/v1/files", headers={"Authorization": f"Bearer {key}"})
        context = self._context("files_list")
        started = time.perf_counter()
        result = self._handler(event, context)  # type: ignore[arg-type]  # a stand-in context
        elapsed = time.perf_counter() - started
        if result["statusCode"] != 200:
            raise RuntimeError(f"files_list answered {result['statusCode']}: {result.get('body')}")
        return elapsed

    def run(self, settings: Settings) -> RunResult:
        master: list[float] = []
        virtual: list[float] = []
        for i in range(settings.requests):
            if i % 2:
                master.append(self.request(MASTER_KEY))
                virtual.append(self.request(self.virtual_key))
            else:
                virtual.append(self.request(self.virtual_key))
                master.append(self.request(MASTER_KEY))
        cold: list[float] = []
        for _ in range(max(5, settings.requests // 10)):
            self._auth.clear_key_cache()
            cold.append(self.request(self.virtual_key))
        ms = 1000.0
        return RunResult(
            master_p50_ms=percentile(master, 0.5) * ms,
            master_p95_ms=percentile(master, 0.95) * ms,
            virtual_p50_ms=percentile(virtual, 0.5) * ms,
            virtual_p95_ms=percentile(virtual, 0.95) * ms,
            cold_virtual_p50_ms=percentile(cold, 0.5) * ms,
            added_p50_ms=(percentile(virtual, 0.5) - percentile(master, 0.5)) * ms,
        )

    def lookups_per_second(self, seconds: float, *, cold: bool, key: str | None = None) -> float:
        headers = {"Authorization": f"Bearer {key or self.virtual_key}"}
        authenticate, clear = self._auth.authenticate, self._auth.clear_key_cache
        authenticate(headers)
        count = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for _ in range(10):
                if cold:
                    clear()
                authenticate(headers)
            count += 10
        return count / (time.perf_counter() - started)


def measure(settings: Settings) -> dict[str, Any]:
    from devserver import start_gateway

    os.environ.setdefault("LOG_LEVEL", "WARNING")
    gateway = start_gateway(master_key=MASTER_KEY, provider_env={}, simulator_phase_seconds=0.3)
    try:
        bench = Bench()
        for _ in range(settings.warmup):
            bench.request(MASTER_KEY)
            bench.request(bench.virtual_key)
        runs = [bench.run(settings) for _ in range(settings.runs)]
        master_rate = bench.lookups_per_second(settings.lookup_seconds, cold=False, key=MASTER_KEY)
        warm_rate = bench.lookups_per_second(settings.lookup_seconds, cold=False)
        cold_rate = bench.lookups_per_second(settings.lookup_seconds, cold=True)
    finally:
        gateway.stop()

    def median(name: str) -> float:
        return statistics.median(getattr(run, name) for run in runs)

    summary = {name: round(median(name), 3) for name in RunResult.__dataclass_fields__}
    return {
        "settings": asdict(settings),
        "handler": "files_list",
        "summary": summary,
        "runs": [{k: round(v, 3) for k, v in asdict(run).items()} for run in runs],
        "auth_only_us": {
            "master": round(1e6 / master_rate, 1),
            "virtual_warm": round(1e6 / warm_rate, 1),
            "added": round(1e6 / warm_rate - 1e6 / master_rate, 1),
        },
        "warm_lookups_per_second": round(warm_rate),
        "cold_lookups_per_second": round(cold_rate),
        "goal_added_p50_ms": GOAL_ADDED_P50_MS,
        "goal_met": summary["added_p50_ms"] <= GOAL_ADDED_P50_MS,
    }


def table(result: dict[str, Any]) -> str:
    s, settings = result["summary"], result["settings"]
    auth = result["auth_only_us"]
    per_run = ", ".join(f"{run['added_p50_ms']:.3f}" for run in result["runs"])
    lines = [
        f"files_list handler, in-process against embedded moto: {settings['runs']} runs x "
        f"{settings['requests']} requests per key kind (median over runs)",
        "",
        f"{'key':<26}{'p50 ms':>10}{'p95 ms':>10}",
        f"{'master':<26}{s['master_p50_ms']:>10.3f}{s['master_p95_ms']:>10.3f}",
        f"{'virtual, warm cache':<26}{s['virtual_p50_ms']:>10.3f}{s['virtual_p95_ms']:>10.3f}",
        f"{'virtual, cold cache':<26}{s['cold_virtual_p50_ms']:>10.3f}{'':>10}",
        "",
        f"added latency p50 (virtual - master, same run): {s['added_p50_ms']:.3f} ms "
        f"(per run: {per_run}); "
        f"goal <= {result['goal_added_p50_ms']} ms: {'met' if result['goal_met'] else 'NOT met'}",
        f"authenticate() alone: master {auth['master']} us, virtual warm {auth['virtual_warm']} us "
        f"(added {auth['added']} us)",
        f"key lookups/s in one function: warm {result['warm_lookups_per_second']:,}, "
        f"cold (one DynamoDB read each) {result['cold_lookups_per_second']:,}",
    ]
    return "\n".join(lines)


def goals(result: dict[str, Any]) -> list[Goal]:
    return [Goal("virtual - master key p50", result["summary"]["added_p50_ms"], GOAL_ADDED_P50_MS, "ms")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--runs", type=int, help="runs (default 5)")
    parser.add_argument("--requests", type=int, help="requests per key kind per run (default 300)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON ('-': standard output)")
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    if args.runs or args.requests:
        settings = Settings(
            runs=args.runs or settings.runs,
            requests=args.requests or settings.requests,
            lookup_seconds=settings.lookup_seconds,
            warmup=settings.warmup,
        )
    result = measure(settings)
    print(table(result), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        write_json(Path(args.json), result)
    return verdict(goals(result), report_only=args.report_only, out=sys.stderr if args.json == "-" else None)


if __name__ == "__main__":
    sys.exit(main())
