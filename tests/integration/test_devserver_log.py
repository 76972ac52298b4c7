"""`python -m devserver` logs one line per request by default (its access log), and nothing
from the functions or their upstream calls below WARNING."""

from __future__ import annotations

from pathlib import Path

import httpx

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
