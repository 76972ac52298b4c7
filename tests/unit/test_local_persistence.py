"""devserver.persistence: the simulator's records across a restart (a batch stopped mid-way
finishes after it), DynamoDB's binary values through the JSON snapshot, both halves as one
generation (a save interrupted between them, a kill before the commit, an older directory
whose simulator half lacks a batch) and a restore that keeps aside an item moto refuses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest
from gateway.runtime import resources

from devserver import LocalGateway, start_gateway
from devserver.persistence import AwsSnapshot, LocalData, SimulatorSnapshot, _encode_binary
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


def test_vertex_jobs_and_their_cloud_storage_objects_survive_a_restart(tmp_path: Path) -> None:
    storage = tmp_path / "simulator"
    first = _simulator(storage)
    try:
        first.google.gcs.write_uri("gs://sim-vertex-batches/in.jsonl", b'{"request": {}}\n')
        body = {
            "displayName": "kept",
            "model": "publishers/google/models/gemini-2.5-flash",
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": ["gs://sim-vertex-batches/in.jsonl"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": "gs://sim-vertex-batches/out"},
            },
        }
        job = first.google.vertex.create("sim-project", "us-central1", body)
        records = SimulatorSnapshot.capture(first)
    finally:
        first.stop()
    second = _simulator(storage)
    try:
        SimulatorSnapshot.restore(second, records)
        job_id = job["name"].rsplit("/", 1)[1]
        assert second.google.vertex.get("sim-project", "us-central1", job_id)["displayName"] == "kept"
        assert second.google.gcs.read_uri("gs://sim-vertex-batches/in.jsonl") == b'{"request": {}}\n'
    finally:
        second.stop()


def test_binary_attribute_values_survive_the_json_snapshot() -> None:
    item = {"pk": {"S": "a"}, "blob": {"B": b"\x00\xff"}, "nested": {"M": {"x": {"BS": [b"1", b"2"]}}}}
    assert _encode_binary(json.loads(json.dumps(_encode_binary(item)))) == item


# -- the two halves as one generation, and a restore that survives a bad item --------------


def _gateway(data: Path, monkeypatch: pytest.MonkeyPatch) -> LocalGateway:
    """A start of `make serve` on `data`, with nothing in memory from an earlier one: moto's
    backends live in this process, as they live in the devserver's."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return start_gateway(provider_env={}, simulator_phase_seconds=60, data_dir=data, watch_interval_seconds=0)


def _gateway_client(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_base, api_key=gateway.master_key, max_retries=0, timeout=30)


def _new_batch(client: openai.OpenAI) -> str:
    uploaded = client.files.create(file=("in.jsonl", LINES), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id


def _killed(gateway: LocalGateway) -> None:
    """Stop as a kill would: no last save."""
    assert gateway.local_data is not None
    gateway.local_data.save = lambda **_: None  # type: ignore[method-assign,misc,assignment]
    gateway.stop()


def _table_batches(gateway: LocalGateway) -> dict[str, str]:
    """gateway batch id -> the provider's batch id, as the restored table holds them."""
    dynamodb = boto3.client("dynamodb", endpoint_url=gateway.aws_endpoint_url)
    items = dynamodb.scan(TableName=resources.DEFAULT_TABLE_NAME)["Items"]
    return {
        item["pk"]["S"]: item["upstream_id"]["S"]
        for item in items
        if item.get("kind", {}).get("S") == "batch" and "upstream_id" in item
    }


def test_a_batch_made_while_a_save_is_between_its_halves_leaves_no_gateway_row_without_its_provider_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    gateway = _gateway(data, monkeypatch)
    try:
        client = _gateway_client(gateway)
        before = _new_batch(client)
        between: list[str] = []
        read_aws_half = AwsSnapshot.capture

        def aws_half_then_a_batch(self: AwsSnapshot, *args: Any) -> dict[str, Any] | None:
            half = read_aws_half(self, *args)
            between.append(_new_batch(client))  # a request served between the two halves
            return half

        monkeypatch.setattr(AwsSnapshot, "capture", aws_half_then_a_batch)
        assert gateway.local_data is not None
        gateway.local_data.save()
        monkeypatch.setattr(AwsSnapshot, "capture", read_aws_half)
    finally:
        _killed(gateway)
    assert between

    gateway = _gateway(data, monkeypatch)
    try:
        assert gateway.simulator is not None
        rows = _table_batches(gateway)
        assert before in rows
        missing = {
            row: upstream for row, upstream in rows.items() if upstream not in gateway.simulator.state.batches
        }
        assert missing == {}
        client = _gateway_client(gateway)
        for batch_id in rows:
            assert client.batches.retrieve(batch_id).status in ("validating", "in_progress")
    finally:
        gateway.stop()


def test_a_kill_before_the_snapshot_is_committed_restores_the_previous_generation_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    gateway = _gateway(data, monkeypatch)
    try:
        client = _gateway_client(gateway)
        kept = _new_batch(client)
        assert gateway.local_data is not None
        gateway.local_data.save()
        lost = _new_batch(client)

        def killed_before_commit(self: LocalData, state: dict[str, Any]) -> None:
            raise KeyboardInterrupt  # the process dies with the simulator's half written

        monkeypatch.setattr(LocalData, "_commit", killed_before_commit)
        with pytest.raises(KeyboardInterrupt):
            gateway.local_data.save()
        monkeypatch.undo()
        lost_upstream = _table_batches(gateway)[lost]
    finally:
        _killed(gateway)
    assert len(list((data / "simulator").glob("records-*.pickle"))) == 2  # the new one, uncommitted

    gateway = _gateway(data, monkeypatch)
    try:
        assert gateway.simulator is not None
        rows = _table_batches(gateway)
        assert kept in rows and lost not in rows
        assert lost_upstream not in gateway.simulator.state.batches  # the same generation on both sides
        assert all(upstream in gateway.simulator.state.batches for upstream in rows.values())
    finally:
        gateway.stop()


def test_a_batch_an_older_data_directory_saved_without_its_simulator_record_ends_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    gateway = _gateway(data, monkeypatch)
    try:
        batch_id = _new_batch(_gateway_client(gateway))
        assert gateway.local_data is not None
        gateway.local_data.save()
    finally:
        _killed(gateway)
    # The layout before snapshot.json, the AWS half saved seconds after the simulator's: the
    # simulator's records end before the batch was made.
    manifest = json.loads((data / "snapshot.json").read_text())
    legacy = {"version": 1, **manifest["aws"]}
    (data / "aws" / "state.json").write_text(json.dumps(legacy))
    (data / "snapshot.json").unlink()
    for records in (data / "simulator").glob("records-*.pickle"):
        records.unlink()

    gateway = _gateway(data, monkeypatch)
    try:
        assert gateway.local_data is not None and gateway.local_data.restored.repaired == 1
        batch = _gateway_client(gateway).batches.retrieve(batch_id)
        assert batch.status == "failed"
        assert batch.errors is not None and batch.errors.data
        assert batch.errors.data[0].code == "batch_lost"
    finally:
        gateway.stop()


def test_a_restore_keeps_aside_an_item_moto_refuses_and_restores_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    gateway = _gateway(data, monkeypatch)
    try:
        client = _gateway_client(gateway)
        batch_id = _new_batch(client)
        assert gateway.local_data is not None
        gateway.local_data.save()
    finally:
        _killed(gateway)
    manifest = json.loads((data / "snapshot.json").read_text())
    overflow = {"pk": {"S": "budget#overflow"}, "max_budget": {"N": "1e200"}}
    manifest["aws"]["items"].insert(0, overflow)  # in the first BatchWriteItem chunk
    (data / "snapshot.json").write_text(json.dumps(manifest))

    gateway = _gateway(data, monkeypatch)
    try:
        assert gateway.local_data is not None
        restored = gateway.local_data.restored
        assert restored.refused == 1 and restored.items == len(manifest["aws"]["items"]) - 1
        assert _gateway_client(gateway).batches.retrieve(batch_id).id == batch_id
        (kept_aside,) = (data / "refused").glob("restore-*.json")
        refused = json.loads(kept_aside.read_text())
        assert [entry["item"] for entry in refused["items"]] == [overflow]
        assert "ValidationException" in refused["items"][0]["reason"]
    finally:
        gateway.stop()


def test_a_stop_ends_the_front_end_watcher_queue_and_async_work_before_the_last_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devserver.local_queue import LocalDelayQueue
    from devserver.server import HttpFrontEnd, LocalAsyncRunner
    from devserver.watcher import LocalWatcher

    order: list[str] = []

    def record(name: str, cls: type, method: str) -> None:
        call = getattr(cls, method)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            if "abandon" not in kwargs:  # not a periodic save
                order.append(name)
            return call(*args, **kwargs)

        monkeypatch.setattr(cls, method, recorded)

    record("front end", HttpFrontEnd, "stop")
    record("watcher", LocalWatcher, "stop")
    record("webhook queue", LocalDelayQueue, "stop")
    record("async", LocalAsyncRunner, "wait")
    record("last save", LocalData, "save")
    record("simulator", Simulator, "stop")
    gateway = _gateway(tmp_path / "data", monkeypatch)
    order.clear()  # what the start did
    gateway.stop()
    assert order == ["front end", "watcher", "webhook queue", "async", "last save", "simulator"]


def test_a_snapshot_naming_a_deleted_simulator_pickle_still_starts(tmp_path: Path) -> None:
    manifest = {"version": 2, "generation": 3, "aws": None, "simulator_records": "records-00000003.pickle"}
    (tmp_path / "snapshot.json").write_text(json.dumps(manifest))
    data = LocalData(tmp_path)
    assert data.restored.empty
    data.save()  # the next generation
    assert json.loads((tmp_path / "snapshot.json").read_text())["generation"] == 4


def test_the_banner_says_what_a_restore_refused_and_repaired(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from devserver.__main__ import _data_lines
    from devserver.persistence import Restored

    data = SimpleNamespace(directory=tmp_path, restored=Restored(items=5, refused=1, repaired=2))
    lines = "\n".join(_data_lines(SimpleNamespace(local_data=data, embedded_moto=True)))  # type: ignore[arg-type]
    assert "restored 5 table items" in lines
    assert f"1 item(s) moto refused, kept in {tmp_path / 'refused'}" in lines
    assert "2 unfinished batch(es) without a simulator record, now failed (batch_lost)" in lines
