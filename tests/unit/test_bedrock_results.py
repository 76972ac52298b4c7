"""A finished Bedrock job's results read into OpenAI output and error files (`BedrockClient._finish`):
OpenAI's rule for requests never run, and memory bounded whatever the size of the results."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.providers.bedrock import client as bedrock_module
from gateway.providers.bedrock.client import BedrockClient
from gateway.providers.config import ProviderDeployment
from gateway.providers.job_notes import Note
from gateway.runtime import resources
from gateway.storage.s3 import s3_client

JOB_ID = "abcdef123456"
TOKEN = "gw-batch-abc"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture
def client(aws: None) -> Iterator[BedrockClient]:
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    yield BedrockClient(ProviderDeployment(name="bedrock", type="bedrock"), lambda _: None, timeout=5)
    s3_client.cache_clear()


def _job(client: BedrockClient, status: str, processed: int) -> dict[str, Any]:
    uri = f"s3://{client._bucket}/{resources.BEDROCK_INPUT_PREFIX}bedrock/{TOKEN}/records.jsonl"
    return {
        "jobArn": f"arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/{JOB_ID}",
        "status": status,
        "processedRecordCount": processed,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": uri}},
    }


def _note(client: BedrockClient, custom_ids: list[str]) -> Note:
    note = Note(
        gateway_batch_id="batch_abc",
        input_file_id="kfile-1",
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=None,
        created_at=1_800_000_000,
        total=len(custom_ids),
    )
    client._put_json(client._note_key(TOKEN), {**note.as_json(), "custom_ids": custom_ids})
    return note


def _output_line(index: int, text: str = "An answer.") -> dict[str, Any]:
    message = {
        "id": f"msg_{index}",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    return {"recordId": f"R{index:010d}", "modelInput": {}, "modelOutput": message}


def _put_output(client: BedrockClient, lines: list[dict[str, Any]]) -> None:
    key = f"{client._output_prefix(TOKEN)}{JOB_ID}/records.jsonl.out"
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    client._s3.put_object(Bucket=client._bucket, Key=key, Body=body)


def _lines(client: BedrockClient, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.file_content(file_id).splitlines()]


def test_records_a_stop_left_unrun_get_no_line_as_at_openai(client: BedrockClient) -> None:
    custom_ids = [f"req-{n}" for n in range(1, 6)]
    note = _note(client, custom_ids)
    _put_output(client, [_output_line(1), _output_line(2)])
    client._finish(JOB_ID, _job(client, "Stopped", processed=2), note)
    assert [line["custom_id"] for line in _lines(client, note.output_file_id)] == ["req-1", "req-2"]
    assert note.error_file_id is None  # old code: three `batch_cancelled` lines


def test_records_the_window_left_unrun_are_expired_lines(client: BedrockClient) -> None:
    custom_ids = [f"req-{n}" for n in range(1, 4)]
    note = _note(client, custom_ids)
    _put_output(client, [_output_line(2)])
    client._finish(JOB_ID, _job(client, "Expired", processed=1), note)
    errors = _lines(client, note.error_file_id)
    assert [(line["custom_id"], line["error"]["code"]) for line in errors] == [
        ("req-1", "batch_expired"),
        ("req-3", "batch_expired"),
    ]


def test_results_are_spooled_not_held_peak_memory_stays_a_fraction_of_the_output(
    client: BedrockClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 MB of results: the old lists held them all (and more); the spool holds at most its
    in-memory threshold (1 MB here) before it moves to /tmp. S3's side is left out of the
    measure: the lines are made as read, the files' content drained as written."""
    records, text = 8000, "x" * 2000
    monkeypatch.setattr(bedrock_module, "_SPOOL_BYTES", 1024 * 1024, raising=False)
    note = _note(client, [f"req-{n}" for n in range(1, records + 1)])
    output_bytes = 0

    def read_lines(key: str) -> Iterator[dict[str, Any]]:
        nonlocal output_bytes
        for index in range(1, records + 1):
            line = _output_line(index, text)
            output_bytes += len(text)
            yield line

    written: dict[str, int] = {}

    def put_file(file_id: str, chunks: Iterator[bytes], **_: Any) -> int:
        written[file_id] = sum(len(chunk) for chunk in chunks)
        return written[file_id]

    monkeypatch.setattr(client, "_read_lines", read_lines)
    monkeypatch.setattr(client.files, "put_file", put_file)
    job = _job(client, "Completed", processed=records)
    tracemalloc.start()
    try:
        client._finish(JOB_ID, job, note)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert output_bytes >= 16_000_000 and written[note.output_file_id or ""] > output_bytes
    assert peak < output_bytes / 4, f"peak {peak} bytes for {output_bytes} bytes of results"
