"""devserver.persistence: the simulator's records across a restart (a batch stopped mid-way
finishes after it), and DynamoDB's binary values through the JSON snapshot."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai

from devserver.persistence import SimulatorSnapshot, _encode_binary
from devserver.simulator import Simulator, SimulatorConfig

LINES = b"".join(
    json.dumps(
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
    ).encode()
    + b"\n"
    for i in range(3)
)


def _simulator(storage: Path) -> Simulator:
    return Simulator(SimulatorConfig(port=0, batch_phase_seconds=0.3, storage_dir=str(storage))).start()


def _client(simulator: Simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=simulator.openai_api_base, api_key="sim-openai-key", max_retries=0)


def test_a_batch_stopped_while_validating_finishes_after_the_restart(tmp_path: Path) -> None:
    storage = tmp_path / "simulator"
    first = _simulator(storage)
    try:
        client = _client(first)
        uploaded = client.files.create(file=("in.jsonl", LINES), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        with first.state.lock:
            first.state.batches[batch.id].validation = None  # as if stopped before the pass ran
        records = SimulatorSnapshot.capture(first)
    finally:
        first.stop()

    second = _simulator(storage)
    try:
        files, batches = SimulatorSnapshot.restore(second, records)
        assert (files, batches) == (1, 1)
        client = _client(second)
        assert client.files.content(uploaded.id).read() == LINES
        deadline = time.monotonic() + 20
        while (current := client.batches.retrieve(batch.id)).status != "completed":
            assert time.monotonic() < deadline, current.status
            time.sleep(0.1)
        output = client.files.content(current.output_file_id or "").text.splitlines()
        assert sorted(json.loads(line)["custom_id"] for line in output) == ["r0", "r1", "r2"]
        # New ids do not reuse the restored records' sequence numbers (list order stays right).
        newer = client.files.create(file=("new.jsonl", LINES), purpose="batch")
        assert client.files.list().data[0].id == newer.id
    finally:
        second.stop()


def test_binary_attribute_values_survive_the_json_snapshot() -> None:
    item = {"pk": {"S": "a"}, "blob": {"B": b"\x00\xff"}, "nested": {"M": {"x": {"BS": [b"1", b"2"]}}}}
    assert _encode_binary(json.loads(json.dumps(_encode_binary(item)))) == item
