"""Latency the local gateway adds over calling the provider simulator directly.

    .venv/bin/python bench/overhead.py                       # make serve, 5 rounds x 20 requests, ~1 minute
    .venv/bin/python bench/overhead.py --quick               # a few seconds, smoke run
    .venv/bin/python bench/overhead.py --topology split --json bench/results/overhead-split.json

For each operation (files.retrieve, files.list, batches.retrieve, batches.list, files.create
of a small JSONL, batches.create) one httpx client sends N requests to the gateway and N to
the simulator's OpenAI API, interleaved (gateway, direct, gateway, direct...) so that noise
from other work on the machine hits both alike. Overhead = gateway - direct, for p50 and
p95 of each round; the table shows the median over R rounds.

The share spent in the AWS endpoint (moto) is measured apart: after each gateway/direct
pair the bench replays the DynamoDB calls the handler makes for that operation, with the
gateway's own `gateway.storage.id_map.IdMap` (same boto3 client code, same marshalling)
against the same moto endpoint the gateway uses. The counts, with the master key and warm
functions (the master and provider keys are cached 300 s by Powertools, so Secrets Manager
is not called per request; no S3 on these operations):

    files.retrieve    GetItem (the object is written back only when the provider's changed)
    files.list        Query projecting only `object` (no upstream call: lists come from DynamoDB)
    batches.retrieve  GetItem (as files.retrieve; a registered output file costs nothing more)
    batches.list      Query + one UpdateItem per listed unfinished batch whose object changed
                      (none here); the gateway also refreshes the unfinished batches with
                      one upstream list call (limit 100), the same call the direct side makes
    files.create      BatchWriteItem (object + reverse id)
    batches.create    GetItem (input file) + BatchWriteItem

The simulator runs with a batch phase of one hour, so batches stay `validating` and the
calls above are the same in every round.

Why subprocesses: the gateway runs as `python -m devserver` in its own process (that is
what `make serve` is), so the client's timing loop and the replay do not compete with the
server for one GIL; the client measures what any other client would see.

Topologies (`--topology`):
- `serve` (default): exactly `make serve` with no provider keys: one process with the
  gateway, the embedded simulator and the embedded moto server. Their URLs are read from
  the start banner. This is the figure the goal (p50 <= 10 ms) is about.

The goal the exit status checks (1 when missed; `--report-only` exits 0): the gateway's own
share of the p50 overhead (overhead - moto's share) <= 10 ms for every operation. The whole
overhead is printed against 10 ms too but not checked: moto's share is the local emulator's
(it scans the whole table on every Query, 10-28 ms on the lists), which real DynamoDB is not.
- `split`: the simulator (`python -m devserver.simulator`), moto (`python -m moto.server`)
  and the gateway are three processes of their own; the gateway is given OPENAI_API_KEY /
  OPENAI_API_BASE / AZURE_* / AWS_ENDPOINT_URL pointing at them, as it would be given real
  providers and LocalStack. Closer to AWS, where upstream and DynamoDB are other machines.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._processes import Process, clean_environment, free_port, http_ready, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median, milliseconds, percentile  # noqa: E402

MASTER_KEY = "sk-bench-overhead"
SIM_OPENAI_KEY = "sim-openai-key"  # devserver.server.SIM_OPENAI_KEY
SIM_AZURE_KEY = "sim-azure-key"
AZURE_API_VERSION = "2025-04-01-preview"
BATCH_PHASE_SECONDS = 3600.0  # batches stay "validating": the same work in every round
SMALL_JSONL = (
    json.dumps(
        {
            "custom_id": "bench-1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]},
        }
    )
    + "\n"
).encode()

OPERATIONS: tuple[str, ...] = (
    "files.retrieve",
    "files.list",
    "batches.retrieve",
    "batches.list",
    "files.create",
    "batches.create",
)


def aws_calls(operation: str, list_limit: int) -> str:
    """The DynamoDB calls the gateway makes for `operation` (see the module docstring)."""
    return {
        "files.retrieve": "GetItem",
        "files.list": "Query (object only)",
        "batches.retrieve": "GetItem",
        "batches.list": f"Query + 0/{list_limit} UpdateItem",
        "files.create": "BatchWriteItem",
        "batches.create": "GetItem + BatchWriteItem",
    }[operation]


# -- processes ---------------------------------------------------------------------------


@dataclass
class Endpoints:
    gateway: str  # the gateway's OpenAI base URL (…/v1)
    simulator: str  # the simulator's OpenAI base URL (…/v1)
    aws: str  # the DynamoDB endpoint the gateway uses


_BANNER_PATTERNS = {
    "gateway": re.compile(r"OpenAI SDK base_url\s+(\S+)"),
    "simulator": re.compile(r"Provider simulator\s+(\S+)"),
    "openai": re.compile(r"Provider openai\s+\S+\s+(\S+)"),
    "aws": re.compile(r"AWS endpoint\s+(\S+)"),
}


def parse_banner(text: str) -> dict[str, str]:
    """URLs from `python -m devserver`'s start banner: gateway, simulator, openai, aws."""
    found: dict[str, str] = {}
    for name, pattern in _BANNER_PATTERNS.items():
        match = pattern.search(text)
        if match:
            found[name] = match.group(1)
    return found


@dataclass
class Cluster:
    endpoints: Endpoints
    processes: list[Process] = field(default_factory=list)


def _base_env() -> dict[str, str]:
    env = clean_environment()
    env["SIM_BATCH_PHASE_SECONDS"] = str(BATCH_PHASE_SECONDS)
    env["GATEWAY_MASTER_KEY"] = MASTER_KEY
    return env


def _start_gateway(env: Mapping[str, str], logdir: Path) -> tuple[Process, dict[str, str]]:
    port = free_port()
    process = spawn("gateway", ["-m", "devserver"], {**env, "PORT": str(port)}, logdir)
    wait_until(process, lambda: "Ctrl-C to stop" in process.output())
    return process, parse_banner(process.output())


@contextlib.contextmanager
def start_cluster(topology: str, logdir: Path) -> Iterator[Cluster]:
    """Start the processes of `topology` and yield their endpoints; stop them on exit."""
    env = _base_env()
    cluster = Cluster(Endpoints("", "", ""))
    try:
        if topology == "serve":
            gateway, urls = _start_gateway(env, logdir)
            cluster.processes.append(gateway)
            missing = {"gateway", "simulator", "aws"} - urls.keys()
            if missing:
                raise RuntimeError(f"banner lacks {sorted(missing)}:\n{gateway.output()}")
            cluster.endpoints = Endpoints(urls["gateway"], urls["simulator"] + "/v1", urls["aws"])
        elif topology == "split":
            sim_port, moto_port = free_port(), free_port()
            simulator = spawn(
                "simulator",
                [
                    *("-m", "devserver.simulator", "--port", str(sim_port)),
                    *("--batch-phase-seconds", str(BATCH_PHASE_SECONDS)),
                ],
                env,
                logdir,
            )
            cluster.processes.append(simulator)
            moto = spawn("moto", ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], env, logdir)
            cluster.processes.append(moto)
            sim_url, moto_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{moto_port}"
            wait_until(simulator, http_ready(sim_url + "/v1/files"))
            wait_until(moto, http_ready(moto_url + "/moto-api/"))
            gateway_env = {
                **env,
                "OPENAI_API_KEY": SIM_OPENAI_KEY,
                "OPENAI_API_BASE": sim_url + "/v1",
                "AZURE_API_KEY": SIM_AZURE_KEY,
                "AZURE_API_BASE": sim_url,
                "AZURE_API_VERSION": AZURE_API_VERSION,
                "AWS_ENDPOINT_URL": moto_url,
            }
            gateway, urls = _start_gateway(gateway_env, logdir)
            cluster.processes.append(gateway)
            cluster.endpoints = Endpoints(urls["gateway"], sim_url + "/v1", moto_url)
        else:
            raise ValueError(f"unknown topology {topology!r}")
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            process.stop()


# -- the operations ----------------------------------------------------------------------


class Target:
    """One OpenAI-style API (the gateway or the simulator) behind the shared client."""

    def __init__(self, client: httpx.Client, base: str, key: str) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}"}
        self.file_id = ""
        self.batch_id = ""

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, self.base + path, headers=self.headers, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {self.base}{path}: {response.status_code} {response.text[:500]}")
        return cast(dict[str, Any], response.json())

    def create_file(self) -> dict[str, Any]:
        files = {"file": ("bench.jsonl", SMALL_JSONL, "application/jsonl")}
        return self.request("POST", "/files", files=files, data={"purpose": "batch"})

    def create_batch(self) -> dict[str, Any]:
        body = {"input_file_id": self.file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        return self.request("POST", "/batches", json=body)

    def operation(self, name: str, list_limit: int) -> Callable[[], object]:
        calls: dict[str, Callable[[], object]] = {
            "files.retrieve": lambda: self.request("GET", f"/files/{self.file_id}"),
            "files.list": lambda: self.request("GET", "/files", params={"limit": list_limit}),
            "batches.retrieve": lambda: self.request("GET", f"/batches/{self.batch_id}"),
            "batches.list": lambda: self.request("GET", "/batches", params={"limit": list_limit}),
            "files.create": self.create_file,
            "batches.create": self.create_batch,
        }
        return calls[name]


class MotoReplay:
    """The gateway's DynamoDB calls for each operation, made with the gateway's own IdMap."""

    def __init__(self, endpoint: str, list_limit: int) -> None:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        from gateway.storage.id_map import IdMap

        self.id_map = IdMap()
        self.list_limit = list_limit
        self.file_id = ""
        self.batch_id = ""

    def operation(self, name: str) -> Callable[[], float]:
        """A callable that makes the calls and returns the seconds spent in them."""
        from gateway.models.batches import TERMINAL_BATCH_STATUSES
        from gateway.storage.id_map import Kind, PageQuery

        id_map = self.id_map

        def timed(calls: Callable[[], object]) -> float:
            started = time.perf_counter()
            calls()
            return time.perf_counter() - started

        def get_and_save(object_id: str) -> Callable[[], float]:
            def run() -> float:
                def calls() -> None:
                    record = id_map.get(object_id)
                    assert record is not None, object_id
                    id_map.save_if_changed(record)  # unchanged: no call, as in the gateway

                return timed(calls)

            return run

        def page(kind: Kind) -> object:
            if kind == "file":
                return id_map.page_objects(PageQuery(kind=kind, limit=self.list_limit))
            records, _ = id_map.page(PageQuery(kind=kind, limit=self.list_limit))
            for record in records:
                if record.status not in TERMINAL_BATCH_STATUSES:
                    id_map.save_if_changed(record)
            return records

        def put_copy(source_id: str, read_input: bool) -> Callable[[], float]:
            template = id_map.get(source_id)
            assert template is not None, source_id

            def run() -> float:
                # kind "bench": written like the real item but invisible to the gateway's lists.
                unique = uuid.uuid4().hex
                record = dataclasses.replace(
                    template, id=f"bench-{unique}", kind=cast(Kind, "bench"), upstream_id=f"bench-{unique}"
                )

                def calls() -> None:
                    if read_input:
                        id_map.get(self.file_id)
                    id_map.put(record)

                spent = timed(calls)
                id_map.delete(record)  # untimed: keeps the table the size the gateway sees
                return spent

            return run

        replays: dict[str, Callable[[], float]] = {
            "files.retrieve": get_and_save(self.file_id),
            "files.list": lambda: timed(lambda: page("file")),
            "batches.retrieve": get_and_save(self.batch_id),
            "batches.list": lambda: timed(lambda: page("batch")),
            "files.create": put_copy(self.file_id, read_input=False),
            "batches.create": put_copy(self.batch_id, read_input=True),
        }
        return replays[name]


# -- measuring ---------------------------------------------------------------------------


@dataclass
class RoundSamples:
    gateway: list[float] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    moto: list[float] = field(default_factory=list)


def measure_round(
    gateway: Callable[[], object], direct: Callable[[], object], moto: Callable[[], float], requests: int
) -> RoundSamples:
    samples = RoundSamples()
    for _ in range(requests):
        started = time.perf_counter()
        gateway()
        samples.gateway.append(time.perf_counter() - started)
        started = time.perf_counter()
        direct()
        samples.direct.append(time.perf_counter() - started)
        samples.moto.append(moto())
    return samples


def round_figures(samples: RoundSamples) -> dict[str, float]:
    """One round's p50/p95 in milliseconds: gateway, direct, overhead, moto."""
    figures: dict[str, float] = {}
    for q, tag in ((50.0, "p50"), (95.0, "p95")):
        gateway = milliseconds(percentile(samples.gateway, q))
        direct = milliseconds(percentile(samples.direct, q))
        figures[f"gateway_{tag}"] = gateway
        figures[f"direct_{tag}"] = direct
        figures[f"overhead_{tag}"] = gateway - direct
        figures[f"moto_{tag}"] = milliseconds(percentile(samples.moto, q))
    return figures


def combine_rounds(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The median over rounds of every per-round figure."""
    return {name: median(r[name] for r in rounds) for name in rounds[0]}


def prepare(gateway: Target, direct: Target, replay: MotoReplay, list_limit: int) -> None:
    """Objects the operations work on, full list pages, and warm functions and caches."""
    for target in (gateway, direct):
        target.file_id = target.create_file()["id"]
        target.batch_id = target.create_batch()["id"]
        for _ in range(list_limit):
            target.create_file()
            target.create_batch()
    replay.file_id, replay.batch_id = gateway.file_id, gateway.batch_id
    for name in OPERATIONS:  # the first call of each route imports its handler (a cold start)
        for _ in range(3):
            gateway.operation(name, list_limit)()
            direct.operation(name, list_limit)()
            replay.operation(name)()


def run(
    *, topology: str, rounds: int, requests: int, list_limit: int, logdir: Path, progress: bool = True
) -> dict[str, Any]:
    started = time.time()
    with start_cluster(topology, logdir) as cluster, httpx.Client(timeout=60.0) as client:
        endpoints = cluster.endpoints
        gateway = Target(client, endpoints.gateway, MASTER_KEY)
        direct = Target(client, endpoints.simulator, SIM_OPENAI_KEY)
        replay = MotoReplay(endpoints.aws, list_limit)
        prepare(gateway, direct, replay, list_limit)
        per_op: dict[str, list[dict[str, float]]] = {name: [] for name in OPERATIONS}
        for index in range(rounds):
            for name in OPERATIONS:
                samples = measure_round(
                    gateway.operation(name, list_limit),
                    direct.operation(name, list_limit),
                    replay.operation(name),
                    requests,
                )
                per_op[name].append(round_figures(samples))
            if progress:
                print(f"  round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    results = {
        name: {
            **combine_rounds(figures),
            "aws_calls": aws_calls(name, list_limit),
            "rounds": figures,
        }
        for name, figures in per_op.items()
    }
    return {
        "bench": "overhead",
        "topology": topology,
        "rounds": rounds,
        "requests_per_round": requests,
        "list_limit": list_limit,
        "endpoints": dataclasses.asdict(endpoints),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_seconds": round(time.time() - started, 1),
        "unit": "ms",
        "operations": results,
    }


def format_table(result: Mapping[str, Any]) -> str:
    header = (
        f"{'operation':<17}{'AWS calls':<26}{'direct':>8}{'gateway':>9}"
        f"{'overhead p50':>14}{'p95':>8}{'moto p50':>10}{'rest p50':>10}"
    )
    lines = [
        f"gateway overhead over the simulator ({result['topology']}; ms; median of "
        f"{result['rounds']} rounds x {result['requests_per_round']} requests; lists limit="
        f"{result['list_limit']})",
        header,
        "-" * len(header),
    ]
    for name, op in result["operations"].items():
        lines.append(
            f"{name:<17}{op['aws_calls']:<26}{op['direct_p50']:>8.2f}{op['gateway_p50']:>9.2f}"
            f"{op['overhead_p50']:>14.2f}{op['overhead_p95']:>8.2f}{op['moto_p50']:>10.2f}"
            f"{op['overhead_p50'] - op['moto_p50']:>10.2f}"
        )
    lines.append(
        "direct/gateway: p50 latency; overhead = gateway - direct; moto p50: the same DynamoDB "
        "calls replayed against the gateway's endpoint (of which AWS endpoint); rest = overhead - moto."
    )
    return "\n".join(lines)


GOAL_OWN_P50_MS = 10.0


def goals(result: Mapping[str, Any]) -> list[Goal]:
    """Per operation: the gateway's own share of the p50 overhead (overhead - moto's share)."""
    return [
        Goal(f"{name} gateway's own p50", op["overhead_p50"] - op["moto_p50"], GOAL_OWN_P50_MS, "ms")
        for name, op in result["operations"].items()
    ]


def whole_overhead_lines(result: Mapping[str, Any]) -> list[str]:
    """The whole p50 overhead against the same 10 ms, for information (moto's share included)."""
    return [
        f"(not checked) {name} whole p50 overhead {op['overhead_p50']:.2f} ms: "
        f"{'within' if op['overhead_p50'] <= GOAL_OWN_P50_MS else 'over'} 10 ms, moto {op['moto_p50']:.2f} ms"
        for name, op in result["operations"].items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topology", choices=("serve", "split"), default="serve")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="requests per operation per round")
    parser.add_argument("--list-limit", type=int, default=10, help="`limit` of the list calls")
    parser.add_argument("--quick", action="store_true", help="1 round of 5 requests (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (path printed)")
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 1, 5
    if args.rounds < 1 or args.requests < 1 or args.list_limit < 1:
        parser.error("--rounds, --requests and --list-limit must be >= 1")

    logdir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        result = run(
            topology=args.topology,
            rounds=args.rounds,
            requests=args.requests,
            list_limit=args.list_limit,
            logdir=logdir,
        )
    finally:
        if args.keep_logs:
            print(f"server logs in {logdir}", file=sys.stderr)
        else:
            for log in logdir.glob("*.log"):
                log.unlink()
            logdir.rmdir()
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    print("\n".join(whole_overhead_lines(result)))
    return verdict(goals(result), report_only=args.report_only)


if __name__ == "__main__":
    sys.exit(main())
