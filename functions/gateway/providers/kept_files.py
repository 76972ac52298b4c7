"""The gateway's own file store, for provider types without an OpenAI-style one (Anthropic,
Bedrock): OpenAI `file` objects kept in the gateway's bucket, one object per file under
`kept-files/<deployment>/<id>`, its filename, purpose and times in the object's metadata.

It answers the file and upload methods of `providers.api.ProviderApi`, so that the services and
the file transfer treat these files like any provider's. Writes are conditional (`If-None-Match:
*`): a file id is written once, so two runs that derive the same id (a batch's output file) leave
one file, and the second learns it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError

from gateway.errors import UpstreamRequestError
from gateway.formats.jsonl import stream_chunks
from gateway.providers.errors import bad_request
from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.part_files import PartFiles, SpooledPart
from gateway.storage.s3 import MISSING_CODES, error_code, part_uploads, s3_client

ID_PREFIX = "kfile-"
# S3 parts must be at least 5 MiB except the last.
PART_BYTES = 8 * 1024 * 1024
_MISSING = MISSING_CODES | {"NoSuchUpload"}
_EXISTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_PROCESSED = "processed"


def derived_id(*seed: str) -> str:
    """A file id fixed by `seed` (e.g. a batch and its kind of results): whoever builds that
    file first writes it, and everyone else finds it."""
    return ID_PREFIX + hashlib.sha256("\x00".join(seed).encode()).hexdigest()[:32]


def is_kept(file_id: str) -> bool:
    """Whether `file_id` names a kept file (a provider's ids never start so)."""
    return file_id.startswith(ID_PREFIX)


def new_file_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex


class FileExists(Exception):
    """A conditional write met a file already written under that id."""


@dataclass
class _OpenUpload:
    """A multipart upload in progress (this process's part numbering)."""

    next_part: int = 1
    numbers: dict[str, int] = field(default_factory=dict)


class KeptFiles:
    def __init__(self, deployment: str, bucket: str | None = None, client: Any = None) -> None:
        self.deployment = deployment
        self.bucket = bucket or get_settings().bucket_name
        self._s3 = client or s3_client()
        self.prefix = f"{resources.KEPT_FILES_PREFIX}{deployment}/files/"
        self._uploads: dict[str, _OpenUpload] = {}

    def key(self, file_id: str) -> str:
        if not file_id.startswith(ID_PREFIX) or "/" in file_id:
            raise _not_found(file_id)
        return self.prefix + file_id

    # Files -------------------------------------------------------------------------------
    def create_file(
        self,
        *,
        filename: str,
        content: bytes | IO[bytes],
        purpose: str,
        expires_after: dict[str, Any] | None = None,
        content_type: str = "application/octet-stream",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        chunks = [content] if isinstance(content, bytes | bytearray) else stream_chunks(content)
        return self.put_file(
            new_file_id(), chunks, filename=filename, purpose=purpose, expires_after=expires_after
        )

    def check_batch_input(self, file_id: str) -> None:
        """A 400 unless file `file_id` was uploaded for batches (a 404 if there is none)."""
        purpose = self.retrieve_file(file_id).get("purpose")
        if purpose != "batch":
            raise bad_request(
                f"The input file '{file_id}' must be uploaded with purpose 'batch', not '{purpose}'.",
                param="input_file_id",
                code="invalid_file_purpose",
            )

    def keep_results(self, batch_id: str, kind: str, spool: IO[bytes], *, purpose: str) -> str | None:
        """The id of the `kind` results file (output, error) of the provider's batch `batch_id`,
        written from `spool` once (None for an empty spool): a later run that finds the file
        written by an earlier one takes it as it is."""
        if not spool.tell():
            return None
        spool.seek(0)
        file_id = derived_id(self.deployment, batch_id, kind)
        with contextlib.suppress(FileExists):
            self.put_file(
                file_id,
                iter(lambda: spool.read(1024 * 1024), b""),
                filename=f"batch_{batch_id}_{kind}.jsonl",
                purpose=purpose,
            )
        return file_id

    def put_file(
        self,
        file_id: str,
        chunks: Iterable[bytes],
        *,
        filename: str,
        purpose: str,
        expires_after: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write `chunks` as file `file_id` once; FileExists if it is already written."""
        now = int(time.time())
        metadata = _metadata(filename, purpose, now, expires_after)
        key = self.key(file_id)
        try:
            with PartFiles(files=2) as part_files:
                parts = part_files.parts(chunks, PART_BYTES)
                head = next(parts)
                if head.size < PART_BYTES:
                    self._s3.put_object(
                        Bucket=self.bucket, Key=key, Body=head.body, Metadata=metadata, IfNoneMatch="*"
                    )
                    size = head.size
                else:
                    size = self._multipart(key, metadata, head, parts)
        except ClientError as exc:
            if error_code(exc) in _EXISTS:
                raise FileExists(file_id) from exc
            raise
        return _file_object(file_id, size, metadata)

    def _multipart(
        self, key: str, metadata: dict[str, str], head: SpooledPart, rest: Iterator[SpooledPart]
    ) -> int:
        """Each part sent in a thread while the next one fills (`rest` takes turns between two
        files: a part's upload ends before the part after next is asked for)."""
        upload_id = self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=metadata)[
            "UploadId"
        ]
        in_flight: list[Future[dict[str, Any]]] = []  # the part sending, and the one after it
        try:
            done: list[dict[str, Any]] = []
            size = number = 0
            part: SpooledPart | None = head
            while part is not None:
                number += 1
                in_flight.append(part_uploads().submit(self._upload_part, key, upload_id, number, part.body))
                if len(in_flight) == 2:
                    done.append(in_flight.pop(0).result())
                size += part.size
                part = next(rest, None)  # fills the file whose upload just ended
            done.extend(future.result() for future in in_flight)
            self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                IfNoneMatch="*",
            )
        except BaseException:
            for future in in_flight:  # the parts in flight end before the upload is aborted
                with contextlib.suppress(BaseException):
                    future.result()
            self._abort(key, upload_id)
            raise
        return size

    def _upload_part(self, key: str, upload_id: str, number: int, body: IO[bytes]) -> dict[str, Any]:
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self.key(file_id))
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise _not_found(file_id) from exc
            raise
        return _file_object(file_id, int(head["ContentLength"]), head.get("Metadata") or {})

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        after: str | None = None,
        order: str = "desc",
        **_: Any,
    ) -> dict[str, Any]:
        """OpenAI's list page, newest first by default (for adoption: rare, so S3 lists all)."""
        listed: list[tuple[Any, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for item in page.get("Contents") or ():
                listed.append((item["LastModified"], str(item["Key"])[len(self.prefix) :]))
        listed.sort(reverse=order != "asc")
        ids = [file_id for _, file_id in listed]
        if after is not None and after in ids:
            ids = ids[ids.index(after) + 1 :]
        data: list[dict[str, Any]] = []
        for file_id in ids:
            if len(data) > limit:
                break
            try:
                obj = self.retrieve_file(file_id)
            except UpstreamRequestError:
                continue  # deleted meanwhile
            if purpose is None or obj["purpose"] == purpose:
                data.append(obj)
        page_data = data[:limit]
        return {
            "object": "list",
            "data": page_data,
            "first_id": page_data[0]["id"] if page_data else None,
            "last_id": page_data[-1]["id"] if page_data else None,
            "has_more": len(data) > limit,
        }

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self._s3.delete_object(Bucket=self.bucket, Key=self.key(file_id))
        return {"id": file_id, "object": "file", "deleted": True}

    def file_content(self, file_id: str) -> bytes:
        with self.stream_file_content(file_id) as stream:
            return b"".join(stream.iter_bytes())

    @contextmanager
    def stream_file_content(self, file_id: str) -> Iterator[_ObjectStream]:
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=self.key(file_id))
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise _not_found(file_id) from exc
            raise
        body = answer["Body"]
        try:
            yield _ObjectStream(body)
        finally:
            body.close()

    def download_url(self, file_id: str, filename_disposition: str) -> str:
        """A short-lived presigned GET of the file where it lies (a bearer token: never log it)."""
        from gateway.storage.content_cache import CONTENT_TYPE, DOWNLOAD_URL_SECONDS

        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(file_id),
                "ResponseContentType": CONTENT_TYPE,
                "ResponseContentDisposition": filename_disposition,
            },
            ExpiresIn=DOWNLOAD_URL_SECONDS,
        )
        return url

    # Uploads (the file transfer's path for large files) ----------------------------------
    def create_upload(self, *, filename: str, purpose: str, size: int, mime_type: str) -> dict[str, Any]:
        file_id = new_file_id()
        now = int(time.time())
        metadata = _metadata(filename, purpose, now, None)
        s3_upload = self._s3.create_multipart_upload(
            Bucket=self.bucket, Key=self.key(file_id), Metadata=metadata
        )
        upload_id = f"{file_id}:{s3_upload['UploadId']}"
        self._uploads[upload_id] = _OpenUpload()
        return {
            "id": upload_id,
            "object": "upload",
            "bytes": size,
            "created_at": now,
            "filename": filename,
            "purpose": purpose,
            "status": "pending",
        }

    def add_upload_part(self, upload_id: str, data: bytes | IO[bytes]) -> dict[str, Any]:
        """Parts are numbered in the order they are added; a retried part keeps its number
        (the number moves on only once S3 took the part), so S3 overwrites it."""
        file_id, s3_upload_id = _split_upload_id(upload_id)
        progress = self._uploads.setdefault(upload_id, _OpenUpload())
        body = data if isinstance(data, bytes | bytearray) else data.read()
        number = progress.next_part
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key(file_id), UploadId=s3_upload_id, PartNumber=number, Body=body
        )
        part_id = f"{number}:{str(answer['ETag']).strip(chr(34))}"
        progress.next_part += 1
        return {
            "id": part_id,
            "object": "upload.part",
            "upload_id": upload_id,
            "created_at": int(time.time()),
        }

    def complete_upload(self, upload_id: str, part_ids: list[str], md5: str | None = None) -> dict[str, Any]:
        file_id, s3_upload_id = _split_upload_id(upload_id)
        parts = []
        for part_id in part_ids:
            number, _, etag = part_id.partition(":")
            parts.append({"PartNumber": int(number), "ETag": f'"{etag}"'})
        self._s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key(file_id),
            UploadId=s3_upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
        self._uploads.pop(upload_id, None)
        return {
            "id": upload_id,
            "object": "upload",
            "status": "completed",
            "file": self.retrieve_file(file_id),
        }

    def cancel_upload(self, upload_id: str) -> dict[str, Any]:
        file_id, s3_upload_id = _split_upload_id(upload_id)
        self._uploads.pop(upload_id, None)
        self._abort(self.key(file_id), s3_upload_id)
        return {"id": upload_id, "object": "upload", "status": "cancelled"}

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception:  # the bucket's lifecycle rule aborts what is left behind
            from gateway.observability import logger

            logger.warning("could not abort a multipart upload", extra={"key": key})


class _ObjectStream:
    """An S3 object's body as `ContentStream` (what content delivery reads)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        yield from self._body.iter_chunks(chunk_size or 1024 * 1024)


def _metadata(
    filename: str, purpose: str, created_at: int, expires_after: dict[str, Any] | None
) -> dict[str, str]:
    # S3 metadata travels as HTTP headers: ASCII only, so the filename is percent-encoded.
    metadata = {"filename": quote(filename, safe=""), "purpose": purpose, "created-at": str(created_at)}
    if expires_after and expires_after.get("seconds"):
        metadata["expires-at"] = str(created_at + int(expires_after["seconds"]))
    return metadata


def _file_object(file_id: str, size: int, metadata: dict[str, str]) -> dict[str, Any]:
    expires_at = metadata.get("expires-at")
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(metadata.get("created-at") or 0),
        "expires_at": int(expires_at) if expires_at else None,
        "filename": unquote(metadata.get("filename") or f"{file_id}.jsonl"),
        "purpose": metadata.get("purpose") or "batch",
        "status": _PROCESSED,
    }


def _split_upload_id(upload_id: str) -> tuple[str, str]:
    file_id, _, s3_upload_id = upload_id.partition(":")
    if not s3_upload_id:
        raise UpstreamRequestError(
            404,
            f"No upload found with id '{upload_id}'.",
            error_type="invalid_request_error",
            code="not_found",
        )
    return file_id, s3_upload_id


def _not_found(file_id: str) -> UpstreamRequestError:
    return UpstreamRequestError(
        404,
        f"No such File object: {file_id}",
        error_type="invalid_request_error",
        param="id",
        code="not_found",
    )
