"""Cold start of every Lambda handler: import it and create its clients, against the floor of
the libraries alone, with and without byte code, beside `import litellm`.

    .venv/bin/python bench/coldstart.py                       # 5 fresh processes per target, 3 without .pyc
    .venv/bin/python bench/coldstart.py --runs 9 --json bench/results/coldstart.json
    .venv/bin/python bench/coldstart.py --quick --report-only # 1 process each, a smoke run

For each handler of the route table (gateway.routes.ROUTES and ASYNC_FUNCTIONS) a fresh
interpreter (cwd and PYTHONPATH = functions/, as the Lambda task root) measures
`importlib.import_module("handlers.<name>")` and then the creation of the clients the handler
builds on its first call, derived from the route's grants:

    table:*                  gateway.storage.dynamo.dynamodb_client()
    secret:*                 gateway.runtime.secret_store.secrets_provider() (Powertools' SecretsProvider)
    secret:provider-keys     gateway.providers.registry.client_for(name) for every provider
    bucket:*                 gateway.storage.s3.s3_client()
    invoke:file_transfer     boto3.client("lambda")

with AWS_DEFAULT_REGION, dummy credentials and the function environment the stack sets, and
no network call. Interpreter start-up (the same for any module) is left out and shown once.

Columns, per handler:
- cached: median of --runs processes after one discarded warm-up process per target (it
  writes the .pyc files), as in AWS now that both code assets ship byte code.
- no .pyc: median of --no-pyc-runs processes with no byte code cache at all (an empty
  PYTHONPYCACHEPREFIX): every module compiled, as from assets shipped as sources.
- floor: the handler's libraries-only floor, `floor:<clients>` below the table: pydantic's
  BaseModel, Powertools' Logger and REST resolver with its request validation imported, and
  the same kinds of client created straight from boto3 / httpx / Powertools, no gateway code.
- diff: cached - floor, the difference of the two medians (on a shared machine the noise
  of either is tens of ms).
- own: the handler's import in a process where its floor already ran, so its libraries are
  loaded and only the gateway's own modules are timed: the same quantity measured in one
  process. The goal: own <= GOAL_OWN_MS (30 ms) for every handler; the bench exits 1 when
  one is over it (--report-only: exit 0). (The gateway creates its clients through the same
  boto3 / httpx / Powertools calls as the floor: no own cost there.)
`(boto3 + 2 clients)` is the AWS SDK's own floor: boto3 with the DynamoDB and Secrets Manager
clients. Targets are interleaved run by run so that noise from other work on the machine is
spread over all of them, and the default clock is the child's CPU time (time.process_time:
waiting for a CPU the machine's other work holds is not counted; --clock wall for wall time).
Handler modules that do not exist yet (another engineer may still be writing them) are
skipped with a note.

litellm is measured the same way, `import litellm` in a fresh interpreter, in the same run,
when an interpreter has it: this one, $LITELLM_PYTHON or `--litellm-python PATH`, e.g. a
throwaway virtualenv (litellm is not a dependency of this project):

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm==1.75.8'
    LITELLM_PYTHON=/tmp/litellm-venv/bin/python .venv/bin/python bench/coldstart.py

(pin a release you trust: some litellm releases on PyPI were compromised.) Use the same
Python version as .venv for a fair comparison. The litellm process gets
LITELLM_LOCAL_MODEL_COST_MAP=True, so its import reads the bundled model cost map instead of
fetching it over the network: the pure import cost, the most favourable case for litellm.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
for _path in (REPO_ROOT, FUNCTIONS_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from gateway import routes  # noqa: E402  (plain data, no third-party imports)

from bench._results import write_json  # noqa: E402
from bench._stats import median, milliseconds  # noqa: E402

LITELLM = "litellm"
LITELLM_PYTHON_ENV = "LITELLM_PYTHON"
# The goal: what the gateway's own code adds to a handler's cold start, over the libraries-only
# floor of the same handler measured in the same run (medians), in milliseconds.
GOAL_OWN_MS = 30.0
# The hard floor inside every authenticated handler: the AWS SDK with the two clients the
# design requires (DynamoDB for the id map and keys, Secrets Manager for keys). Shown apart.
AWS_SDK = "(boto3 + 2 clients)"
FLOOR_PREFIX = "floor:"
AFTER_FLOOR = " after floor"
NO_PYC_RUNS = 3

# Code that creates one kind of client, run in the child after the import.
CLIENT_CODE: dict[str, str] = {
    "dynamodb": "from gateway.storage.dynamo import dynamodb_client\ndynamodb_client()",
    "secrets": "from gateway.runtime.secret_store import secrets_provider\nsecrets_provider()",
    "providers": (
        "from gateway.providers.registry import client_for, provider_names\n"
        "for _name in provider_names():\n"
        "    client_for(_name)"
    ),
    "s3": "from gateway.storage.s3 import s3_client\ns3_client()",
    "lambda": "import boto3\nboto3.client('lambda')",
    "aws_sdk": "import boto3\nboto3.client('dynamodb')\nboto3.client('secretsmanager')",
}

# The libraries-only floor of a handler: the libraries every handler is built on (pydantic,
# Powertools' Logger and REST resolver with its request validation), imported, and the same
# kinds of client created straight from boto3 / httpx, with no gateway code at all.
FLOOR_MODULE = "bench_floor"
FLOOR_BASE = (
    "from pydantic import BaseModel\n"
    "from aws_lambda_powertools import Logger\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "from aws_lambda_powertools.event_handler.openapi.params import Query\n"
    "APIGatewayRestResolver(enable_validation=True)"
)
FLOOR_CLIENT_CODE: dict[str, str] = {
    "dynamodb": "import boto3\nboto3.client('dynamodb')",
    "secrets": (
        "import boto3\nfrom aws_lambda_powertools.utilities import parameters\n"
        "parameters.SecretsProvider(boto3_client=boto3.client('secretsmanager'))"
    ),
    "providers": (
        "import json, os, httpx\n_context = httpx.create_ssl_context()\n"
        "for _name in json.loads(os.environ['GATEWAY_PROVIDERS']):\n"
        "    httpx.Client(verify=_context)"
    ),
    "s3": "import boto3\nboto3.client('s3')",
    "lambda": "import boto3\nboto3.client('lambda')",
}

# The child: argv[1] = module ("" for none), argv[2] = JSON list of code snippets, argv[3] =
# code run before anything is timed.
CHILD = """\
import importlib, json, sys, time
exec(sys.argv[3], {})
started, started_cpu = time.perf_counter(), time.process_time()
if sys.argv[1]:
    importlib.import_module(sys.argv[1])
imported, imported_cpu = time.perf_counter(), time.process_time()
for code in json.loads(sys.argv[2]):
    exec(code, {})
done, done_cpu = time.perf_counter(), time.process_time()
version = None
try:
    import importlib.metadata
    version = importlib.metadata.version(sys.argv[1].split('.')[0]) if sys.argv[1] else None
except Exception:
    pass
print(json.dumps({"import_s": imported - started, "clients_s": done - imported,
                  "import_cpu_s": imported_cpu - started_cpu, "clients_cpu_s": done_cpu - imported_cpu,
                  "modules": len(sys.modules), "version": version}))
"""


def clients_for(grants: Iterable[str]) -> list[str]:
    """The kinds of client (CLIENT_CODE keys) a function with these grants creates, in order."""
    grants = set(grants)
    wanted: list[str] = []
    if any(g.startswith("table:") for g in grants):
        wanted.append("dynamodb")
    if any(g.startswith("secret:") for g in grants):
        wanted.append("secrets")
    if routes.SECRET_PROVIDER_KEYS in grants:
        wanted.append("providers")
    if any(g.startswith("bucket:") for g in grants):
        wanted.append("s3")
    if routes.INVOKE_TRANSFER in grants:
        wanted.append("lambda")
    return wanted


@dataclass(frozen=True)
class Target:
    name: str  # handler name, a floor's name, or "litellm"
    module: str  # imported first ("" for none)
    snippets: tuple[str, ...]  # then run, in order
    python: str
    env: Mapping[str, str]
    cwd: Path
    clients: tuple[str, ...] = ()
    before: str = ""  # run untimed first


def function_env() -> dict[str, str]:
    """What a Lambda function of the stack has in its environment, with dummy AWS credentials."""
    from devserver.server import ProviderSettings, function_environment

    providers = {
        "openai": ProviderSettings("openai", "openai", "unused", "https://api.openai.com/v1"),
        "azure": ProviderSettings(
            "azure", "azure", "unused", "https://example.openai.azure.com", "2025-04-01-preview"
        ),
    }
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "PYTHON", "GATEWAY_", "POWERTOOLS_"))
    }
    env.update(function_environment(providers))
    env.update(
        {
            "PYTHONPATH": str(FUNCTIONS_DIR),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def floor_name(clients: Sequence[str]) -> str:
    return FLOOR_PREFIX + ("+".join(clients) or "no clients")


def floor_target(clients: Sequence[str], env: Mapping[str, str]) -> Target:
    """The libraries-only floor of a handler that creates these clients."""
    snippets = (FLOOR_BASE, *(FLOOR_CLIENT_CODE[kind] for kind in clients))
    return Target(floor_name(clients), "", snippets, sys.executable, env, FUNCTIONS_DIR, tuple(clients))


def handler_targets() -> tuple[list[Target], list[str]]:
    """One target per existing handler module; and the names whose module does not exist yet."""
    env = function_env()
    functions: list[tuple[str, frozenset[str]]] = [(r.name, r.grants) for r in routes.ROUTES]
    functions += [(f.name, f.permissions) for f in routes.ASYNC_FUNCTIONS]
    targets, missing = [], []
    for name, grants in functions:
        module = f"handlers.{name}"
        if importlib.util.find_spec(module) is None:
            missing.append(name)
            continue
        clients = tuple(clients_for(grants))
        snippets = tuple(CLIENT_CODE[kind] for kind in clients)
        targets.append(Target(name, module, snippets, sys.executable, env, FUNCTIONS_DIR, clients))
    return targets, missing


def after_floor_target(handler: Target) -> Target:
    """The handler's import in a process where its floor already ran: the gateway's own modules
    alone, measured in one process (no difference of two noisy medians)."""
    floor = floor_target(handler.clients, handler.env)
    before = "\n".join(floor.snippets)
    return replace(handler, name=handler.name + AFTER_FLOOR, snippets=(), before=before)


def floor_targets(handlers: Sequence[Target]) -> list[Target]:
    """One floor per distinct set of clients among the handlers, and the AWS SDK's own floor."""
    env = function_env()
    client_sets = sorted({h.clients for h in handlers}, key=lambda clients: (len(clients), clients))
    floors = [floor_target(clients, env) for clients in client_sets]
    aws_sdk = Target(AWS_SDK, "", (CLIENT_CODE["aws_sdk"],), sys.executable, env, FUNCTIONS_DIR)
    return [*floors, aws_sdk]


def litellm_python(explicit: str | None) -> str | None:
    """The interpreter to measure litellm with ($LITELLM_PYTHON by default), or None when none has it."""
    explicit = explicit or os.environ.get(LITELLM_PYTHON_ENV)
    if explicit:
        return explicit
    return sys.executable if importlib.util.find_spec(LITELLM) is not None else None


def litellm_target(python: str) -> Target:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return Target(LITELLM, LITELLM, (), python, env, Path(tempfile.gettempdir()))


def measure_once(target: Target, *, no_pyc: bool = False) -> dict[str, Any]:
    """One fresh interpreter: seconds to import and to create the clients.

    `no_pyc`: no byte code cache at all (an empty PYTHONPYCACHEPREFIX, nothing written), so
    every module is compiled from source, as at a cold start from a layer without byte code.
    The standard library is compiled too, which Lambda's runtime does not need: it overstates
    both the handlers and litellm somewhat.
    """
    env = dict(target.env)
    with tempfile.TemporaryDirectory(prefix="coldstart-pyc-") as empty:
        if no_pyc:
            env.update({"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"})
        completed = _run_child(target, list(target.snippets), env)
    if completed.returncode != 0:
        raise RuntimeError(f"{target.name}: exit {completed.returncode}\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def _run_child(
    target: Target, snippets: list[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [target.python, "-c", CHILD, target.module, json.dumps(snippets), target.before],
        cwd=target.cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def startup_seconds(python: str, runs: int) -> float:
    """Median wall time of `python -c pass`: what every cold start pays before any import."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - started)
    return median(samples)


def summarize_target(samples: Sequence[Mapping[str, Any]], clock: str = "cpu") -> dict[str, Any]:
    """Median milliseconds over the processes of one target, by the process's CPU time or wall time."""
    imports, clients = ("import_cpu_s", "clients_cpu_s") if clock == "cpu" else ("import_s", "clients_s")
    return {
        "clock": clock,
        "import_ms": milliseconds(median(s[imports] for s in samples)),
        "clients_ms": milliseconds(median(s[clients] for s in samples)),
        "total_ms": milliseconds(median(s[imports] + s[clients] for s in samples)),
        "min_total_ms": milliseconds(min(s[imports] + s[clients] for s in samples)),
        "wall_total_ms": milliseconds(median(s["import_s"] + s["clients_s"] for s in samples)),
        "modules": int(median(s["modules"] for s in samples)),
        "runs": len(samples),
        "version": samples[0].get("version"),
    }


def run(
    targets: Sequence[Target],
    runs: int,
    *,
    warmup: int = 1,
    no_pyc: bool = False,
    progress: bool = True,
    clock: str = "cpu",
) -> dict[str, Any]:
    """Each target's medians over `runs` fresh processes, targets interleaved run by run."""
    samples: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for index in range(warmup + runs):
        for target in targets:
            sample = measure_once(target, no_pyc=no_pyc)
            if index >= warmup:
                samples[target.name].append(sample)
        if progress and index >= warmup:
            label = "no byte code" if no_pyc else "cached byte code"
            print(f"  {label}: run {index - warmup + 1}/{runs} done", file=sys.stderr, flush=True)
    return {target.name: summarize_target(samples[target.name], clock) for target in targets}


def add_ratios(results: dict[str, dict[str, Any]]) -> float | None:
    """Each handler's total as a share of litellm's import; litellm's import ms (None: absent)."""
    litellm = results.get(LITELLM)
    if litellm is None:
        return None
    reference = float(litellm["total_ms"])
    for name, figures in results.items():
        if name != LITELLM:
            figures["ratio_to_litellm"] = figures["total_ms"] / reference
            if "min_total_ms" in figures and litellm.get("min_total_ms"):
                figures["min_ratio_to_litellm"] = figures["min_total_ms"] / float(litellm["min_total_ms"])
    return reference


def handler_rows(
    handlers: Sequence[Target], cached: Mapping[str, Any], no_pyc: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Per handler: cached and no-byte-code totals, its floor and the gateway's own cost."""
    rows = {}
    for handler in handlers:
        floor = floor_name(handler.clients)
        own = cached[handler.name + AFTER_FLOOR]["import_ms"]
        rows[handler.name] = {
            "cached": cached[handler.name],
            "no_pyc": no_pyc[handler.name] if no_pyc else None,
            "floor": floor,
            "floor_ms": cached[floor]["total_ms"],
            "difference_ms": cached[handler.name]["total_ms"] - cached[floor]["total_ms"],
            "own_ms": own,
            "goal_met": own <= GOAL_OWN_MS,
            "clients": list(handler.clients),
        }
    return rows


def goal_met(report: Mapping[str, Any]) -> bool:
    return all(row["goal_met"] for row in report["handlers"].values())


def _cell(figures: Mapping[str, Any] | None, key: str = "total_ms") -> str:
    return f"{figures[key]:>9.1f}" if figures else f"{'-':>9}"


def format_table(report: Mapping[str, Any]) -> str:
    rows: dict[str, dict[str, Any]] = report["handlers"]
    floors: dict[str, dict[str, Any]] = report["floors"]
    litellm = report.get("litellm") or {}
    runs = f"median of {report['runs']} fresh processes"
    if report.get("no_pyc_runs"):
        runs += f", {report['no_pyc_runs']} without byte code"
    header = (
        f"{'handler':<18}{'cached':>9}{'no .pyc':>9}{'floor':>9}{'diff':>8}{'own':>7}{'of litellm':>12}"
        "  floor (clients)"
    )
    clock = "CPU time of the process" if report.get("clock") == "cpu" else "wall time"
    lines = [f"cold start, ms of {clock} ({runs}; import + clients)", header, "-" * len(header)]
    for name, row in rows.items():
        ratio = row["cached"].get("ratio_to_litellm")
        shown = f"{ratio * 100:>11.1f}%" if ratio is not None else f"{'-':>12}"
        mark = "" if row["goal_met"] else "  <- over the goal"
        lines.append(
            f"{name:<18}{_cell(row['cached'])}{_cell(row['no_pyc'])}{row['floor_ms']:>9.1f}"
            f"{row['difference_ms']:>+8.1f}{row['own_ms']:>7.1f}{shown}"
            f"  {row['floor'].removeprefix(FLOOR_PREFIX)}{mark}"
        )
    lines.append("")
    lines.append(f"{'libraries only':<18}{'cached':>9}{'no .pyc':>9}")
    for name, figures in floors.items():
        lines.append(f"{name:<40}{_cell(figures['cached'])}{_cell(figures['no_pyc'])}")
    if litellm:
        lines.append(f"{'import litellm':<40}{_cell(litellm.get('cached'))}{_cell(litellm.get('no_pyc'))}")
        version = (litellm.get("cached") or {}).get("version")
        lines.append(f"litellm {version} via {report['litellm_python']}")
    else:
        lines.append(
            f"litellm not measured (set {LITELLM_PYTHON_ENV} or --litellm-python; see the docstring)"
        )
    worst = max(rows.items(), key=lambda item: item[1]["own_ms"]) if rows else None
    if worst is not None:
        verdict = "met" if goal_met(report) else "NOT met"
        lines.append(
            f"goal: the gateway's own import (own) <= {GOAL_OWN_MS:.0f} ms per handler: {verdict} "
            f"(highest: {worst[0]} {worst[1]['own_ms']:+.1f} ms)"
        )
    for name in report["missing"]:
        lines.append(f"skipped {name}: handlers.{name} does not exist yet")
    lines.append(f"interpreter start-up (python -c pass, not included above): {report['startup_ms']:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per target (median)")
    parser.add_argument(
        "--no-pyc-runs",
        type=int,
        default=NO_PYC_RUNS,
        help=f"fresh processes per target without any byte code (default {NO_PYC_RUNS}; 0: skip the column)",
    )
    parser.add_argument(
        "--litellm-python", help=f"an interpreter that has litellm (default ${LITELLM_PYTHON_ENV})"
    )
    parser.add_argument("--only", nargs="*", help="measure only these handlers")
    parser.add_argument(
        "--quick", action="store_true", help="1 process per target, no warm-up, no .pyc column"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="exit 0 even when the goal is missed (to explore)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu (default): the child's process_time, barely disturbed by other work on a shared "
        "machine; wall: perf_counter",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.no_pyc_runs < 0:
        parser.error("--runs must be >= 1 and --no-pyc-runs >= 0")
    runs, warmup, no_pyc_runs = (1, 0, 0) if args.quick else (args.runs, 1, args.no_pyc_runs)

    started = time.time()
    handlers, missing = handler_targets()
    if args.only:
        handlers = [t for t in handlers if t.name in args.only]
    targets = [*handlers, *floor_targets(handlers), *(after_floor_target(h) for h in handlers)]
    python = litellm_python(args.litellm_python)
    if python is not None:
        targets.append(litellm_target(python))
    cached = run(targets, runs, warmup=warmup, clock=args.clock)
    compiled = [t for t in targets if not t.name.endswith(AFTER_FLOOR)]
    no_pyc = run(compiled, no_pyc_runs, warmup=0, no_pyc=True, clock=args.clock) if no_pyc_runs else None
    if LITELLM in cached:
        add_ratios(cached)
    rows = handler_rows(handlers, cached, no_pyc)
    report: dict[str, Any] = {
        "bench": "coldstart",
        "runs": runs,
        "no_pyc_runs": no_pyc_runs,
        "clock": args.clock,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "unit": "ms",
        "startup_ms": milliseconds(startup_seconds(sys.executable, max(runs, 3))),
        "handlers": rows,
        "floors": {
            t.name: {"cached": cached[t.name], "no_pyc": no_pyc[t.name] if no_pyc else None}
            for t in targets
            if t.name.startswith(FLOOR_PREFIX) or t.name == AWS_SDK
        },
        "missing": missing,
        "litellm": (
            {"cached": cached[LITELLM], "no_pyc": no_pyc[LITELLM] if no_pyc else None}
            if LITELLM in cached
            else None
        ),
        "litellm_python": python,
        "goal_own_ms": GOAL_OWN_MS,
    }
    report["goal_met"] = goal_met(report)
    report["duration_seconds"] = round(time.time() - started, 1)
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    if not report["goal_met"] and not args.report_only:
        print(
            f"FAIL: a handler's own cost is over {GOAL_OWN_MS:.0f} ms (--report-only to explore)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
