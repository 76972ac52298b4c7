# ruff: noqa: F811  (pytest fixtures imported from create_support are parameters here)
"""Idempotency-Key on the five creates, through the real handlers (moto, provider simulator)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from gateway.providers.openai.client import ProviderClient
from gateway.runtime import async_invoke, resources
from gateway.storage.s3 import s3_client
from handlers import (
    batches_create,
    files_create,
    files_list,
    keys_delete,
    keys_generate,
    keys_info,
    uploads_complete,
    uploads_create,
)

from devserver.simulator import Simulator
from tests.unit.conftest import call, event
from tests.unit.fault_injection.create_support import (
    LINE,
    ShortContext,
    TableFaults,
    file_event,
    gateway,  # noqa: F401  (fixture)
    items,
    sim,  # noqa: F401  (fixture)
    with_key,
)
from tests.unit.test_uploads import add


def _generate(key: str | None, body: dict[str, Any]) -> tuple[int, Any, dict[str, list[str]]]:
    return call(keys_generate.handler, with_key(event("POST", "/key/generate", body=body), key))


def _batch(file_id: str, key: str | None, api_key: str, **fields: Any) -> tuple[int, Any, Any]:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    return call(batches_create.handler, with_key(event("POST", "/v1/batches", body=body, key=api_key), key))


def _tenant(alias: str) -> str:
    status, generated, _ = _generate(None, {"key_alias": alias})
    assert status == 200
    return str(generated["key"])


def test_same_key_same_request_replays_the_first_answer(gateway: Simulator) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    first = call(files_create.handler, file_event(filename, LINE, key="same"))
    again = call(files_create.handler, file_event(filename, LINE, key="same"))  # another boundary
    assert first[0] == again[0] == 200 and first[1] == again[1]
    uploaded = [f for f in list(gateway.state.files.values()) if f.filename.endswith("." + filename)]
    assert len(uploaded) == 1
    before = len(gateway.state.batches)
    batches = [_batch(first[1]["id"], "b-same", "sk-test-master", metadata={"n": "1"}) for _ in range(3)]
    assert {status for status, _, _ in batches} == {200}
    assert len({body["id"] for _, body, _ in batches}) == 1
    assert batches[0][1]["metadata"] == {"n": "1"}
    assert len(gateway.state.batches) == before + 1


def test_same_key_other_request_is_409_not_retried(gateway: Simulator) -> None:
    status, created, _ = call(files_create.handler, file_event("a.jsonl", LINE, key="reuse"))
    assert status == 200
    status, error, headers = call(files_create.handler, file_event("b.jsonl", LINE, key="reuse"))
    assert status == 409 and error["error"]["code"] == "idempotency_key_reused"
    assert error["error"]["type"] == "invalid_request_error" and headers["x-should-retry"] == ["false"]
    assert _batch(created["id"], "reuse-b", "sk-test-master")[0] == 200
    status, error, _ = _batch(created["id"], "reuse-b", "sk-test-master", metadata={"other": "body"})
    assert status == 409 and error["error"]["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_caller(gateway: Simulator) -> None:
    tenant_a, tenant_b = _tenant("a"), _tenant("b")
    created = [
        call(files_create.handler, file_event("same.jsonl", LINE, key="shared", api_key=api_key))
        for api_key in (tenant_a, tenant_b)
    ]
    assert [status for status, _, _ in created] == [200, 200]
    assert created[0][1]["id"] != created[1][1]["id"]


def test_stored_under_the_tables_key_with_a_24_hour_ttl(gateway: Simulator) -> None:
    assert _generate("ttl", {"key_alias": "ttl"})[0] == 200
    [record] = [item for item in items() if item["pk"].startswith("idempotency#")]
    assert record["pk"].startswith("idempotency#keys_generate#")
    assert "kind" not in record  # stays out of the list indexes
    assert abs(record["ttl"] - (time.time() + 24 * 3600)) < 60
    assert record["status"] == "COMPLETED"


def test_key_generate_replays_the_key_without_storing_it(gateway: Simulator) -> None:
    status, first, _ = _generate("gen", {"key_alias": "replayed"})
    status_again, again, _ = _generate("gen", {"key_alias": "replayed"})
    assert status == status_again == 200 and first == again
    assert not any(first["key"] in str(item) for item in items())  # only its hash is stored
    status, info, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": first["key"]}))
    assert status == 200 and info["info"]["key_alias"] == "replayed"


def test_a_failed_attempt_is_not_replayed(gateway: Simulator) -> None:
    assert _generate(None, {"key_alias": "taken"})[0] == 200
    status, error, _ = _generate("after-fix", {"key_alias": "taken"})
    assert status == 400, error
    assert call(keys_delete.handler, event("POST", "/key/delete", body={"key_aliases": ["taken"]}))[0] == 200
    status, generated, _ = _generate("after-fix", {"key_alias": "taken"})
    assert status == 200 and generated["key_alias"] == "taken"


def test_uploads_create_and_complete_replay(gateway: Simulator) -> None:
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    transfers: list[dict[str, Any]] = []
    async_invoke.use_local_runner(lambda name, payload: transfers.append(payload))
    try:
        _upload_and_complete_twice()
    finally:
        async_invoke.use_local_runner(None)
        s3_client.cache_clear()
    assert len(transfers) == 1  # the replay started no second transfer


def _upload_and_complete_twice() -> None:
    body = {"bytes": len(LINE), "filename": "u.jsonl", "mime_type": "application/jsonl", "purpose": "batch"}
    created = [
        call(uploads_create.handler, with_key(event("POST", "/v1/uploads", body=body), "up"))
        for _ in range(2)
    ]
    assert created[0][0] == 200 and created[0][1] == created[1][1]
    upload_id = created[0][1]["id"]
    status, part = add(upload_id, LINE)
    assert status == 200
    completes = [
        call(
            uploads_complete.handler,
            with_key(
                event(
                    "POST",
                    f"/v1/uploads/{upload_id}/complete",
                    resource="/v1/uploads/{upload_id}/complete",
                    path_parameters={"upload_id": upload_id},
                    body={"part_ids": [part["id"]]},
                ),
                "done",
            ),
        )
        for _ in range(2)
    ]
    assert [status for status, _, _ in completes] == [200, 200]  # without the key the second is a 400
    assert completes[0][1] == completes[1][1] and completes[0][1]["status"] == "completed"


def test_bad_key_is_400(gateway: Simulator) -> None:
    status, error, _ = _generate("x" * 256, {})
    assert status == 400 and error["error"]["param"] == "Idempotency-Key"


def test_a_concurrent_duplicate_is_told_to_retry(gateway: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    release, entered = threading.Event(), threading.Event()
    real = ProviderClient.create_file

    def slow(self: ProviderClient, **kwargs: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return real(self, **kwargs)

    monkeypatch.setattr(ProviderClient, "create_file", slow)
    results: list[Any] = []
    first = threading.Thread(
        target=lambda: results.append(call(files_create.handler, file_event("c.jsonl", LINE, key="busy")))
    )
    first.start()
    assert entered.wait(10)
    status, error, headers = call(files_create.handler, file_event("c.jsonl", LINE, key="busy"))
    release.set()
    first.join(10)
    assert status == 409 and error["error"]["code"] == "idempotency_key_in_use"
    assert headers["x-should-retry"] == ["true"] and headers["Retry-After"] == ["1"]
    assert results[0][0] == 200
    assert call(files_create.handler, file_event("c.jsonl", LINE, key="busy"))[1] == results[0][1]


def test_key_generate_retried_after_its_answer_was_lost_gives_the_stored_key(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    table_faults = TableFaults(monkeypatch)
    table_faults.fail("update_item", "idempotency#")
    request = with_key(event("POST", "/key/generate", body={"key_alias": "lost"}), "gen-lost")
    assert keys_generate.handler(request, ShortContext())["statusCode"] == 503
    time.sleep(0.01)
    status, generated, _ = _generate("gen-lost", {"key_alias": "lost"})
    assert status == 200, generated
    assert [r["key_alias"] for r in items() if r["pk"].startswith("key#")] == ["lost"]  # one key
    assert call(files_list.handler, event("GET", "/v1/files", key=generated["key"]))[0] == 200


def test_an_idempotency_key_reused_after_a_day_never_brings_back_a_deleted_key(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, first, _ = _generate("gen-day", {"key_alias": "daily"})
    assert status == 200
    assert call(keys_delete.handler, event("POST", "/key/delete", body={"keys": [first["key"]]}))[0] == 200
    for item in items():  # a day later: the table's TTL removed the Idempotency-Key's record
        if item["pk"].startswith("idempotency#"):
            boto3.client("dynamodb").delete_item(
                TableName=resources.DEFAULT_TABLE_NAME, Key={"pk": {"S": item["pk"]}}
            )
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 24 * 3600 + 5)
    status, second, _ = _generate("gen-day", {"key_alias": "daily"})
    assert status == 200 and second["key"] != first["key"]
    assert call(files_list.handler, event("GET", "/v1/files", key=first["key"]))[0] == 401


def _idempotency_records_expire() -> None:
    """A day later: every Idempotency-Key record has expired, still in the table (DynamoDB's TTL
    deletes within days). Their expiry moves back, as Powertools reads it from the wall clock."""
    for item in items():
        if item["pk"].startswith("idempotency#"):
            boto3.client("dynamodb").update_item(
                TableName=resources.DEFAULT_TABLE_NAME,
                Key={"pk": {"S": item["pk"]}},
                UpdateExpression="SET #t = :past",
                ExpressionAttributeNames={"#t": resources.TABLE_TTL_ATTRIBUTE},
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 10)}},
            )


def test_a_key_reused_after_its_lifetime_with_another_request_makes_new_objects(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, first_file, _ = call(files_create.handler, file_event("day-a.jsonl", LINE, key="day-file"))
    assert status == 200
    status, first_batch, _ = _batch(first_file["id"], "day-batch", "sk-test-master", metadata={"v": "1"})
    assert status == 200
    _idempotency_records_expire()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 24 * 3600 + 5)
    status, second_file, _ = call(files_create.handler, file_event("day-b.jsonl", LINE, key="day-file"))
    assert status == 200, second_file
    assert second_file["id"] != first_file["id"] and second_file["filename"] == "day-b.jsonl"
    status, second_batch, _ = _batch(first_file["id"], "day-batch", "sk-test-master", metadata={"v": "2"})
    assert status == 200, second_batch
    assert second_batch["id"] != first_batch["id"] and second_batch["metadata"] == {"v": "2"}


def test_a_key_reused_after_its_lifetime_on_a_bad_file_makes_a_new_failed_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch failed at create (its file has a batch error) takes the same Idempotency-Key rule:
    after the key's lifetime, another request with that key is a new batch, not a 409."""
    status, bad_file, _ = call(files_create.handler, file_event("dup.jsonl", LINE + LINE, key="dup-file"))
    assert status == 200, bad_file
    status, first, _ = _batch(bad_file["id"], "dup-batch", "sk-test-master", metadata={"v": "1"})
    assert status == 200 and first["status"] == "failed", first
    _idempotency_records_expire()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 24 * 3600 + 5)
    status, second, _ = _batch(bad_file["id"], "dup-batch", "sk-test-master", metadata={"v": "2"})
    assert status == 200, second
    assert second["id"] != first["id"] and second["status"] == "failed" and second["metadata"] == {"v": "2"}
