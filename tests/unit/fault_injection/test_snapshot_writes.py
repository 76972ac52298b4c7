"""Snapshot writes (IdMap.save_object / save_if_changed): conditional on the item existing
whole, and a status only moves forward. A lost condition is not the client's error: it is
served the newer stored object, or a 404 for an object deleted meanwhile."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway.errors import NotFoundError
from gateway.http.auth import MASTER
from gateway.service import batches, files, translate
from gateway.storage.id_map import IdMap
from gateway.storage.status_rank import rank

from tests.unit.conftest import store_file
from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.fault_injection.providers import FakeProvider, store_batch


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    for module in (files, batches, translate):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


def raw_item(gateway_id: str) -> dict[str, object] | None:
    table = IdMap().table
    return boto3.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": gateway_id}}).get("Item")


def test_statuses_are_ranked_forward() -> None:
    assert rank("batch", "validating") < rank("batch", "in_progress") < rank("batch", "finalizing")
    assert rank("batch", "finalizing") < rank("batch", "completed") == rank("batch", "cancelled")
    assert rank("file", "uploaded") < rank("file", "processed") == rank("file", "error")
    assert rank("upload", "pending") < rank("upload", "completing") < rank("upload", "completed")


def test_a_deleted_object_stays_deleted(aws: None) -> None:
    store_file("file-a")
    id_map = IdMap()
    record = id_map.get("file-a")
    assert record is not None
    id_map.delete(record)
    record.object = {**record.object, "bytes": 99}
    with pytest.raises(NotFoundError) as missing:
        id_map.save_object(record)
    assert (missing.value.message, missing.value.param) == ("No such File object: file-a", "id")
    assert raw_item("file-a") is None  # no half item without kind or ttl


def test_an_older_snapshot_never_overwrites_a_newer_status(
    aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider()
    batch_id = store_batch(provider, 1, "in_progress")
    id_map = IdMap()
    older, newer = id_map.get(batch_id), id_map.get(batch_id)
    assert older is not None and newer is not None
    newer.object = {**newer.object, "status": "completed"}
    assert id_map.save_object(newer)
    older.object = {**older.object, "status": "finalizing"}
    assert not id_map.save_object(older)
    assert older.object["status"] == "completed"  # the record now holds what is stored
    assert ("a newer snapshot is stored; serving it", batch_id) in [
        (r.getMessage(), getattr(r, "id", None)) for r in caplog.records
    ]
    stored = id_map.get(batch_id)
    assert stored is not None and stored.status == "completed"


def test_a_snapshot_of_the_same_rank_is_written(aws: None) -> None:
    provider = FakeProvider()
    batch_id = store_batch(provider, 1, "in_progress")
    id_map = IdMap()
    record = id_map.get(batch_id)
    assert record is not None
    record.object = {**record.object, "request_counts": {"total": 2, "completed": 1, "failed": 0}}
    assert id_map.save_object(record)
    stored = id_map.get(batch_id)
    assert stored is not None and stored.object["request_counts"]["completed"] == 1


def test_a_retrieve_that_read_an_older_provider_view_serves_the_newer_stored_state(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two retrieves race: the first stored `completed`; the second read `in_progress` (the
    provider answered it earlier) and must neither overwrite nor answer the older status."""
    batch_id = store_batch(provider, 1, "in_progress")
    real_get = IdMap.get

    def read_then_race(self: IdMap, gateway_id: str) -> object:
        record = real_get(self, gateway_id)
        newer = real_get(self, gateway_id)
        assert newer is not None
        newer.object = {**newer.object, "status": "completed"}
        self.save_object(newer)  # the other retrieve's write lands now
        return record

    monkeypatch.setattr(IdMap, "get", read_then_race)
    batch = batches.retrieve_batch(MASTER, batch_id)
    monkeypatch.undo()
    assert batch.status == "completed"
    stored = IdMap().get(batch_id)
    assert stored is not None and stored.status == "completed"


def test_a_file_deleted_during_its_retrieve_is_404_and_stays_deleted(provider: FakeProvider) -> None:
    store_file("file-a")
    provider.files["up-file-a"] = {
        "id": "up-file-a",
        "object": "file",
        "bytes": 4,  # changed upstream: the retrieve writes a snapshot
        "created_at": 1000,
        "filename": "a.jsonl",
        "purpose": "batch",
        "status": "processed",
    }
    provider.on_retrieve_file = lambda: IdMap().delete(IdMap().get("file-a"))  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        files.retrieve_file(MASTER, "file-a")
    assert raw_item("file-a") is None


def test_fails_at_the_snapshot_write(faults: DynamoFaults, provider: FakeProvider) -> None:
    batch_id = store_batch(provider, 1, "in_progress")
    provider.batches["up-batch-1"]["status"] = "finalizing"
    faults.fail("UpdateItem", 1)
    with pytest.raises(ClientError):
        batches.retrieve_batch(MASTER, batch_id)
    assert batches.retrieve_batch(MASTER, batch_id).status == "finalizing"  # the retry
    stored = IdMap().get(batch_id)
    assert stored is not None and stored.status == "finalizing"
