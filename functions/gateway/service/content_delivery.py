"""A file's content for GET /files/{id}/content: inline when it fits a Lambda response,
otherwise streamed once from the provider into the S3 cache and handed out by presigned URL
(a file the gateway keeps is presigned where it lies).

Memory stays bounded whatever the size: at most MAX_INLINE_CONTENT_BYTES are held to decide,
then one S3 part at a time (see gateway.storage.content_cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from gateway import routes
from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.observability import logger
from gateway.providers.kept_files import KeptFiles, is_kept
from gateway.providers.registry import client_for
from gateway.storage.content_cache import ContentCache
from gateway.storage.id_map import ObjectRecord

if TYPE_CHECKING:
    from gateway.providers.api import ContentStream

# Lambda returns at most 6 MB of JSON, and a binary body travels in it base64-encoded (4 bytes
# for every 3) beside the status code and headers, for which this much is kept free.
RESPONSE_OVERHEAD_BYTES = 16 * 1024
MAX_INLINE_CONTENT_BYTES = (routes.LAMBDA_MAX_RESPONSE_BYTES - RESPONSE_OVERHEAD_BYTES) // 4 * 3
STREAM_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class InlineContent:
    filename: str
    content: bytes


@dataclass(frozen=True)
class RedirectContent:
    filename: str
    url: str  # presigned: a bearer token for a few minutes, never logged


FileContent = InlineContent | RedirectContent


def deliver(record: ObjectRecord, filename: str, cache: ContentCache | None = None) -> FileContent:
    """The content of a file `record` that has an upstream id."""
    assert record.upstream_id is not None
    if is_kept(record.upstream_id):
        return _deliver_kept(record, record.upstream_id, filename)
    cache = cache or ContentCache()
    if not _known_small(record) and cache.cached_size(record.id) is not None:
        return RedirectContent(filename, cache.download_url(record.id, attachment_disposition(filename)))
    with client_for(record.provider).stream_file_content(record.upstream_id) as response:
        chunks = _upstream_bytes(response, record.provider)
        head, complete = _read_at_most(chunks, MAX_INLINE_CONTENT_BYTES)
        if complete:
            return InlineContent(filename, head)
        rest = [head]
        del head  # held by `rest` only, and let go of once the cache has taken it
        size = cache.store(record.id, _then(rest, chunks))
    logger.info("file content cached, redirecting", extra={"file_id": record.id, "bytes": size})
    return RedirectContent(filename, cache.download_url(record.id, attachment_disposition(filename)))


def _deliver_kept(record: ObjectRecord, kept_id: str, filename: str) -> FileContent:
    """A file the gateway keeps (a plan's merged file, an Anthropic or Bedrock file) is in the
    bucket already: a large one is presigned where it lies, never copied into the cache."""
    kept = KeptFiles(record.provider)
    size = record.object["bytes"] if _known_small(record) else int(kept.retrieve_file(kept_id)["bytes"])
    if size <= MAX_INLINE_CONTENT_BYTES:
        return InlineContent(filename, kept.file_content(kept_id))
    return RedirectContent(filename, kept.download_url(kept_id, attachment_disposition(filename)))


def attachment_disposition(filename: str) -> str:
    """Content-Disposition for `filename`: a plain ASCII fallback, plus RFC 6266 filename* if needed."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename) or "file"
    value = f'attachment; filename="{plain}"'
    if plain != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def forget(record: ObjectRecord, cache: ContentCache | None = None) -> None:
    """Drop the cached content of a deleted file (only large content is ever cached)."""
    if not _known_small(record):
        (cache or ContentCache()).forget(record.id)


def _known_small(record: ObjectRecord) -> bool:
    size = record.object.get("bytes")
    return isinstance(size, int) and 0 < size <= MAX_INLINE_CONTENT_BYTES


def _upstream_bytes(response: ContentStream, provider: str) -> Iterator[bytes]:
    """The response body in chunks; a provider that stalls or drops the connection is a 504/502."""
    import httpx  # loaded by the provider client that sent `response`: here, a dict lookup

    try:
        yield from response.iter_bytes(STREAM_CHUNK_BYTES)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"provider '{provider}' stopped sending the file content") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"provider '{provider}' broke off sending the file content") from exc


def _read_at_most(chunks: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """The first bytes of `chunks`, up to just past `limit`; True when that was all of it."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer), False
    return bytes(buffer), True


def _then(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """`head`'s one item, then `rest`; the item is popped so that it is freed once consumed."""
    yield head.pop()
    yield from rest
