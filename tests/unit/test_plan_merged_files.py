"""A plan's merged files kept in the gateway's bucket (service.plan.merged_files), and an
OpenAI-style adapter reading them there: ids derived from the batch, written once."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import httpx
import pytest
from gateway.errors import UpstreamRequestError
from gateway.providers.config import ProviderDeployment
from gateway.providers.kept_files import KeptFiles, is_kept
from gateway.providers.openai.client import ProviderClient
from gateway.runtime.settings import get_settings
from gateway.service.plan import merged_files
from gateway.storage.s3 import s3_client

BATCH = "batch_abc"


@pytest.fixture
def bucket(aws: None) -> Iterator[str]:
    s3_client.cache_clear()
    name = get_settings().bucket_name
    boto3.client("s3").create_bucket(Bucket=name)
    yield name
    s3_client.cache_clear()


def test_a_merged_file_is_kept_once_under_an_id_derived_from_the_batch(bucket: str) -> None:
    file_id = merged_files.keep("azure", BATCH, "output", io.BytesIO(b"a\nb\n"))
    assert (
        file_id == merged_files.merged_file_id(BATCH, "output") and file_id is not None and is_kept(file_id)
    )
    kept = KeptFiles("azure")
    assert kept.file_content(file_id) == b"a\nb\n"
    assert kept.retrieve_file(file_id)["purpose"] == "batch_output"
    assert kept.retrieve_file(file_id)["filename"] == f"{BATCH}_output.jsonl"
    # run again (a step that died before naming it): the same id, the first write stands
    assert merged_files.keep("azure", BATCH, "output", io.BytesIO(b"a\nb\n")) == file_id
    assert [f["id"] for f in kept.list_files()["data"]] == [file_id]
    assert merged_files.find("azure", BATCH, "output") == file_id
    assert merged_files.find("azure", BATCH, "error") is None


def test_no_file_for_empty_content_and_each_partial_merge_has_its_own_id(bucket: str) -> None:
    assert merged_files.keep("azure", BATCH, "error", io.BytesIO()) is None
    assert merged_files.find("azure", BATCH, "error") is None
    first = merged_files.keep("azure", BATCH, "output", io.BytesIO(b"a\n"), [0])
    second = merged_files.keep("azure", BATCH, "output", io.BytesIO(b"a\nb\n"), [0, 2])
    assert len({first, second, merged_files.merged_file_id(BATCH, "output")}) == 3
    assert merged_files.find("azure", BATCH, "output", [0, 2]) == second
    assert merged_files.merged_file_id("batch_other", "output") != merged_files.merged_file_id(
        BATCH, "output"
    )
    kept = KeptFiles("azure")
    assert second is not None and kept.retrieve_file(second)["filename"] == f"{BATCH}_partial2_output.jsonl"


def test_an_azure_client_reads_and_deletes_kept_files_in_the_bucket_and_others_at_azure(bucket: str) -> None:
    calls: list[str] = []

    def azure(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"id": "file-at-azure", "object": "file", "deleted": True})

    deployment = ProviderDeployment(name="azure", type="azure", api_base="https://example.test")
    client = ProviderClient(deployment, lambda _refresh: "key", 5.0)
    client._http = httpx.Client(transport=httpx.MockTransport(azure))
    file_id = merged_files.keep("azure", BATCH, "output", io.BytesIO(b"x\n" * 10))
    assert file_id is not None
    assert client.retrieve_file(file_id)["bytes"] == 20
    assert client.file_content(file_id) == b"x\n" * 10
    with client.stream_file_content(file_id) as stream:
        assert b"".join(stream.iter_bytes(3)) == b"x\n" * 10
    assert client.delete_file(file_id)["deleted"] is True
    with pytest.raises(UpstreamRequestError) as gone:
        client.retrieve_file(file_id)
    assert gone.value.status_code == 404
    assert calls == []  # none of it reached Azure
    client.delete_file("file-at-azure")
    assert calls == ["DELETE /openai/files/file-at-azure"]


def test_a_merged_file_kept_while_written_is_written_once_even_when_large(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed in small chunks (the writer's queue full most of the time) past one S3 part:
    one multipart write; a second merge of the same lines finds it (its writer stops early and
    the merge never waits on it) and writes no other."""
    monkeypatch.setattr(merged_files, "STREAM_CHUNK_BYTES", 64 * 1024)
    content = b"".join(b'{"custom_id":"r-%d"}\n' % n for n in range(600_000))  # about 12 MB
    for _ in range(2):
        kept = merged_files.StreamedKeep("azure", BATCH, "output")
        for start in range(0, len(content), 100_000):
            kept.write(content[start : start + 100_000])
        assert kept.close() == merged_files.merged_file_id(BATCH, "output")
    file_id = merged_files.merged_file_id(BATCH, "output")
    assert KeptFiles("azure").file_content(file_id) == content
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Size"] for item in listed] == [len(content)]


def test_an_aborted_merge_keeps_no_file(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merged_files, "STREAM_CHUNK_BYTES", 1024)
    kept = merged_files.StreamedKeep("azure", BATCH, "output")
    for _ in range(100):
        kept.write(b"x" * 1000 + b"\n")
    kept.abort()
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=bucket)
    assert merged_files.find("azure", BATCH, "output") is None
