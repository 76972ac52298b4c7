"""`make serve` keeps its data across restarts: a file (with its content), a batch and a virtual
key made before a stop are there after the next start; FRESH starts empty."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from tests.integration.devserver_process import devserver_env, running_devserver

MASTER = {"Authorization": "Bearer sk-1234"}
INPUT = (Path(__file__).resolve().parents[2] / "examples" / "requests.jsonl").read_bytes()


def _client(url: str, key: str = "sk-1234") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def test_files_batches_and_keys_survive_a_restart(tmp_path: Path) -> None:
    env = devserver_env(tmp_path / "data")
    log = tmp_path / "devserver.log"
    with running_devserver(env, log) as server:
        assert "first start, empty" in server.banner
        master = _client(server.url)
        created = master.files.create(file=("requests.jsonl", INPUT), purpose="batch")
        batch = master.batches.create(
            input_file_id=created.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        generated = httpx.post(
            f"{server.url}/key/generate", json={"key_alias": "restart"}, headers=MASTER, timeout=30
        )
        key = generated.raise_for_status().json()["key"]
        _client(server.url, key).files.list()  # the key works before the restart

    snapshot = (tmp_path / "data" / "snapshot.json").read_text()
    assert created.id in snapshot and batch.id in snapshot
    assert "sk-1234" not in snapshot and "sim-openai-key" not in snapshot  # keys stay off disk

    with running_devserver(env, log) as server:
        assert "restored" in server.banner and str(tmp_path / "data") in server.banner
        master = _client(server.url)
        assert master.files.retrieve(created.id).filename == "requests.jsonl"
        assert master.files.content(created.id).read() == INPUT
        assert master.batches.retrieve(batch.id).input_file_id == created.id
        # The virtual key still authenticates: its hash and the pepper were both kept.
        assert _client(server.url, key).files.list().data == []

    with running_devserver({**env, "DEVSERVER_FRESH": "1"}, log) as server:
        assert "first start, empty" in server.banner
        assert _client(server.url).files.list().data == []
