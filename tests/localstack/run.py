"""`make localstack-test`: both stacks deployed into LocalStack, the end-to-end suite run against them.

    python -m tests.localstack.run [--keep]

1. LocalStack's core (its own Python 3.13 venv, tests/localstack/setup.sh) starts in host mode on a
   free loopback port, its state and files under its own run directory; Lambda runs through
   LocalStack's Docker executor where Docker answers (the containers on Docker's bridge, what
   they call bound to its address too), else the `process` executor
   (tests/localstack/localstack_plugin.py); DynamoDB is moto's (tests/localstack/dynamodb_moto.py).
   The plugins' own tests (tests/localstack/plugin_tests) run first, by LocalStack's venv.
2. The CDK CLI synthesizes once, for the host's architecture, with the provider simulator's
   loopback URL as the providers' api_base (`loopback_test_endpoints`), bootstraps and deploys
   every stack of the app (`--all`), with a CDK_HOME of its own.
3. The provider keys secret gets the simulator's keys; pytest runs tests/e2e and
   tests/localstack/test_deployed.py against LocalStack's path-style execute-api URL, with the
   simulator in the pytest process (tests/localstack/simulator_plugin.py).
4. LocalStack's whole process group is ended (it does not exit on SIGTERM alone), and the run
   checks that nothing of it is left.

Prints the deploy time, the test time and the peak memory of LocalStack's processes. Several runs
can go at once: each has its own ports and run directory (LOCALSTACK_RUN_DIR).

The other commands serve make localstack-start/-stop (a LocalStack left running on
LOCALSTACK_PORT, 4566 by default; LOCALSTACK_LAMBDA_EXECUTOR=process or docker to force an
executor), localstack-deploy (the app as cdk.json configures it) and localstack-e2e.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STATE = REPO / ".localstack"
CDK = REPO / "node_modules" / ".bin" / "cdk"
ACCOUNT = "000000000000"
REGION = "us-east-1"
SIM_KEYS = {"openai": "sim-openai-key", "azure": "sim-azure-key", "anthropic": "sim-anthropic-key"}
AZURE_API_VERSION = "2024-10-21"
READY_SECONDS = 120
STOP_SECONDS = 15
HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host_architecture() -> str:
    machine = platform.machine().lower()
    if machine not in HOST_ARCHITECTURES:
        raise SystemExit(f"localstack: no Lambda architecture for this machine ({machine})")
    return HOST_ARCHITECTURES[machine]


EXECUTOR_ENV = "LOCALSTACK_LAMBDA_EXECUTOR"
EXECUTORS = ("auto", "process", "docker")
LOOPBACK = "127.0.0.1"
DOCKER_BRIDGE = "bridge"


def lambda_executor(docker_answers: Callable[[], bool] | None = None) -> str:
    """LocalStack's own `docker` executor where a Docker engine answers, else `process`.

    LOCALSTACK_LAMBDA_EXECUTOR=process or docker forces one (docker fails when none answers)."""
    wanted = os.environ.get(EXECUTOR_ENV) or "auto"
    if wanted not in EXECUTORS:
        raise SystemExit(f"localstack: {EXECUTOR_ENV} is one of {', '.join(EXECUTORS)}, not {wanted!r}")
    if wanted == "process":
        return "process"
    answers = (docker_answers or docker_available)()
    if wanted == "docker" and not answers:
        raise SystemExit(f"localstack: {EXECUTOR_ENV}=docker, but `docker info` does not answer")
    return "docker" if answers else "process"


def docker_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "info"], capture_output=True, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def docker_bridge_gateway() -> str:
    """The address of this machine on Docker's default bridge: where a Lambda container reaches it."""
    docker = shutil.which("docker") or "docker"
    result = subprocess.run(
        [docker, "network", "inspect", DOCKER_BRIDGE, "--format", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    address = result.stdout.strip()
    if result.returncode != 0 or not address:
        raise SystemExit(f"localstack: cannot read Docker's {DOCKER_BRIDGE} gateway: {result.stderr.strip()}")
    return address


def simulator_providers(sim_url: str) -> dict[str, dict[str, str]]:
    """The providers the deployment under test uses: each one the simulator on loopback."""
    return {
        "openai": {"type": "openai", "api_base": f"{sim_url}/v1"},
        "azure": {"type": "azure", "api_base": sim_url, "api_version": AZURE_API_VERSION},
        "anthropic": {"type": "anthropic", "api_base": f"{sim_url}/anthropic"},
    }


def path_style_api_url(api_url: str, endpoint: str) -> str:
    """LocalStack's `https://ID.execute-api.localhost.localstack.cloud:PORT/STAGE/` as the path-style
    `ENDPOINT/_aws/execute-api/ID/STAGE`, which needs no DNS name."""
    parts = urlsplit(api_url)
    api_id = (parts.hostname or "").split(".")[0]
    stage = parts.path.strip("/").split("/")[0]
    if not api_id or not stage:
        raise SystemExit(f"localstack: cannot read the API id and stage from {api_url!r}")
    return f"{endpoint}/_aws/execute-api/{api_id}/{stage}"


@dataclass
class Run:
    directory: Path
    port: int
    sim_port: int
    executor: str
    architecture: str
    # This machine's address as the functions reach it: loopback for `process`, Docker's bridge
    # gateway for LocalStack's Docker executor (the simulator and the webhook receiver bind it).
    host: str = LOOPBACK

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def sim_url(self) -> str:
        return f"http://{self.host}:{self.sim_port}"


def aws_env(endpoint: str) -> dict[str, str]:
    """LocalStack for every AWS client, S3 path-style on the same address (no DNS name needed)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def localstack_env(run: Run, python312: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    tmp = run.directory / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "GATEWAY_LISTEN": f"{LOOPBACK}:{run.port}",
            "OVERRIDE_IN_DOCKER": "0",  # this machine may have /.dockerenv: LocalStack runs on the host
            "PROVIDER_OVERRIDE_DYNAMODB": "moto",  # LocalStack's default downloads a JDK
            "LAMBDA_RUNTIME_EXECUTOR": run.executor,
            "DNS_ADDRESS": "0",  # no DNS server of its own (port 53)
            "FILESYSTEM_ROOT": str(run.directory / "filesystem"),
            "TMPDIR": str(tmp),  # the functions' unzipped code, LocalStack's temporary files
            "DISABLE_EVENTS": "1",  # no analytics
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LAMBDA_PROCESS_LOG_DIR": str(run.directory / "lambda-logs"),
            "LAMBDA_PROCESS_RUNTIMES": json.dumps(
                {"python3.12": {"python": python312, "runtime_dir": str(STATE / "runtime" / "python3.12")}}
            ),
            # Keep an environment warm between the suite's calls, as Lambda does.
            "LAMBDA_KEEPALIVE_MS": "600000",
        }
    )
    if run.executor == "docker":
        env.update(docker_executor_env(run))
    return env


def docker_executor_env(run: Run) -> dict[str, str]:
    """LocalStack's Docker executor: Lambda containers on Docker's bridge reach LocalStack (and
    the simulator, the webhook receiver) at this machine's bridge address, run.host. Not the
    host network: LocalStack's executor reads each container's address on its network (none on
    `host`) and every container's runtime API would take the same port."""
    return {
        "GATEWAY_LISTEN": f"{LOOPBACK}:{run.port},{run.host}:{run.port}",
        "LAMBDA_DOCKER_NETWORK": DOCKER_BRIDGE,
        "HOSTNAME_FROM_LAMBDA": run.host,
    }


def wait_ready(run: Run, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"localstack: exited at start; see {run.directory / 'localstack.log'}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{run.endpoint}/_localstack/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)  # a process starting, not a state of the system under test
    raise SystemExit(f"localstack: not ready after {READY_SECONDS}s; see {run.directory / 'localstack.log'}")


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp
                pids.append(int(entry.name))
    return pids


def group_rss_bytes(pgid: int) -> int:
    total = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


class PeakMemory:
    """The largest resident size of LocalStack's process group (its functions included), sampled."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, group_rss_bytes(self.pgid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def launch(run: Run, python312: str) -> subprocess.Popen[bytes]:
    """LocalStack started in its own process group (its functions' processes join it), once ready."""
    with (run.directory / "localstack.log").open("wb") as log:
        process = subprocess.Popen(
            [str(STATE / "venv" / "bin" / "python"), "-m", "localstack.runtime.main"],
            env=localstack_env(run, python312),
            cwd=run.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(run, process)
    except BaseException:
        stop_group(process)
        raise
    return process


@contextlib.contextmanager
def localstack(run: Run, python312: str) -> Iterator[subprocess.Popen[bytes]]:
    process = launch(run, python312)
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    stop_group_of(process.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def stop_group_of(pgid: int) -> None:
    """SIGTERM to the whole group, SIGKILL to what is left after STOP_SECONDS; fails if anything remains."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.5)  # the kernel reaps a killed process asynchronously
    left = [pid for pid in group_pids(pgid) if Path(f"/proc/{pid}/stat").exists()]
    left = [pid for pid in left if "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]]
    if left:
        raise SystemExit(f"localstack: processes {left} of its group are still running")
    print("localstack: stopped, nothing of it left running", flush=True)


def cdk(endpoint: str, directory: Path, *arguments: str) -> None:
    env = {**os.environ, **aws_env(endpoint), "CDK_HOME": str(directory / "cdk-home")}
    log = directory / "cdk.log"
    with log.open("ab") as out:
        result = subprocess.run(
            [str(CDK), *arguments], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"localstack: cdk {arguments[0]} failed (all of it in {log}):\n{tail}")


def deploy(endpoint: str, directory: Path, context: dict[str, str]) -> None:
    """One synth for the host's architecture, then bootstrap and every stack of the app from it."""
    assembly = directory / "cdk.out"
    context = {"architecture": host_architecture(), **context}
    flags = [item for key, value in context.items() for item in ("-c", f"{key}={value}")]
    cdk(endpoint, directory, "synth", "--quiet", "--output", str(assembly), *flags)
    cdk(endpoint, directory, "bootstrap", "--app", str(assembly), f"aws://{ACCOUNT}/{REGION}")
    cdk(
        endpoint,
        directory,
        "deploy",
        "--app",
        str(assembly),
        "--all",
        "--require-approval",
        "never",
        "--concurrency",
        "4",
    )


def test_context(run: Run) -> dict[str, str]:
    context = {
        "loopback_test_endpoints": "true",
        "providers": json.dumps(simulator_providers(run.sim_url)),
        "default_provider": "openai",
    }
    if run.host != LOOPBACK:
        context["test_endpoint_host"] = run.host
    return context


def aws_client(endpoint: str, service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"}),
    )


def deployed(endpoint: str) -> tuple[str, str]:
    """The deployed API's path-style URL and its master key, or one line saying why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        outputs = stack_outputs(endpoint)
        if "ApiUrl" not in outputs:
            raise SystemExit(
                f"localstack: no stack at {endpoint} has an ApiUrl output: make localstack-deploy"
            )
        return path_style_api_url(outputs["ApiUrl"], endpoint), master_key(endpoint, outputs)
    except (BotoCoreError, ClientError) as error:
        raise SystemExit(
            f"localstack: cannot read the deployed gateway at {endpoint}: {error}. "
            "Is LocalStack running (make localstack-start) and the gateway deployed (make localstack-deploy)?"
        ) from None


def stack_outputs(endpoint: str) -> dict[str, str]:
    """Every output of every stack, by key (nested or split stacks included: found, not named)."""
    client = aws_client(endpoint, "cloudformation")
    outputs: dict[str, str] = {}
    for page in client.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            for output in stack.get("Outputs", []):
                outputs[output["OutputKey"]] = output["OutputValue"]
    return outputs


def put_provider_keys(endpoint: str, outputs: dict[str, str]) -> None:
    secrets = aws_client(endpoint, "secretsmanager")
    secrets.put_secret_value(SecretId=outputs["ProviderKeysSecretName"], SecretString=json.dumps(SIM_KEYS))


def master_key(endpoint: str, outputs: dict[str, str]) -> str:
    secrets = aws_client(endpoint, "secretsmanager")
    return str(secrets.get_secret_value(SecretId=outputs["MasterKeySecretName"])["SecretString"])


def run_tests(run: Run, api_url: str, key: str, pytest_args: list[str]) -> int:
    env = {
        **os.environ,
        **aws_env(run.endpoint),
        "E2E_BASE_URL": api_url,
        "E2E_API_KEY": key,
        "E2E_PROVIDERS": "openai,azure",
        "E2E_WAIT_SECONDS": "60",
        "LOCALSTACK_SIM_PORT": str(run.sim_port),
        "LOCALSTACK_TEST_HOST": run.host,
        "LOCALSTACK_SIM_DIR": str(run.directory / "simulator"),
        "LOCALSTACK_ENDPOINT": run.endpoint,
        "LOCALSTACK_EXECUTOR": run.executor,
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.localstack.simulator_plugin",
        "tests/e2e",
        "tests/localstack/test_deployed.py",
        *pytest_args,
    ]
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def setup() -> str:
    result = subprocess.run(
        ["bash", str(HERE / "setup.sh")], stdout=subprocess.PIPE, cwd=REPO, check=False, text=True
    )
    if result.returncode != 0:
        raise SystemExit("localstack: setup failed (tests/localstack/setup.sh)")
    return result.stdout.strip().splitlines()[-1]


PLUGIN_TESTS = HERE / "plugin_tests"


def run_plugin_tests(pytest_args: list[str]) -> int:
    """The plugins' own tests, by LocalStack's venv (they import LocalStack), apart from the suite."""
    command = [
        str(STATE / "venv" / "bin" / "python"),
        "-m",
        "pytest",
        "-q",
        "-c",
        str(PLUGIN_TESTS / "pytest.ini"),
        str(PLUGIN_TESTS),
        *pytest_args,
    ]
    return subprocess.run(command, cwd=REPO, check=False).returncode


def plugins_command(pytest_args: list[str]) -> int:
    setup()
    return run_plugin_tests(pytest_args)


def new_run(directory: Path, port: int, executor: str) -> Run:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return Run(
        directory=directory,
        port=port,
        sim_port=free_port(),
        executor=executor,
        architecture=host_architecture(),
        host=docker_bridge_gateway() if executor == "docker" else LOOPBACK,
    )


def test(pytest_args: list[str]) -> int:
    # SIGTERM (a CI time-out, make's) unwinds like Ctrl-C, so LocalStack's group is still ended.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    python312 = setup()
    if run_plugin_tests([]) != 0:
        print("localstack: the plugins' own tests failed (tests/localstack/plugin_tests)", flush=True)
        return 1
    directory = Path(os.environ.get("LOCALSTACK_RUN_DIR") or STATE / f"run-{os.getpid()}").resolve()
    run = new_run(directory, free_port(), lambda_executor())
    print(
        f"localstack: on {run.endpoint}, Lambda executor {run.executor}, architecture {run.architecture}, "
        f"files in {run.directory}",
        flush=True,
    )
    status = 1
    with localstack(run, python312) as process, PeakMemory(process.pid) as memory:
        deploy_started = time.monotonic()
        deploy(run.endpoint, run.directory, test_context(run))
        deploy_seconds = time.monotonic() - deploy_started
        outputs = stack_outputs(run.endpoint)
        put_provider_keys(run.endpoint, outputs)
        api_url = path_style_api_url(outputs["ApiUrl"], run.endpoint)
        print(f"localstack: deployed in {deploy_seconds:.0f}s; API at {api_url}", flush=True)
        tests_started = time.monotonic()
        status = run_tests(run, api_url, master_key(run.endpoint, outputs), pytest_args)
        test_seconds = time.monotonic() - tests_started
    print(
        f"localstack: deploy {deploy_seconds:.0f}s, tests {test_seconds:.0f}s, whole run "
        f"{time.monotonic() - started:.0f}s, peak memory of LocalStack and its functions "
        f"{memory.peak / 2**20:.0f} MiB",
        flush=True,
    )
    if status == 0:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        print(f"localstack: logs kept in {directory}", flush=True)
    return status


DAEMON_DIR = STATE / "local"
PID_FILE = "localstack.pid"


def start(port: int) -> int:
    """LocalStack left running on `port` (make localstack-start), its files in .localstack/local."""
    python312 = setup()
    run = new_run(DAEMON_DIR.resolve(), port, lambda_executor())
    process = launch(run, python312)
    (run.directory / PID_FILE).write_text(str(process.pid))
    print(f"localstack: running on {run.endpoint}; make localstack-stop ends it")
    return 0


def stop() -> int:
    pid_file = DAEMON_DIR / PID_FILE
    if not pid_file.exists():
        print("localstack: not running (no .localstack/local/localstack.pid)")
        return 0
    pid = int(pid_file.read_text())
    if group_pids(pid):
        stop_group_of(pid)
    pid_file.unlink()
    return 0


def endpoint_from_env() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:4566"


def deploy_command() -> int:
    """make localstack-deploy: the app as cdk.json configures it, for the host's architecture."""
    endpoint = endpoint_from_env()
    directory = (DAEMON_DIR / "deploy").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deploy(endpoint, directory, {})
    outputs = stack_outputs(endpoint)
    print(
        f"localstack: deployed in {time.monotonic() - started:.0f}s; API at "
        f"{path_style_api_url(outputs['ApiUrl'], endpoint)}"
    )
    return 0


def e2e_command(pytest_args: list[str]) -> int:
    """make localstack-e2e: tests/e2e against the deployed API's path-style URL."""
    endpoint = endpoint_from_env()
    api_url, key = deployed(endpoint)
    print(f"localstack: e2e against {api_url}", flush=True)
    env = {**os.environ, **aws_env(endpoint), "E2E_BASE_URL": api_url, "E2E_API_KEY": key}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e", *pytest_args]
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["test", "plugins", "start", "stop", "deploy", "e2e"])
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (test, e2e)")
    args, more = parser.parse_known_args(argv)  # pytest's own options (-k, -x) pass through
    args.pytest_args += more
    if args.command == "test":
        return test(args.pytest_args)
    if args.command == "plugins":
        return plugins_command(args.pytest_args)
    if args.command == "start":
        return start(int(os.environ.get("LOCALSTACK_PORT") or 4566))
    if args.command == "stop":
        return stop()
    if args.command == "deploy":
        return deploy_command()
    return e2e_command(args.pytest_args)


if __name__ == "__main__":
    raise SystemExit(main())
