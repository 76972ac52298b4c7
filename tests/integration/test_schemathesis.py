"""schemathesis against `make serve` with the committed docs/openapi.json: every check, zero failures.

The server runs in its own process (`python -m devserver`, simulator providers, embedded moto)
on a free port, so the objects and keys the run creates never meet the other suites'. The run
is bounded and deterministic (tests/integration/schemathesis.toml: 5 examples per operation,
deterministic generation); the hooks (schemathesis_hooks.py) give schema-valid bodies a
configured provider and a fresh key alias, values the document cannot pin down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MASTER_KEY = "sk-schemathesis"
PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "AZURE_API_KEY",
    "AZURE_API_BASE",
    "AWS_ENDPOINT_URL",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in PROVIDER_VARIABLES}
    env.update(PORT=str(port), GATEWAY_MASTER_KEY=MASTER_KEY, ACCESS_LOG="0", DEVSERVER_LOG_LEVEL="WARNING")
    env["SIM_BATCH_PHASE_SECONDS"] = "0.3"
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "devserver"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make serve did not start: {log.read_text()[-5000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_schemathesis_finds_nothing(served: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        GATEWAY_MASTER_KEY=MASTER_KEY,
        SCHEMATHESIS_HOOKS="tests.integration.schemathesis_hooks",
        PYTHONPATH=str(REPO_ROOT),
    )
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "--no-color",
            "run",
            str(REPO_ROOT / "docs" / "openapi.json"),
            "--url",
            served,
            "--workers",
            "1",
            "--no-shrink",
        ],
        cwd=tmp_path,  # where schemathesis keeps its cache (.schemathesis/)
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    document = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"{operations} selected / {operations} total" in output, output[-5000:]
    assert " passed" in output and "failures" not in output.split("SUMMARY")[-1], output[-5000:]
