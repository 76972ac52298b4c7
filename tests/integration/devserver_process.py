"""`python -m devserver` (what `make serve` runs) as a subprocess on free ports, for the suites
that need the real command: the README examples and the restart test."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devserver import REPO_ROOT

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
BANNER_END = "Ctrl-C to stop."
_NOT_INHERITED_PREFIXES = ("OPENAI_", "AZURE_", "AWS_", "GATEWAY_", "SIM_", "DEVSERVER_", "POWERTOOLS_")
_NOT_INHERITED = frozenset({"LOG_LEVEL", "ACCESS_LOG", "PORT"})


@dataclass(frozen=True)
class ServerProcess:
    url: str  # http://127.0.0.1:<PORT>
    port: int
    simulator_url: str
    banner: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def devserver_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a devserver on free ports with the simulator (no provider keys), as
    a developer's shell has it: without what an in-process gateway of this test session put
    into os.environ (the functions' settings, LOG_LEVEL, AWS endpoint)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_NOT_INHERITED_PREFIXES) and name not in _NOT_INHERITED
    }
    env.update(
        PORT=str(free_port()),
        SIM_PORT=str(free_port()),
        DEVSERVER_DATA_DIR=str(data_dir),
        SIM_BATCH_PHASE_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def running_devserver(env: Mapping[str, str], log_path: Path) -> Iterator[ServerProcess]:
    """Start `python -m devserver`, wait until it answers /health, stop it with SIGTERM."""
    port = int(env["PORT"])
    banner_path = log_path.with_suffix(".banner")
    with open(log_path, "ab") as log, open(banner_path, "wb") as banner_out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devserver"],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=banner_out,
            stderr=log,
        )
        try:
            _wait_until_up(process, port, log_path, banner_path)
            banner = banner_path.read_text()
            simulator = re.search(r"Provider simulator\s+(http://\S+)", banner)
            assert simulator, f"no simulator in the banner:\n{banner}"
            yield ServerProcess(f"http://127.0.0.1:{port}", port, simulator.group(1), banner, process)
        finally:
            stop(process)


def _wait_until_up(process: subprocess.Popen[bytes], port: int, log_path: Path, banner_path: Path) -> None:
    """Until it answers /health and has printed its whole banner (which comes just after)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"devserver exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            healthy = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and BANNER_END in banner_path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"devserver did not answer within {START_TIMEOUT_SECONDS}s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as Ctrl-C or a process manager would: the server saves its data and exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
