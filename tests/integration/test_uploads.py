"""The Uploads API end to end: the official SDK -> local API Gateway -> handlers -> S3 (moto)
-> the transfer function (in-process, asynchronous) -> the provider simulator."""

from __future__ import annotations

import hashlib
import io

import boto3
import openai
import pytest
from gateway import routes
from gateway.runtime import resources
from gateway.storage.id_map import IdMap

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of

PART = 64 * 1024


def jsonl(size_at_least: int) -> bytes:
    content = batch_jsonl(1 + size_at_least // 150)
    assert len(content) >= size_at_least
    return content


def upstream_id(file_id: str) -> str:
    record = IdMap().get(file_id)
    assert record is not None and record.upstream_id, record
    return record.upstream_id


def stored_parts(gateway: LocalGateway, upload_id: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=gateway.aws_endpoint_url)
    listing = s3.list_objects_v2(
        Bucket=resources.DEFAULT_BUCKET_NAME, Prefix=f"{resources.UPLOAD_PARTS_PREFIX}{upload_id}/"
    )
    return [item["Key"] for item in listing.get("Contents", [])]


def upload_chunked(
    sdk: openai.OpenAI, content: bytes, filename: str, **overrides: object
) -> openai.types.Upload:
    """The SDK's chunked upload of `content` as a batch file, in parts of PART bytes."""
    settings: dict[str, object] = {
        "bytes": len(content),
        "mime_type": "application/jsonl",
        "purpose": "batch",
        "part_size": PART,
        **overrides,
    }
    return sdk.uploads.upload_file_chunked(file=content, filename=filename, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", [None, "azure"])
def test_chunked_upload_arrives_byte_for_byte(local_gateway: LocalGateway, provider: str | None) -> None:
    sdk = client(local_gateway, provider=provider)
    content = jsonl(2 * PART + 1000)  # three parts, the last one short
    upload = upload_chunked(sdk, content, "requests.jsonl", md5=hashlib.md5(content).hexdigest())
    assert upload.status == "completed" and upload.file is not None
    assert upload.file.id.startswith("file-") and upload.file.bytes == len(content)
    assert upload.file.status == "uploaded"
    processed = sdk.files.wait_for_processing(upload.file.id, poll_interval=0.1, max_wait_seconds=20)
    assert processed.status == "processed" and processed.id == upload.file.id
    received = local_gateway.simulator.received(upstream_id(upload.file.id))
    assert received["sha256"] == hashlib.sha256(content).hexdigest() and received["bytes"] == len(content)
    assert stored_parts(local_gateway, upload.id) == []
    assert sdk.files.content(upload.file.id).read() == content


def test_wrong_md5_leaves_the_file_in_error(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    content = jsonl(PART + 10)
    upload = upload_chunked(sdk, content, "bad-md5.jsonl", md5="0" * 32)
    assert upload.status == "completed" and upload.file is not None
    failed = sdk.files.wait_for_processing(upload.file.id, poll_interval=0.1, max_wait_seconds=20)
    assert failed.status == "error" and failed.status_details and "md5" in failed.status_details
    assert stored_parts(local_gateway, upload.id) == []
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.batches.create(
            input_file_id=upload.file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert error_of(raised.value)["code"] == "file_error"


def test_wrong_bytes_is_400_on_complete(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    content = jsonl(PART + 10)
    with pytest.raises(openai.BadRequestError) as raised:
        upload_chunked(sdk, content, "short.jsonl", bytes=len(content) + 1)
    error = error_of(raised.value)
    assert error["code"] == "bytes_mismatch" and str(len(content)) in error["message"]


def test_cancel_leaves_no_parts(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    upload = sdk.uploads.create(bytes=30, filename="c.jsonl", mime_type="application/jsonl", purpose="batch")
    parts = [sdk.uploads.parts.create(upload_id=upload.id, data=b"x" * 10) for _ in range(2)]
    assert len(stored_parts(local_gateway, upload.id)) == 2
    cancelled = sdk.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled" and cancelled.id == upload.id
    assert stored_parts(local_gateway, upload.id) == []
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.parts.create(upload_id=upload.id, data=b"y" * 10)
    assert error_of(raised.value)["code"] == "upload_not_pending"
    with pytest.raises(openai.BadRequestError):
        sdk.uploads.complete(upload.id, part_ids=[p.id for p in parts])


def test_part_too_big_is_413_naming_the_part_size(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    limit = routes.MAX_UPLOAD_PART_BYTES
    upload = sdk.uploads.create(
        bytes=8 * limit, filename="big.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    # 4 MiB parts pass
    part = sdk.uploads.parts.create(upload_id=upload.id, data=b"a" * (4 * 1024 * 1024))
    assert part.upload_id == upload.id
    # just over the limit: the function refuses it; far over: Lambda would, API Gateway answers
    for size in (limit + 1, 5 * 1024 * 1024, 9 * 1024 * 1024):
        with pytest.raises(openai.APIStatusError) as raised:
            sdk.uploads.parts.create(upload_id=upload.id, data=b"b" * size)
        assert raised.value.status_code == 413, size
        assert f"part_size <= {limit}" in error_of(raised.value)["message"]
    sdk.uploads.cancel(upload.id)
    assert stored_parts(local_gateway, upload.id) == []


def test_plain_file_too_large_points_to_the_uploads_api(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.files.create(
            file=("big.jsonl", io.BytesIO(b"x" * (5 * 1024 * 1024)), "application/jsonl"), purpose="batch"
        )
    assert raised.value.status_code == 413
    assert "Uploads API" in error_of(raised.value)["message"]


def test_batch_on_a_file_in_transfer_is_409(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    simulator = local_gateway.simulator
    simulator.add_fault(delay_seconds=1.5, path_contains="/files", method="POST")
    try:
        content = batch_jsonl(3)
        upload = upload_chunked(sdk, content, "slow.jsonl")
        assert upload.file is not None
        file_id = upload.file.id
        with pytest.raises(openai.ConflictError) as raised:
            sdk.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        error = error_of(raised.value)
        assert error["code"] == "file_not_ready" and "transferred" in error["message"]
        with pytest.raises(openai.ConflictError):
            sdk.files.content(file_id)
        assert sdk.files.retrieve(file_id).status == "uploaded"
        assert (
            sdk.files.wait_for_processing(file_id, poll_interval=0.1, max_wait_seconds=20).status
            == "processed"
        )
        batch = sdk.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.input_file_id == file_id
    finally:
        simulator.clear_faults()
        local_gateway.wait_for_async(timeout=20)
