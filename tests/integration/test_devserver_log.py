"""`python -m devserver` logs one line per request by default (its access log), and nothing
from the functions or their upstream calls below WARNING; SIGTERM under load ends it within
5 s, with nothing logged after its "stopping" line, and leaves books that balance."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

from tests.integration.devserver_process import devserver_env, running_devserver

INPUT = (Path(__file__).resolve().parents[2] / "examples" / "requests.jsonl").read_bytes()


def test_one_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "devserver.log"
    env = devserver_env(tmp_path / "data", DEVSERVER_DATA_DIR="none")
    with running_devserver(env, log) as server:
        response = httpx.post(
            f"{server.url}/v1/files",
            headers={"Authorization": "Bearer sk-1234"},
            data={"purpose": "batch"},
            files={"file": ("requests.jsonl", INPUT)},
            timeout=30,
        )
        assert response.status_code == 200
    # Read once the server has exited: its access line follows the response it logs. Leaving
    # out the start-up line (what the bootstrap created) and the readiness probe's /health lines.
    after = [
        line
        for line in log.read_text().splitlines()
        if "GET /health" not in line and "devserver.aws: created" not in line and "stopping" not in line
    ]
    output_after_banner = log.with_suffix(".banner").read_text().split("Ctrl-C to stop.")[1]
    assert len(after) == 1 and '"POST /v1/files HTTP/1.1" 200' in after[0], after
    assert output_after_banner.strip() == ""  # no JSON line of the function at the default level
    assert "in memory only" in server.banner


def test_metrics_log_prints_the_emf_lines_a_request_emitted_on_standard_error(tmp_path: Path) -> None:
    log = tmp_path / "devserver.log"
    env = devserver_env(tmp_path / "data", DEVSERVER_DATA_DIR="none", METRICS_LOG="1", ACCESS_LOG="0")
    with running_devserver(env, log) as server:
        response = httpx.post(
            f"{server.url}/v1/files",
            headers={"Authorization": "Bearer sk-1234"},
            data={"purpose": "batch"},
            files={"file": ("requests.jsonl", INPUT)},
            timeout=30,
        )
        assert response.status_code == 200
    emf = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"_aws"')]
    requests = [line for line in emf if line.get("Requests") and line.get("route") == "files_create"]
    assert requests and requests[0]["status_class"] == "2xx" and requests[0]["service"] == "openai-gateway"
    assert requests[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OpenAIGateway"
    calls = [line for line in emf if line.get("ProviderCalls") and line.get("provider") == "openai"]
    assert calls and calls[0]["outcome"] == "ok"  # the simulator took the file
    assert '{"_aws"' not in log.with_suffix(".banner").read_text()  # never on standard output


def test_sigterm_under_load_ends_the_server_within_5_seconds_and_stopping_is_the_last_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / "devserver.log"
    env = devserver_env(tmp_path / "data", WATCH_INTERVAL_SECONDS="0.2", DEVSERVER_READ_TIMEOUT_SECONDS="2")
    stop_load = threading.Event()
    answered: list[int] = []

    def load(url: str) -> None:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-1234", max_retries=0, timeout=10)
        while not stop_load.is_set():
            try:
                created = client.files.create(file=("requests.jsonl", INPUT), purpose="batch")
                client.batches.create(
                    input_file_id=created.id, endpoint="/v1/chat/completions", completion_window="24h"
                )
                client.batches.list(limit=5)
                answered.append(1)
            except openai.APIError:
                return  # the server went away under it

    with running_devserver(env, log) as server, ThreadPoolExecutor(6) as pool:
        process = server.process
        for _ in range(6):
            pool.submit(load, server.url)
        deadline = time.monotonic() + 60
        while len(answered) < 12:  # under load: requests in flight, the watcher busy
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        took = time.monotonic() - signalled
        stop_load.set()
    assert process.returncode == 0
    assert took < 5, f"the server took {took:.1f} s to stop"
    lines = log.read_text().splitlines()
    stopping = max(index for index, line in enumerate(lines) if "devserver: stopping" in line)
    assert lines[stopping + 1 :] == [], lines[stopping + 1 :]
    assert "Traceback" not in log.read_text()
    # What the stop under load saved: a server started on it checks its books when it stops.
    with running_devserver(env, tmp_path / "restarted.log") as restarted:
        assert "restored" in restarted.banner
