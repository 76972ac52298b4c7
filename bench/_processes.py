"""Subprocesses for the benchmarks: start one with its output in a log, wait until it serves, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 90.0

# Variables that would point a started gateway at something other than what a bench starts.
SCRUBBED_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "AZURE_API_KEY",
    "AZURE_API_BASE",
    "AZURE_API_VERSION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "GATEWAY_MASTER_KEY",
    "SIM_BATCH_PHASE_SECONDS",
    "PORT",
)


def clean_environment() -> dict[str, str]:
    """This process's environment without SCRUBBED_ENV, unbuffered output for the logs."""
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the process does not exit."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def spawn(name: str, args: list[str], env: Mapping[str, str], logdir: Path) -> Process:
    """`python <args>` from the repository root, stdout and stderr into logdir/<name>.log."""
    log = logdir / f"{name}.log"
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


def wait_until(process: Process, ready: Callable[[], bool], timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.output()[-3000:]}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{process.name} did not start within {timeout:.0f} s:\n{process.output()[-3000:]}")


def http_ready(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    return ready
