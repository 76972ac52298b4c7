"""Large file content: the S3 cache (moto in-process) and GET /files/{id}/content's inline/redirect choice."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from gateway import routes
from gateway.errors import UpstreamError
from gateway.providers import registry
from gateway.providers.config import ProviderDeployment
from gateway.providers.openai.client import ProviderClient
from gateway.runtime import resources
from gateway.service import content_delivery
from gateway.service.content_delivery import MAX_INLINE_CONTENT_BYTES, attachment_disposition
from gateway.storage import s3 as s3_module
from gateway.storage.content_cache import ContentCache, cache_key
from handlers import files_content

from tests.unit.conftest import FakeContext, event, store_file

BUCKET = resources.DEFAULT_BUCKET_NAME
PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture
def bucket(aws: None) -> Iterator[None]:
    s3_module.s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield
    s3_module.s3_client.cache_clear()


def _payload(size: int) -> bytes:
    block = hashlib.sha256(str(size).encode()).hexdigest().encode() * 2048  # 128 KiB
    return (block * (size // len(block) + 1))[:size]


def _chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _cached_bytes(file_id: str) -> bytes:
    body: bytes = boto3.client("s3").get_object(Bucket=BUCKET, Key=cache_key(file_id))["Body"].read()
    return body


# -- the inline limit ------------------------------------------------------------------------


def test_inline_limit_fits_a_lambda_response_after_base64() -> None:
    encoded = 4 * -(-MAX_INLINE_CONTENT_BYTES // 3)
    assert encoded + content_delivery.RESPONSE_OVERHEAD_BYTES <= routes.LAMBDA_MAX_RESPONSE_BYTES
    assert MAX_INLINE_CONTENT_BYTES > 4_500_000  # and not needlessly small


# -- the cache ---------------------------------------------------------------------------------


def test_small_content_is_one_put_and_found_again(bucket: None) -> None:
    cache = ContentCache(part_bytes=PART)
    assert cache.cached_size("file-a") is None
    assert cache.store("file-a", _chunks(b"hello world", 3)) == 11
    assert cache.cached_size("file-a") == 11
    assert _cached_bytes("file-a") == b"hello world"


def test_large_content_is_a_multipart_upload_in_fixed_parts(bucket: None) -> None:
    data = _payload(2 * PART + 12345)
    cache = ContentCache(part_bytes=PART)
    assert cache.store("file-big", _chunks(data, 777_777)) == len(data)
    assert cache.cached_size("file-big") == len(data)
    assert _cached_bytes("file-big") == data
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=cache_key("file-big"))
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert head["ContentType"] == "application/octet-stream"


def test_a_failing_source_leaves_no_object_and_no_upload(bucket: None) -> None:
    data = _payload(2 * PART)

    def broken() -> Iterator[bytes]:
        yield from _chunks(data[: PART + 10])
        raise UpstreamError("provider 'openai' broke off sending the file content")

    with pytest.raises(UpstreamError):
        ContentCache(part_bytes=PART).store("file-broken", broken())
    s3 = boto3.client("s3")
    assert ContentCache().cached_size("file-broken") is None
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_presigned_url_names_the_file_and_expires(bucket: None) -> None:
    ContentCache().store("file-u", [b"x"])
    url = ContentCache().download_url("file-u", attachment_disposition("out.jsonl"))
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"] == ['attachment; filename="out.jsonl"']


def test_addressing_style_follows_the_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in s3_module.ENDPOINT_OVERRIDE_ENV:
        monkeypatch.delenv(name, raising=False)
    try:
        s3_module.s3_client.cache_clear()
        aws_url = ContentCache(bucket="gw-bucket").download_url("file-1", "attachment")
        assert urlsplit(aws_url).netloc == "gw-bucket.s3.eu-west-1.amazonaws.com"
        assert urlsplit(aws_url).path == "/file-content/file-1"

        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
        s3_module.s3_client.cache_clear()
        local_url = ContentCache(bucket="gw-bucket").download_url("file-1", "attachment")
        assert local_url.startswith("http://127.0.0.1:5000/gw-bucket/file-content/file-1?")
    finally:
        s3_module.s3_client.cache_clear()


def test_attachment_disposition_is_a_safe_header() -> None:
    assert attachment_disposition("out.jsonl") == 'attachment; filename="out.jsonl"'
    tricky = attachment_disposition('a"b\r\nX-Evil: 1 é.jsonl')
    assert "\r" not in tricky and "\n" not in tricky
    assert tricky.startswith("attachment; filename=\"a_b__X-Evil: 1 _.jsonl\"; filename*=UTF-8''a%22b%0D%0A")


# -- GET /files/{id}/content -----------------------------------------------------------------


class FakeProvider:
    """The provider's content endpoint, counting downloads."""

    def __init__(self, content: bytes, *, declare_length: bool = True, status: int = 200) -> None:
        self.content = content
        self.declare_length = declare_length
        self.status = status
        self.downloads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/content")
        self.downloads += 1
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "gone", "type": "x"}})
        if self.declare_length:
            return httpx.Response(200, content=self.content)
        return httpx.Response(200, content=_chunks(self.content))  # chunked: no Content-Length

    def install(self) -> None:
        deployment = ProviderDeployment(name="openai", type="openai", api_base="https://api.example/v1")
        client = ProviderClient(deployment, lambda refresh: "sk-upstream", timeout=5)
        client._http = httpx.Client(transport=httpx.MockTransport(self))
        registry._clients["openai"] = client


def _file_record(file_id: str, size: int) -> None:
    store_file(file_id, size=size, filename="batch_out.jsonl", purpose="batch_output")


def _get_content(file_id: str) -> dict[str, object]:
    path = f"/v1/files/{file_id}/content"
    request = event("GET", path, resource="/v1/files/{file_id}/content", path_parameters={"file_id": file_id})
    result: dict[str, object] = files_content.handler(request, FakeContext())
    return result


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """An inline limit of 64 KiB so that 'large' content stays quick to produce."""
    monkeypatch.setattr(content_delivery, "MAX_INLINE_CONTENT_BYTES", 64 * 1024)
    return 64 * 1024


def test_small_content_comes_inline_and_is_not_cached(bucket: None, small_limit: int) -> None:
    provider = FakeProvider(b'{"a":1}\n')
    provider.install()
    _file_record("file-small", len(provider.content))
    result = _get_content("file-small")
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is True
    assert base64.b64decode(str(result["body"])) == provider.content
    headers = result["multiValueHeaders"]
    assert isinstance(headers, dict)
    assert headers["Content-Disposition"] == ['attachment; filename="batch_out.jsonl"']
    assert ContentCache().cached_size("file-small") is None


@pytest.mark.parametrize("declare_length", [True, False])
def test_large_content_is_cached_once_then_redirected(
    bucket: None, small_limit: int, declare_length: bool
) -> None:
    data = _payload(small_limit * 3 + 5)
    provider = FakeProvider(data, declare_length=declare_length)
    provider.install()
    _file_record("file-large", 0)  # size unknown to the gateway: decided from the stream
    for expected_downloads in (1, 1):
        result = _get_content("file-large")
        assert result["statusCode"] == 302 and not result["body"]
        headers = result["multiValueHeaders"]
        assert isinstance(headers, dict)
        (location,) = headers["Location"]
        assert headers["Cache-Control"] == ["no-store"]
        assert urlsplit(location).path.endswith("/file-content/file-large")
        assert provider.downloads == expected_downloads
    assert _cached_bytes("file-large") == data


def test_unknown_length_within_the_limit_is_inline(bucket: None, small_limit: int) -> None:
    data = _payload(small_limit)  # exactly the limit
    provider = FakeProvider(data, declare_length=False)
    provider.install()
    _file_record("file-edge", 0)
    result = _get_content("file-edge")
    assert result["statusCode"] == 200
    assert base64.b64decode(str(result["body"])) == data


def test_a_record_known_small_skips_the_cache_lookup(bucket: None, small_limit: int) -> None:
    provider = FakeProvider(b"abc")
    provider.install()
    _file_record("file-known", 3)
    calls: list[str] = []
    original = ContentCache.cached_size

    def spy(self: ContentCache, file_id: str) -> int | None:
        calls.append(file_id)
        return original(self, file_id)

    ContentCache.cached_size = spy  # type: ignore[method-assign]
    try:
        assert _get_content("file-known")["statusCode"] == 200
        _file_record("file-unknown", 0)
        assert _get_content("file-unknown")["statusCode"] == 200
    finally:
        ContentCache.cached_size = original  # type: ignore[method-assign]
    assert calls == ["file-unknown"]


def test_provider_errors_are_envelopes(bucket: None) -> None:
    FakeProvider(b"", status=404).install()
    _file_record("file-gone", 0)
    result = _get_content("file-gone")
    assert result["statusCode"] == 404
    assert json.loads(str(result["body"]))["error"]["message"] == "gone"


def test_a_provider_that_breaks_off_is_502(bucket: None, small_limit: int) -> None:
    data = _payload(small_limit * 2)

    def broken(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield data[:1000]
            raise httpx.RemoteProtocolError("peer closed connection")

        return httpx.Response(200, content=body())

    deployment = ProviderDeployment(name="openai", type="openai", api_base="https://api.example/v1")
    client = ProviderClient(deployment, lambda refresh: "sk-upstream", timeout=5)
    client._http = httpx.Client(transport=httpx.MockTransport(broken))
    registry._clients["openai"] = client
    _file_record("file-broken", 0)
    result = _get_content("file-broken")
    assert result["statusCode"] == 502
    assert json.loads(str(result["body"]))["error"]["code"] == "upstream_error"
    assert ContentCache().cached_size("file-broken") is None


def test_unknown_file_is_404(bucket: None) -> None:
    result = _get_content("file-nope")
    assert result["statusCode"] == 404


class RecordingS3:
    """Enough of an S3 client for ContentCache.store, keeping only sizes (no moto, no bytes kept)."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.fail_part = fail_part
        self.parts: list[tuple[int, int]] = []
        self.completed: list[dict[str, object]] = []
        self.aborted = 0

    def create_multipart_upload(self, **kwargs: object) -> dict[str, str]:
        return {"UploadId": "up-1"}

    def upload_part(self, *, PartNumber: int, Body: bytes, **kwargs: object) -> dict[str, str]:
        if PartNumber == self.fail_part:
            raise RuntimeError("S3 said no")
        self.parts.append((PartNumber, len(Body)))
        return {"ETag": f'"etag-{PartNumber}"'}

    def complete_multipart_upload(self, *, MultipartUpload: dict[str, object], **kwargs: object) -> None:
        self.completed.append(MultipartUpload)

    def abort_multipart_upload(self, **kwargs: object) -> None:
        self.aborted += 1


def test_memory_stays_bounded_whatever_the_size() -> None:
    import tracemalloc

    from gateway.storage.content_cache import PART_BYTES, UPLOADS_IN_FLIGHT

    chunk = b"z" * 65536
    peaks = []
    for megabytes in (24, 160):
        s3 = RecordingS3()
        tracemalloc.start()
        try:
            size = ContentCache(bucket="b", client=s3).store("f", (chunk for _ in range(megabytes * 16)))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert size == megabytes * 2**20
        assert [number for number, _ in s3.parts] == list(range(1, len(s3.parts) + 1))
        parts = s3.completed[0]["Parts"]
        assert isinstance(parts, list) and [p["PartNumber"] for p in parts] == list(range(1, len(parts) + 1))
    # (tracemalloc also counts what other threads allocate meanwhile: margins, not exact figures)
    assert max(peaks) < (UPLOADS_IN_FLIGHT + 2) * PART_BYTES + 8 * 2**20, peaks
    assert peaks[1] < peaks[0] * 1.5, peaks  # 160 MB needs about what 24 MB needs: constant


def test_a_failing_part_aborts_the_upload() -> None:
    s3 = RecordingS3(fail_part=2)
    with pytest.raises(RuntimeError, match="S3 said no"):
        ContentCache(bucket="b", client=s3).store("f", (b"q" * 2**20 for _ in range(40)))
    assert s3.aborted == 1 and not s3.completed
