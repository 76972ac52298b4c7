"""The gateway-kept file store (providers without a file store): OpenAI file objects in S3,
written once per id, in one request or in parts."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from gateway.errors import UpstreamRequestError
from gateway.providers import kept_files
from gateway.providers.kept_files import FileExists, KeptFiles, derived_id
from gateway.runtime import resources
from gateway.storage.s3 import s3_client

BUCKET = "kept-test"


@pytest.fixture
def store(aws: None) -> Iterator[KeptFiles]:
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield KeptFiles("anthropic", bucket=BUCKET)
    s3_client.cache_clear()


def test_create_retrieve_content_list_delete(store: KeptFiles) -> None:
    created = store.create_file(
        filename="requests ü.jsonl", content=io.BytesIO(b"line\n" * 3), purpose="batch"
    )
    file_id = created["id"]
    assert file_id.startswith(kept_files.ID_PREFIX)
    assert created["object"] == "file" and created["status"] == "processed"
    assert (created["bytes"], created["filename"], created["purpose"]) == (15, "requests ü.jsonl", "batch")
    assert store.retrieve_file(file_id) == created
    assert store.file_content(file_id) == b"line\n" * 3
    with store.stream_file_content(file_id) as stream:
        assert b"".join(stream.iter_bytes(4)) == b"line\n" * 3
    key = f"{resources.KEPT_FILES_PREFIX}anthropic/files/{file_id}"
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 15
    other = store.create_file(filename="b.jsonl", content=b"x", purpose="batch_output")
    listed = store.list_files(purpose="batch")
    assert [item["id"] for item in listed["data"]] == [file_id] and listed["has_more"] is False
    assert [item["id"] for item in store.list_files(limit=1)["data"]] in ([file_id], [other["id"]])
    assert store.delete_file(file_id) == {"id": file_id, "object": "file", "deleted": True}
    with pytest.raises(UpstreamRequestError) as raised:
        store.retrieve_file(file_id)
    assert raised.value.status_code == 404
    with pytest.raises(UpstreamRequestError):
        store.file_content(file_id)


def test_an_id_is_written_once(store: KeptFiles) -> None:
    file_id = derived_id("anthropic", "msgbatch_1", "output")
    assert (
        file_id
        == derived_id("anthropic", "msgbatch_1", "output")
        != derived_id("anthropic", "msgbatch_1", "error")
    )
    store.put_file(file_id, [b"first\n"], filename="out.jsonl", purpose="batch_output")
    with pytest.raises(FileExists):
        store.put_file(file_id, [b"second\n"], filename="out.jsonl", purpose="batch_output")
    assert store.file_content(file_id) == b"first\n"


def test_large_content_goes_in_parts_and_is_written_once(
    store: KeptFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept_files, "PART_BYTES", 5 * 1024 * 1024)
    content = bytes(range(256)) * (11 * 4096)  # 11 MiB: three parts
    file_id = derived_id("big")
    created = store.put_file(file_id, [content[:1000], content[1000:]], filename="big.jsonl", purpose="batch")
    assert created["bytes"] == len(content)
    assert store.file_content(file_id) == content
    with pytest.raises(FileExists):
        store.put_file(file_id, [content], filename="big.jsonl", purpose="batch")
    uploads = boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads") or []
    assert uploads == []  # the refused second write left no upload behind


def test_uploads_api_in_parts(store: KeptFiles) -> None:
    part = b"a" * (5 * 1024 * 1024)
    upload = store.create_upload(filename="parts.jsonl", purpose="batch", size=len(part) + 3, mime_type="x")
    first = store.add_upload_part(upload["id"], io.BytesIO(part))
    again = store.add_upload_part(upload["id"], b"end")
    completed = store.complete_upload(upload["id"], [first["id"], again["id"]])
    assert completed["status"] == "completed"
    assert completed["file"]["bytes"] == len(part) + 3
    assert store.file_content(completed["file"]["id"]) == part + b"end"
    cancelled = store.create_upload(filename="c.jsonl", purpose="batch", size=1, mime_type="x")
    assert store.cancel_upload(cancelled["id"])["status"] == "cancelled"
    assert not boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_ids_outside_the_store_are_not_found(store: KeptFiles) -> None:
    for bad in ("file-abc", "kfile-../../upload-parts/x"):
        with pytest.raises(UpstreamRequestError) as raised:
            store.retrieve_file(bad)
        assert raised.value.status_code == 404


def test_a_batch_results_file_is_kept_once_under_an_id_its_batch_and_kind_fix(store: KeptFiles) -> None:
    assert store.keep_results("up-1", "output", io.BytesIO(), purpose="batch_output") is None  # no lines
    first = io.BytesIO()
    first.write(b'{"custom_id": "a"}\n')
    file_id = store.keep_results("up-1", "output", first, purpose="batch_output")
    assert file_id == derived_id("anthropic", "up-1", "output")
    again = io.BytesIO()
    again.write(b'{"custom_id": "another run"}\n')
    # a later run over the same batch finds the file written and takes it as it is
    assert store.keep_results("up-1", "output", again, purpose="batch_output") == file_id
    assert store.file_content(file_id) == b'{"custom_id": "a"}\n'
    kept = store.retrieve_file(file_id)
    assert (kept["filename"], kept["purpose"]) == ("batch_up-1_output.jsonl", "batch_output")
    assert store.keep_results("up-1", "error", first, purpose="batch_error") != file_id


def test_a_part_that_fails_to_upload_while_the_next_fills_leaves_no_file_and_no_upload(
    store: KeptFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept_files, "PART_BYTES", 5 * 1024 * 1024)
    real_upload_part = store._s3.upload_part
    sent: list[int] = []

    def upload_part(**kwargs: object) -> object:
        sent.append(int(kwargs["PartNumber"]))  # type: ignore[call-overload]
        if kwargs["PartNumber"] == 2:
            raise RuntimeError("connection reset")
        return real_upload_part(**kwargs)

    monkeypatch.setattr(store._s3, "upload_part", upload_part)
    content = bytes(range(256)) * (16 * 4096)  # 16 MiB: four parts
    with pytest.raises(RuntimeError, match="connection reset"):
        store.put_file(derived_id("broken"), [content], filename="b.jsonl", purpose="batch")
    assert sent == [1, 2, 3]  # the third was sent while the second failed: at most one ahead
    assert boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads") is None
    with pytest.raises(UpstreamRequestError):
        store.retrieve_file(derived_id("broken"))
