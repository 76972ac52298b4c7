"""Uploads API handlers and the transfer function, against moto and the provider simulator."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from gateway import routes
from gateway.providers import registry
from gateway.runtime import async_invoke, resources
from gateway.runtime.settings import reset_settings
from gateway.storage.id_map import IdMap
from gateway.storage.s3 import s3_client
from handlers import (
    batches_create,
    file_transfer,
    files_content,
    files_retrieve,
    keys_generate,
    uploads_add_part,
    uploads_cancel,
    uploads_complete,
    uploads_create,
)
from openai.types.uploads import UploadPart

from devserver.apigw import ApiGateway
from devserver.simulator import Simulator, SimulatorConfig
from tests.unit.conftest import MASTER_KEY, FakeContext, call, event

BUCKET = resources.DEFAULT_BUCKET_NAME


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(batch_phase_seconds=0.2, azure_file_processing_seconds=0)) as s:
        yield s


@pytest.fixture
def gateway(aws: None, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """moto with the bucket, providers pointed at the simulator; yields the async invocations."""
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {
            "openai": {"type": "openai", "api_base": sim.openai_api_base},
            "azure": {"type": "azure", "api_base": sim.azure_api_base},
        }
    )
    reset_settings()
    registry.reset_clients()
    s3_client.cache_clear()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET,
        SecretString=json.dumps({"openai": "sim-openai-key", "azure": "sim-azure-key"}),
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    invoked: list[dict[str, Any]] = []
    async_invoke.use_local_runner(lambda name, payload: invoked.append({"function": name, **payload}))
    try:
        yield invoked
    finally:
        async_invoke.use_local_runner(None)
        s3_client.cache_clear()


def multipart_event(upload_id: str, data: bytes, *, key: str = MASTER_KEY) -> dict[str, Any]:
    boundary = "gatewaytestboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="data"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = event(
        "POST",
        f"/v1/uploads/{upload_id}/parts",
        resource="/v1/uploads/{upload_id}/parts",
        path_parameters={"upload_id": upload_id},
        key=key,
    )
    request["headers"]["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request["multiValueHeaders"]["Content-Type"] = [request["headers"]["Content-Type"]]
    request["body"] = base64.b64encode(body).decode()
    request["isBase64Encoded"] = True
    return request


def create(size: int, *, key: str = MASTER_KEY, **fields: Any) -> dict[str, Any]:
    body = {"bytes": size, "filename": "input.jsonl", "mime_type": "application/jsonl", "purpose": "batch"}
    status, upload, _ = call(
        uploads_create.handler, event("POST", "/v1/uploads", body={**body, **fields}, key=key)
    )
    assert status == 200, upload
    return upload


def add(upload_id: str, data: bytes, *, key: str = MASTER_KEY) -> tuple[int, dict[str, Any]]:
    status, body, _ = call(uploads_add_part.handler, multipart_event(upload_id, data, key=key))
    return status, body


def upload_call(handler: Any, upload_id: str, action: str, body: Any = None, key: str = MASTER_KEY) -> Any:
    request = event(
        "POST",
        f"/v1/uploads/{upload_id}/{action}",
        resource=f"/v1/uploads/{{upload_id}}/{action}",
        path_parameters={"upload_id": upload_id},
        body=body,
        key=key,
    )
    status, answer, _ = call(handler, request)
    return status, answer


def stored_parts(upload_id: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"upload-parts/{upload_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def uploaded(chunks: list[bytes], **complete: Any) -> tuple[dict[str, Any], list[str]]:
    upload = create(sum(map(len, chunks)))
    part_ids = []
    for chunk in chunks:
        status, part = add(upload["id"], chunk)
        assert status == 200, part
        part_ids.append(part["id"])
    return upload, part_ids


def transfer(file_id: str) -> Any:
    return file_transfer.handler({"file_id": file_id}, FakeContext())["status"]


def batch_lines(start: int, count: int) -> bytes:
    """Valid batch requests (the transfer checks a batch file line by line before sending it)."""
    return b"".join(
        json.dumps(
            {
                "custom_id": f"r{index}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            }
        ).encode()
        + b"\n"
        for index in range(start, start + count)
    )


CHUNKS = [batch_lines(0, 500), batch_lines(500, 300), batch_lines(800, 7)]


def test_upload_objects_match_the_sdk_types(gateway: list[dict[str, Any]]) -> None:
    upload = create(10)
    parsed = openai.types.Upload.model_validate(upload)
    assert parsed.status == "pending" and parsed.expires_at == parsed.created_at + 3600
    assert upload["id"].startswith("upload_") and upload["file"] is None
    status, part = add(upload["id"], b"0123456789")
    assert status == 200
    parsed_part = UploadPart.model_validate(part)
    assert parsed_part.upload_id == upload["id"] and parsed_part.object == "upload.part"
    assert stored_parts(upload["id"]) == [f"upload-parts/{upload['id']}/{part['id']}"]


def test_bad_create_bodies_are_400(gateway: list[dict[str, Any]]) -> None:
    for body, param in (
        ({"bytes": -1, "filename": "a", "mime_type": "x", "purpose": "batch"}, "bytes"),
        ({"bytes": 1, "filename": "a", "mime_type": "x", "purpose": "nonsense"}, "purpose"),
        ({"bytes": 1, "filename": "a", "purpose": "batch"}, "mime_type"),
    ):
        status, error, _ = call(uploads_create.handler, event("POST", "/v1/uploads", body=body))
        assert status == 400, error
        assert error["error"]["param"] == param, (body, error)


def test_complete_then_transfer_assembles_the_parts(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    content = b"".join(CHUNKS)
    upload, part_ids = uploaded(CHUNKS)
    md5 = hashlib.md5(content).hexdigest()
    status, done = upload_call(
        uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids, "md5": md5}
    )
    assert status == 200, done
    assert done["status"] == "completed" and done["file"]["status"] == "uploaded"
    file_id = done["file"]["id"]
    assert file_id.startswith("file-") and done["file"]["bytes"] == len(content)
    assert gateway == [{"function": "file_transfer", "file_id": file_id}]

    # in transfer: retrieve says uploaded, content and batches say 409
    status, file, _ = call(files_retrieve.handler, _file_event("GET", file_id))
    assert status == 200 and file["status"] == "uploaded"
    status, error, _ = call(files_content.handler, _file_event("GET", file_id, "/content"))
    assert status == 409 and "transferred" in error["error"]["message"]
    batch = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, error, _ = call(batches_create.handler, event("POST", "/v1/batches", body=batch))
    assert status == 409 and error["error"]["code"] == "file_not_ready"

    assert transfer(file_id) == "processed"
    assert transfer(file_id) is None  # a redelivered event does nothing
    record = IdMap().get(file_id)
    assert record is not None and record.upstream_id
    assert sim.received(record.upstream_id)["sha256"] == hashlib.sha256(content).hexdigest()
    assert stored_parts(upload["id"]) == []
    status, file, _ = call(files_retrieve.handler, _file_event("GET", file_id))
    assert status == 200 and file["status"] == "processed" and file["id"] == file_id
    status, batch_body, _ = call(batches_create.handler, event("POST", "/v1/batches", body=batch))
    assert status == 200 and batch_body["input_file_id"] == file_id


def test_transfer_through_the_provider_uploads_api(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TRANSFER_SINGLE_REQUEST_MAX_BYTES", "1000")
    monkeypatch.setenv("GATEWAY_TRANSFER_PART_BYTES", "4000")  # windows cross part boundaries
    reset_settings()
    content = b"".join(CHUNKS)
    upload, part_ids = uploaded(CHUNKS)
    reordered = [part_ids[2], part_ids[0], part_ids[1]]
    md5 = hashlib.md5(CHUNKS[2] + CHUNKS[0] + CHUNKS[1]).hexdigest()
    status, done = upload_call(
        uploads_complete.handler, upload["id"], "complete", {"part_ids": reordered, "md5": md5}
    )
    assert status == 200, done
    assert transfer(done["file"]["id"]) == "processed"
    record = IdMap().get(done["file"]["id"])
    assert record is not None and record.upstream_id
    expected = hashlib.sha256(CHUNKS[2] + CHUNKS[0] + CHUNKS[1]).hexdigest()
    assert sim.received(record.upstream_id)["sha256"] == expected
    assert len(content) > 4000


@pytest.mark.parametrize("md5", [None, "0" * 32])
def test_through_the_provider_uploads_api_an_md5_is_checked_only_when_given(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch, md5: str | None
) -> None:
    """The transfer hashes what it sends only for a client's md5 (a wrong one fails the file);
    without one it sends the same bytes, unhashed."""
    monkeypatch.setenv("GATEWAY_TRANSFER_SINGLE_REQUEST_MAX_BYTES", "1000")
    monkeypatch.setenv("GATEWAY_TRANSFER_PART_BYTES", "4000")
    reset_settings()
    upload, part_ids = uploaded(CHUNKS)
    body: dict[str, Any] = {"part_ids": part_ids} | ({"md5": md5} if md5 else {})
    status, done = upload_call(uploads_complete.handler, upload["id"], "complete", body)
    assert status == 200, done
    file_id = done["file"]["id"]
    if md5:
        assert transfer(file_id) == "error"
        status, file, _ = call(files_retrieve.handler, _file_event("GET", file_id))
        assert "md5" in file["status_details"]
    else:
        assert transfer(file_id) == "processed"
        record = IdMap().get(file_id)
        assert record is not None and record.upstream_id
        assert sim.received(record.upstream_id)["sha256"] == hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    assert stored_parts(upload["id"]) == []


def test_wrong_md5_ends_in_error_and_leaves_nothing(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    upload, part_ids = uploaded(CHUNKS)
    body = {"part_ids": part_ids, "md5": "0" * 32}
    status, done = upload_call(uploads_complete.handler, upload["id"], "complete", body)
    assert status == 200
    file_id = done["file"]["id"]
    assert transfer(file_id) == "error"
    status, file, _ = call(files_retrieve.handler, _file_event("GET", file_id))
    assert status == 200 and file["status"] == "error" and "md5" in file["status_details"]
    assert stored_parts(upload["id"]) == []
    batch = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, error, _ = call(batches_create.handler, event("POST", "/v1/batches", body=batch))
    assert status == 400 and error["error"]["code"] == "file_error"


def test_bytes_mismatch_is_400_and_the_upload_stays_pending(gateway: list[dict[str, Any]]) -> None:
    upload = create(100)
    _, part = add(upload["id"], b"x" * 60)
    status, error = upload_call(
        uploads_complete.handler, upload["id"], "complete", {"part_ids": [part["id"]]}
    )
    assert status == 400 and error["error"]["code"] == "bytes_mismatch"
    assert "(60)" in error["error"]["message"] and "(100)" in error["error"]["message"]
    _, second = add(upload["id"], b"y" * 40)
    status, done = upload_call(
        uploads_complete.handler, upload["id"], "complete", {"part_ids": [part["id"], second["id"]]}
    )
    assert status == 200 and done["status"] == "completed"
    for bad in ({"part_ids": ["part_nope"]}, {"part_ids": [part["id"], part["id"]]}, {"md5": "x"}):
        other = create(60)
        add(other["id"], b"z" * 60)
        status, error = upload_call(uploads_complete.handler, other["id"], "complete", bad)
        assert status == 400, error


def test_a_transfer_that_cannot_start_is_503_and_complete_can_be_retried(
    gateway: list[dict[str, Any]],
) -> None:
    upload, part_ids = uploaded(CHUNKS)

    def refuse(name: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("Lambda Invoke throttled")

    async_invoke.use_local_runner(refuse)
    status, error = upload_call(uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids})
    assert status == 503 and error["error"]["code"] == "service_unavailable"
    assert len(stored_parts(upload["id"])) == len(CHUNKS)  # nothing lost

    async_invoke.use_local_runner(lambda name, payload: gateway.append({"function": name, **payload}))
    status, done = upload_call(uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids})
    assert status == 200 and done["status"] == "completed", done
    assert gateway == [{"function": "file_transfer", "file_id": done["file"]["id"]}]


def test_cancel_removes_parts_and_refuses_more(gateway: list[dict[str, Any]]) -> None:
    upload, part_ids = uploaded(CHUNKS)
    assert len(stored_parts(upload["id"])) == 3
    status, cancelled = upload_call(uploads_cancel.handler, upload["id"], "cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert stored_parts(upload["id"]) == []
    status, error = add(upload["id"], b"more")
    assert status == 400 and error["error"]["code"] == "upload_not_pending"
    assert "cancelled" in error["error"]["message"]
    status, error = upload_call(uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids})
    assert status == 400 and error["error"]["code"] == "upload_not_pending"
    status, again = upload_call(uploads_cancel.handler, upload["id"], "cancel")
    assert status == 200 and again["status"] == "cancelled"
    assert gateway == []


def test_completed_upload_cannot_be_cancelled_or_completed_again(gateway: list[dict[str, Any]]) -> None:
    upload, part_ids = uploaded(CHUNKS)
    status, _ = upload_call(uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids})
    assert status == 200
    for handler, action, body in (
        (uploads_cancel.handler, "cancel", None),
        (uploads_complete.handler, "complete", {"part_ids": part_ids}),
    ):
        status, error = upload_call(handler, upload["id"], action, body)
        assert status == 400 and "completed" in error["error"]["message"]


def test_expired_upload_refuses_parts_and_drops_them(gateway: list[dict[str, Any]]) -> None:
    upload = create(20)
    add(upload["id"], b"a" * 10)
    id_map = IdMap()
    record = id_map.get(upload["id"])
    assert record is not None
    record.object["expires_at"] = int(time.time()) - 1
    id_map.save_object(record)
    status, error = add(upload["id"], b"b" * 10)
    assert status == 400 and "expired" in error["error"]["message"]
    assert stored_parts(upload["id"]) == []


def test_another_keys_upload_is_404_like_an_unknown_one(gateway: list[dict[str, Any]]) -> None:
    status, key, _ = call(keys_generate.handler, event("POST", "/key/generate", body={}))
    assert status == 200
    upload = create(10)
    for target in (upload["id"], "upload_unknown"):
        status, error = add(target, b"0123456789", key=key["key"])
        assert status == 404 and error["error"]["param"] == "upload_id", error
        status, error = upload_call(uploads_cancel.handler, target, "cancel", key=key["key"])
        assert status == 404
        status, error = upload_call(
            uploads_complete.handler, target, "complete", {"part_ids": []}, key=key["key"]
        )
        assert status == 404
    mine = create(4, key=key["key"])
    status, _ = add(mine["id"], b"mine", key=key["key"])
    assert status == 200


def test_part_over_the_limit_is_413_naming_the_part_size(gateway: list[dict[str, Any]]) -> None:
    upload = create(routes.MAX_UPLOAD_PART_BYTES + 1)
    status, error = add(upload["id"], b"x" * (routes.MAX_UPLOAD_PART_BYTES + 1))
    assert status == 413 and error["error"]["code"] == "part_too_large"
    assert f"part_size <= {routes.MAX_UPLOAD_PART_BYTES}" in error["error"]["message"]


def test_part_size_limit_fits_the_lambda_event() -> None:
    # a part of the largest size, framed and base64-encoded with generous headers, fits 6 MB
    assert routes.MAX_UPLOAD_PART_BYTES >= 4 * 1024 * 1024
    framed = routes.MAX_UPLOAD_PART_BYTES + 1024
    assert (framed + 2) // 3 * 4 + 2 * 10 * 1024 + 8 * 1024 <= routes.LAMBDA_MAX_REQUEST_BYTES


def test_emulation_answers_413_with_the_stack_message_for_events_lambda_refuses() -> None:
    calls: list[str] = []

    def fake(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["path"])
        return {"statusCode": 200, "body": "{}", "headers": {}}

    api = ApiGateway(handler_resolver=lambda name: fake)
    headers = [("Content-Type", "multipart/form-data; boundary=b"), ("Authorization", "Bearer sk-x")]
    fits = b"--b\r\n" + b"x" * routes.MAX_UPLOAD_PART_BYTES + b"\r\n--b--\r\n"
    assert api.handle("POST", "/v1/uploads/upload_1/parts", headers, fits).status == 200
    too_big = b"x" * (5 * 1024 * 1024)  # under API Gateway's 10 MB, over Lambda's 6 MB once base64
    response = api.handle("POST", "/v1/uploads/upload_1/parts", headers, too_big)
    assert response.status == 413 and calls == ["/v1/uploads/upload_1/parts"]
    error = response.json()["error"]
    assert error["message"] == routes.REQUEST_TOO_LARGE_MESSAGE
    assert f"part_size <= {routes.MAX_UPLOAD_PART_BYTES}" in error["message"]
    response = api.handle("POST", "/v1/files", headers, b"x" * (11 * 1024 * 1024))
    assert response.status == 413 and "Uploads API" in response.json()["error"]["message"]


def _file_event(method: str, file_id: str, suffix: str = "") -> dict[str, Any]:
    return event(
        method,
        f"/v1/files/{file_id}{suffix}",
        resource=f"/v1/files/{{file_id}}{suffix}",
        path_parameters={"file_id": file_id},
    )
