"""Cold start of every Lambda handler: import it and create its clients, beside `import litellm`.

    .venv/bin/python bench/coldstart.py                       # 5 fresh processes per handler
    .venv/bin/python bench/coldstart.py --runs 9 --json bench/results/coldstart.json
    .venv/bin/python bench/coldstart.py --quick               # 1 process each, a smoke run

For each handler of the route table (gateway.routes.ROUTES and ASYNC_FUNCTIONS) a fresh
interpreter (cwd and PYTHONPATH = functions/, as the Lambda task root) records
time.perf_counter() before `importlib.import_module("handlers.<name>")`, after it, and after
creating the clients the handler builds on its first call, derived from the route's grants:

    table:*                  gateway.storage.dynamo.dynamodb_client()
    secret:*                 gateway.secret_store.secrets_provider() (Powertools' SecretsProvider)
    secret:provider-keys     gateway.providers.registry.client_for(name) for every provider
    bucket:*                 gateway.storage.s3.s3_client()
    invoke:file_transfer     boto3.client("lambda")

with AWS_DEFAULT_REGION, dummy credentials and the function environment the stack sets, and
no network call. Interpreter start-up (the same for any module) is left out and shown once.
Each figure is the median of --runs processes, after one discarded warm-up process per
target (it writes the .pyc files; `--no-pyc` measures without any byte code cache instead,
as from a layer built without a python3.14 at hand); targets are interleaved run by run so that noise from
other work on the machine is spread over all of them. Handler modules that do not exist yet
(another engineer may still be writing them) are skipped with a note. The row
`(libraries only)` imports just the fixed dependencies an authenticated handler needs, with
its two AWS clients: the floor under every such handler. `(boto3 + 2 clients)` is the floor
inside it: boto3 alone with the DynamoDB and Secrets Manager clients.

litellm is measured the same way, `import litellm` in a fresh interpreter, in the same run;
the goal is every handler <= 10 % of it. litellm is not a dependency of this project: the
bench uses the current interpreter when litellm is importable there, else
`--litellm-python PATH`, e.g. a throwaway virtualenv:

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm==1.75.8'
    .venv/bin/python bench/coldstart.py --litellm-python /tmp/litellm-venv/bin/python

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
from dataclasses import dataclass
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
GOAL_RATIO = 0.10
# What every authenticated handler needs before any gateway code: the fixed dependencies
# (boto3 with the DynamoDB and Secrets Manager clients, Powertools' event handler and
# parameters, pydantic). Measured the same way, it shows how low a handler could go.
LIBRARIES = "(libraries only)"
# The hard floor inside that: the AWS SDK with the two clients the brief's design requires of
# every authenticated handler (DynamoDB for the id map and keys, Secrets Manager for keys).
AWS_SDK = "(boto3 + 2 clients)"
FLOORS = (LIBRARIES, AWS_SDK)

# Code that creates one kind of client, run in the child after the import.
CLIENT_CODE: dict[str, str] = {
    "dynamodb": "from gateway.storage.dynamo import dynamodb_client\ndynamodb_client()",
    "secrets": "from gateway.secret_store import secrets_provider\nsecrets_provider()",
    "providers": (
        "from gateway.providers.registry import client_for, provider_names\n"
        "for _name in provider_names():\n"
        "    client_for(_name)"
    ),
    "s3": "from gateway.storage.s3 import s3_client\ns3_client()",
    "lambda": "import boto3\nboto3.client('lambda')",
    "libraries": (
        "import boto3, pydantic\n"
        "from aws_lambda_powertools.utilities import parameters\n"
        "boto3.client('dynamodb')\n"
        "boto3.client('secretsmanager')"
    ),
    "aws_sdk": "import boto3\nboto3.client('dynamodb')\nboto3.client('secretsmanager')",
}

# The child: argv[1] = module, argv[2] = JSON list of CLIENT_CODE snippets.
CHILD = """\
import importlib, json, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
imported = time.perf_counter()
for code in json.loads(sys.argv[2]):
    exec(code, {})
done = time.perf_counter()
version = None
try:
    import importlib.metadata
    version = importlib.metadata.version(sys.argv[1].split('.')[0])
except Exception:
    pass
print(json.dumps({"import_s": imported - started, "clients_s": done - imported,
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
    name: str  # handler name, or "litellm"
    module: str
    clients: tuple[str, ...]
    python: str
    env: Mapping[str, str]
    cwd: Path


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
        targets.append(Target(name, module, tuple(clients_for(grants)), sys.executable, env, FUNCTIONS_DIR))
    return targets, missing


def libraries_target() -> Target:
    return Target(
        LIBRARIES,
        "aws_lambda_powertools.event_handler",
        ("libraries",),
        sys.executable,
        function_env(),
        FUNCTIONS_DIR,
    )


def aws_sdk_target() -> Target:
    return Target(AWS_SDK, "boto3", ("aws_sdk",), sys.executable, function_env(), FUNCTIONS_DIR)


def litellm_python(explicit: str | None) -> str | None:
    """The interpreter to measure litellm with, or None when none has it."""
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
    every module is compiled from source, as from the stack's layer (pip --no-compile,
    __pycache__ stripped). The standard library is compiled too, which Lambda's runtime does
    not need: it overstates both the handlers and litellm somewhat.
    """
    snippets = [CLIENT_CODE[kind] for kind in target.clients]
    env = dict(target.env)
    with tempfile.TemporaryDirectory(prefix="coldstart-pyc-") as empty:
        if no_pyc:
            env.update({"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"})
        completed = _run_child(target, snippets, env)
    if completed.returncode != 0:
        raise RuntimeError(f"{target.name}: exit {completed.returncode}\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def _run_child(
    target: Target, snippets: list[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [target.python, "-c", CHILD, target.module, json.dumps(snippets)],
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


def summarize_target(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Median milliseconds over the processes of one target."""
    return {
        "import_ms": milliseconds(median(s["import_s"] for s in samples)),
        "clients_ms": milliseconds(median(s["clients_s"] for s in samples)),
        "total_ms": milliseconds(median(s["import_s"] + s["clients_s"] for s in samples)),
        "min_total_ms": milliseconds(min(s["import_s"] + s["clients_s"] for s in samples)),
        "modules": int(median(s["modules"] for s in samples)),
        "runs": len(samples),
        "version": samples[0].get("version"),
    }


def run(
    targets: Sequence[Target], runs: int, *, warmup: int = 1, no_pyc: bool = False, progress: bool = True
) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for index in range(warmup + runs):
        for target in targets:
            sample = measure_once(target, no_pyc=no_pyc)
            if index >= warmup:
                samples[target.name].append(sample)
        if progress and index >= warmup:
            print(f"  run {index - warmup + 1}/{runs} done", file=sys.stderr, flush=True)
    return {target.name: summarize_target(samples[target.name]) for target in targets}


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


def format_table(report: Mapping[str, Any]) -> str:
    results: dict[str, dict[str, Any]] = report["handlers"]
    litellm = report.get("litellm")
    header = (
        f"{'handler':<18}{'import':>9}{'clients':>9}{'total':>9}{'of litellm':>12}"
        f"{'min':>9}{'of min':>8}  clients"
    )
    cache = "no byte code cache: every module compiled" if report.get("no_pyc") else ".pyc files cached"
    title = f"cold start, ms (median of {report['runs']} fresh processes each; {cache})"
    lines = [title, header, "-" * len(header)]
    for name, figures in results.items():
        ratio, min_ratio = figures.get("ratio_to_litellm"), figures.get("min_ratio_to_litellm")
        shown = f"{ratio * 100:>11.1f}%" if ratio is not None else f"{'-':>12}"
        min_shown = f"{min_ratio * 100:>7.1f}%" if min_ratio is not None else f"{'-':>8}"
        lines.append(
            f"{name:<18}{figures['import_ms']:>9.1f}{figures['clients_ms']:>9.1f}{figures['total_ms']:>9.1f}"
            f"{shown}{figures['min_total_ms']:>9.1f}{min_shown}  {', '.join(report['clients'][name]) or '-'}"
        )
    if litellm is not None:
        lines.append(
            f"{'import litellm':<18}{litellm['import_ms']:>9.1f}{'':>9}{litellm['total_ms']:>9.1f}"
            f"{'':>12}{litellm['min_total_ms']:>9.1f}"
        )
        lines.append(f"litellm {litellm.get('version')} via {report['litellm_python']}")
        lines.append("total/of litellm: medians; min/of min: the fastest process (least disturbed)")
        handlers = {name: figures for name, figures in results.items() if name not in FLOORS}
        worst = max(handlers.items(), key=lambda item: item[1]["total_ms"])
        verdict = "met" if worst[1]["ratio_to_litellm"] <= GOAL_RATIO else "NOT met"
        lines.append(
            f"goal every handler <= {GOAL_RATIO:.0%} of litellm's import: {verdict} "
            f"(slowest: {worst[0]} {worst[1]['ratio_to_litellm']:.1%})"
        )
    else:
        lines.append("litellm not installed (pass --litellm-python PATH; see this script's docstring)")
    for name in report["missing"]:
        lines.append(f"skipped {name}: handlers.{name} does not exist yet")
    lines.append(f"interpreter start-up (python -c pass, not included above): {report['startup_ms']:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per target (median)")
    parser.add_argument("--litellm-python", help="an interpreter that has litellm installed")
    parser.add_argument("--only", nargs="*", help="measure only these handlers")
    parser.add_argument("--quick", action="store_true", help="1 process per target, no warm-up")
    parser.add_argument(
        "--no-pyc", action="store_true", help="compile every module from source, as from the stack's layer"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    runs, warmup = (1, 0) if args.quick else (args.runs, 1)

    started = time.time()
    targets, missing = handler_targets()
    if args.only:
        targets = [t for t in targets if t.name in args.only]
    targets += [libraries_target(), aws_sdk_target()]
    python = litellm_python(args.litellm_python)
    if python is not None:
        targets.append(litellm_target(python))
    results = run(targets, runs, warmup=warmup, no_pyc=args.no_pyc)
    litellm = results.pop(LITELLM, None)
    if litellm is not None:
        add_ratios({**results, LITELLM: litellm})
    report: dict[str, Any] = {
        "bench": "coldstart",
        "runs": runs,
        "no_pyc": args.no_pyc,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "unit": "ms",
        "startup_ms": milliseconds(startup_seconds(sys.executable, max(runs, 3))),
        "handlers": results,
        "clients": {t.name: list(t.clients) for t in targets if t.name != LITELLM},
        "missing": missing,
        "litellm": litellm,
        "litellm_python": python,
        "goal_ratio": GOAL_RATIO,
    }
    report["duration_seconds"] = round(time.time() - started, 1)
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
