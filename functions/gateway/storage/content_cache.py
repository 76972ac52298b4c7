"""File content too large for a Lambda response, cached in S3 and handed out by presigned URL.

One object per gateway file id under resources.CACHED_CONTENT_PREFIX (a lifecycle rule expires
them). Content is written once with a multipart upload of fixed-size parts, so memory stays at
about one part whatever the file size; later downloads find it with HeadObject.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from gateway.observability import logger
from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.s3 import is_missing, s3_client

# S3 parts must be at least 5 MiB except the last; 8 MiB is boto3's default part size too.
PART_BYTES = 8 * 1024 * 1024
# Parts uploading while the next one is read from the provider (so the two legs overlap):
# memory is about (UPLOADS_IN_FLIGHT + 2) * PART_BYTES whatever the file size.
UPLOADS_IN_FLIGHT = 1
# A presigned URL is only the way to the bytes, followed at once by the client.
DOWNLOAD_URL_SECONDS = 300
CONTENT_TYPE = "application/octet-stream"


def cache_key(file_id: str) -> str:
    return resources.CACHED_CONTENT_PREFIX + file_id


class ContentCache:
    def __init__(self, bucket: str | None = None, client: Any = None, part_bytes: int = PART_BYTES) -> None:
        self.bucket = bucket or get_settings().bucket_name
        self._s3 = client or s3_client()
        self.part_bytes = part_bytes

    def cached_size(self, file_id: str) -> int | None:
        """The size of the cached content of `file_id`, or None when it is not cached."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=cache_key(file_id))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def forget(self, file_id: str) -> None:
        """Remove the cached content of `file_id`, if any (S3 deletes are idempotent)."""
        self._s3.delete_object(Bucket=self.bucket, Key=cache_key(file_id))

    def store(self, file_id: str, chunks: Iterable[bytes]) -> int:
        """Write the content from `chunks` (any sizes) and return its length in bytes.

        Content shorter than one part is a single PutObject; anything longer is a multipart
        upload that is aborted if reading or writing fails, so no partial object is ever visible.
        """
        key = cache_key(file_id)
        parts = fixed_size_parts(chunks, self.part_bytes)
        head = [next(parts, b"")]  # a list, so that the part can be let go once uploaded
        if len(head[0]) < self.part_bytes:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=head[0], ContentType=CONTENT_TYPE)
            logger.info("content cached", extra={"file_id": file_id, "bytes": len(head[0]), "parts": 1})
            return len(head[0])
        upload_id = self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=CONTENT_TYPE)[
            "UploadId"
        ]
        try:
            size, done = self._upload_parts(key, upload_id, head, parts)
            self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            self._abort(key, upload_id)
            raise
        logger.info("content cached", extra={"file_id": file_id, "bytes": size, "parts": len(done)})
        return size

    def _upload_parts(
        self, key: str, upload_id: str, head: list[bytes], rest: Iterator[bytes]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Upload `head`'s part then `rest` as parts 1, 2, ...; reading the next part from the provider
        overlaps the upload of the previous ones (at most UPLOADS_IN_FLIGHT running, one queued)."""
        size, done = 0, list[dict[str, Any]]()
        in_flight: deque[Future[dict[str, Any]]] = deque()
        with ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="content-cache") as pool:
            try:
                body = head.pop()  # each part is held only until it is uploaded
                while body:
                    in_flight.append(
                        pool.submit(self._upload_part, key, upload_id, len(done) + len(in_flight) + 1, body)
                    )
                    size += len(body)
                    body = b""
                    if len(in_flight) > UPLOADS_IN_FLIGHT:
                        done.append(in_flight.popleft().result())
                    body = next(rest, b"")
                while in_flight:
                    done.append(in_flight.popleft().result())
            finally:
                for future in in_flight:
                    future.cancel()
        return size, done

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def download_url(self, file_id: str, filename_disposition: str) -> str:
        """A short-lived presigned GET of the cached content (never log it: it is a bearer token)."""
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": cache_key(file_id),
                "ResponseContentType": CONTENT_TYPE,
                "ResponseContentDisposition": filename_disposition,
            },
            ExpiresIn=DOWNLOAD_URL_SECONDS,
        )
        return url

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception:  # the bucket's lifecycle rule aborts what is left behind
            logger.warning("could not abort a multipart upload", extra={"key": key})


def fixed_size_parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup `chunks` into pieces of exactly `size` bytes, the last one shorter (never empty,
    except a single b"" for empty input). Holds at most one piece plus one chunk."""
    buffer = bytearray()
    produced = False
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            with memoryview(buffer) as view:
                piece = bytes(view[:size])  # one copy, not two
            del buffer[:size]
            yield piece
            piece = b""
            produced = True
    if buffer or not produced:
        yield bytes(buffer)
