"""`python -m devserver` (what `make serve` runs) as a subprocess on free ports, for the suites
that need the real command: the README examples and the restart test.

Its books (gateway.service.books) are read from this process through its embedded moto server
(the banner's "AWS endpoint" and "DynamoDB table"), with a client of their own: this process's
cached client and settings (an in-process gateway's) are not touched. `running_devserver`
checks them when its block ends with the server still up: no violation that was not there when
a server first started on that data directory (a restart's restore is the test's, too). The
server's clock cannot be moved from here and it has no call to run a watcher pass: the books
are read at the real time, so what converges within a pass (a finished batch's settlement, an
outbox event) has its one-pass grace; its watcher runs every WATCH_INTERVAL_SECONDS meanwhile."""

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

import boto3
import httpx
from gateway.service import books
from gateway.storage.id_map import IdMap

from devserver import REPO_ROOT
from devserver.aws import DEFAULT_REGION, DUMMY_CREDENTIALS
from tests import books_check

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
BANNER_END = "Ctrl-C to stop."
_NOT_INHERITED_PREFIXES = ("OPENAI_", "AZURE_", "AWS_", "GATEWAY_", "SIM_", "DEVSERVER_", "POWERTOOLS_")
_NOT_INHERITED = frozenset({"LOG_LEVEL", "ACCESS_LOG", "PORT"})
# The books a server found when it first started on a data directory (by its path), in this session.
_BOOKS_AT_FIRST_START: dict[str, dict[str, list[str]]] = {}


@dataclass(frozen=True)
class ServerProcess:
    url: str  # http://127.0.0.1:<PORT>
    port: int
    simulator_url: str
    banner: str
    process: subprocess.Popen[bytes]
    aws_endpoint_url: str  # its embedded moto server
    table_name: str

    def books(self) -> dict[str, list[str]]:
        """Every books invariant over its table, now: the violations (empty when they balance)."""
        client = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=self.aws_endpoint_url,
            region_name=DEFAULT_REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        return books.audit(IdMap(self.table_name, client=client))

    def new_books_violations(self, before: Mapping[str, list[str]]) -> dict[str, list[str]]:
        """The violations not in `before`, each confirmed by a second read: the server keeps
        working meanwhile (its watcher, async transfers), and a Scan and the watcher's queries
        read one after the other can straddle a step it takes."""
        found = books_check.new_violations(self.books(), dict(before))
        if not found:
            return found
        again = books_check.new_violations(self.books(), dict(before))
        confirmed = {name: sorted(set(ids) & set(again.get(name, ()))) for name, ids in found.items()}
        return {name: ids for name, ids in confirmed.items() if ids}


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
    """Start `python -m devserver`, wait until it answers /health, stop it with SIGTERM. When the
    block ends without an error and the server still runs (a test that stops it checks the books
    on its next start), its books balance but for what they had at the directory's first start."""
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
            server = _server_process(process, port, banner_path.read_text())
            before = _books_at_first_start(server, env)
            yield server
            if process.poll() is None:
                found = server.new_books_violations(before)
                assert not found, books_check.failure(found)
        finally:
            stop(process)


def _server_process(process: subprocess.Popen[bytes], port: int, banner: str) -> ServerProcess:
    fields = {
        name: re.search(pattern, banner)
        for name, pattern in (
            ("simulator", r"Provider simulator\s+(http://\S+)"),
            ("aws", r"AWS endpoint\s+(http://\S+)"),
            ("table", r"DynamoDB table\s+(\S+)"),
        )
    }
    missing = [name for name, found in fields.items() if found is None]
    assert not missing, f"no {missing} in the banner:\n{banner}"
    simulator, aws, table = (found.group(1) for found in fields.values() if found is not None)
    return ServerProcess(f"http://127.0.0.1:{port}", port, simulator, banner, process, aws, table)


def _books_at_first_start(server: ServerProcess, env: Mapping[str, str]) -> dict[str, list[str]]:
    """The books at this start, or at the first start on its data directory (FRESH empties it:
    a first start again)."""
    data_dir = env.get("DEVSERVER_DATA_DIR", "")
    if data_dir.lower() in ("", "none"):
        return server.books()
    if data_dir not in _BOOKS_AT_FIRST_START or env.get("DEVSERVER_FRESH") == "1":
        _BOOKS_AT_FIRST_START[data_dir] = server.books()
    return _BOOKS_AT_FIRST_START[data_dir]


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
