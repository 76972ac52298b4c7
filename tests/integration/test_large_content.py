"""Batch output larger than a Lambda response, fetched with the official SDK through the local server.

The real path: a batch whose output (about 10 MB) is over the inline limit; the gateway registers
the provider's output file on first sight, streams it into S3 once and redirects to a presigned URL.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
import httpx
import openai
import pytest
from gateway.runtime import resources
from gateway.service.content_delivery import MAX_INLINE_CONTENT_BYTES
from gateway.storage.content_cache import cache_key
from gateway.storage.id_map import IdMap

from devserver.server import SIM_OPENAI_KEY, LocalGateway

# About 820 bytes of simulated chat completion per line: ~9.8 MB of output from ~2.3 MB of input.
REQUESTS = 12_000


@dataclass(frozen=True)
class LargeOutput:
    file_id: str  # the gateway's id of the batch output file
    upstream_id: str
    sha256: str
    size: int


def _sdk(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_base, api_key=gateway.master_key, max_retries=0, timeout=60)


def _batch_input(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"request-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Question {i}"}]},
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


@pytest.fixture(scope="module")
def large_output(local_gateway: LocalGateway) -> LargeOutput:
    sdk = _sdk(local_gateway)
    data = _batch_input(REQUESTS)
    uploaded = sdk.files.create(file=("many.jsonl", io.BytesIO(data), "application/jsonl"), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while batch.status not in {"completed", "failed", "expired", "cancelled"}:
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.2)
        batch = sdk.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id, batch
    record = IdMap().get(batch.output_file_id)
    assert record is not None and record.upstream_id
    # What the provider holds, straight from the simulator (no gateway, no size limit).
    direct = openai.OpenAI(base_url=local_gateway.simulator.openai_api_base, api_key=SIM_OPENAI_KEY)
    expected = direct.files.content(record.upstream_id).read()
    assert len(expected) > MAX_INLINE_CONTENT_BYTES * 2
    return LargeOutput(
        batch.output_file_id, record.upstream_id, hashlib.sha256(expected).hexdigest(), len(expected)
    )


def _cached_size(gateway: LocalGateway, file_id: str) -> int | None:
    s3 = boto3.client("s3", endpoint_url=gateway.aws_endpoint_url)
    listing = s3.list_objects_v2(Bucket=resources.DEFAULT_BUCKET_NAME, Prefix=cache_key(file_id))
    sizes = [item["Size"] for item in listing.get("Contents", []) if item["Key"] == cache_key(file_id)]
    return sizes[0] if sizes else None


def test_large_output_arrives_whole_through_the_redirect(
    local_gateway: LocalGateway, large_output: LargeOutput
) -> None:
    started = time.perf_counter()
    content = _sdk(local_gateway).files.content(large_output.file_id).read()
    elapsed = time.perf_counter() - started
    assert len(content) == large_output.size
    assert hashlib.sha256(content).hexdigest() == large_output.sha256
    assert _cached_size(local_gateway, large_output.file_id) == large_output.size
    print(f"first download of {large_output.size / 1e6:.1f} MB: {elapsed:.2f} s")


def test_the_redirect_is_a_short_lived_presigned_url_on_the_s3_endpoint(
    local_gateway: LocalGateway, large_output: LargeOutput
) -> None:
    url = f"{local_gateway.api_base}/files/{large_output.file_id}/content"
    headers = {"Authorization": f"Bearer {local_gateway.master_key}"}
    response = httpx.get(url, headers=headers, follow_redirects=False, timeout=60)
    assert response.status_code == 302, response.text
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.netloc == urlsplit(local_gateway.aws_endpoint_url).netloc  # path-style on moto
    assert location.path == f"/{resources.DEFAULT_BUCKET_NAME}/{cache_key(large_output.file_id)}"
    assert "X-Amz-Signature=" in location.query and "X-Amz-Expires=300" in location.query
    # The URL alone is enough: no gateway key goes to S3.
    fetched = httpx.get(response.headers["location"], timeout=60)
    assert fetched.status_code == 200
    assert fetched.headers["content-disposition"].startswith("attachment; filename=")
    assert hashlib.sha256(fetched.content).hexdigest() == large_output.sha256


def test_later_downloads_reuse_the_cache(local_gateway: LocalGateway, large_output: LargeOutput) -> None:
    sdk = _sdk(local_gateway)
    sdk.files.content(large_output.file_id).read()  # cached now, whichever test ran first
    simulator = local_gateway.simulator
    # From here on the provider would answer 500 to any download of this file.
    simulator.add_fault(
        method="GET", path_contains=f"/files/{large_output.upstream_id}/content", status=500, times=100
    )
    try:
        for _ in range(2):
            content = sdk.files.content(large_output.file_id).read()
            assert hashlib.sha256(content).hexdigest() == large_output.sha256
        (fault,) = simulator.state.faults
        assert fault.times == 100  # never triggered: the provider was not asked again
    finally:
        simulator.clear_faults()


def test_small_content_still_comes_inline(local_gateway: LocalGateway) -> None:
    data = _batch_input(3)
    uploaded = _sdk(local_gateway).files.create(
        file=("small.jsonl", io.BytesIO(data), "application/jsonl"), purpose="batch"
    )
    url = f"{local_gateway.api_base}/files/{uploaded.id}/content"
    headers = {"Authorization": f"Bearer {local_gateway.master_key}"}
    response = httpx.get(url, headers=headers, follow_redirects=False, timeout=30)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == 'attachment; filename="small.jsonl"'
    assert _cached_size(local_gateway, uploaded.id) is None


def test_deleting_a_large_file_drops_its_cached_copy(local_gateway: LocalGateway) -> None:
    # A file of its own: the module's large output is shared by the other tests.
    sdk = _sdk(local_gateway)
    batch = sdk.batches.create(
        input_file_id=sdk.files.create(file=("big.jsonl", _batch_input(REQUESTS)), purpose="batch").id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    deadline = time.monotonic() + 60
    while batch.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = sdk.batches.retrieve(batch.id)
    assert batch.output_file_id is not None, batch
    sdk.files.content(batch.output_file_id).read()
    assert _cached_size(local_gateway, batch.output_file_id)

    sdk.files.delete(batch.output_file_id)
    assert _cached_size(local_gateway, batch.output_file_id) is None
