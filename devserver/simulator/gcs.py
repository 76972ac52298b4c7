"""Cloud Storage's JSON API for objects, in memory: what Vertex AI batch jobs read and write.

Paths (under the simulator's ``/gcs`` prefix) as https://cloud.google.com/storage/docs/json_api/v1/objects:
``POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=…`` (objects.insert, media upload;
``ifGenerationMatch=0`` writes only a new object; ``uploadType=resumable`` starts a session whose
URI (``Location``) takes the bytes in ``PUT``s with ``Content-Range: bytes a-b/*`` (308 until the
last, ``bytes a-b/<total>``, which makes the object; every part but the last a multiple of 256
KiB, each starting where the last ended: https://cloud.google.com/storage/docs/performing-resumable-uploads),
``GET /storage/v1/b/{bucket}/o/{object}``
(metadata, or the bytes with ``alt=media``), ``GET /storage/v1/b/{bucket}/o?prefix=…``
(objects.list, pages of ``maxResults`` up to 1,000 with ``pageToken``), ``DELETE …/o/{object}``.

Rules enforced: the bucket must exist (404 otherwise; buckets are made with ``create_bucket``);
object names are 1 to 1,024 bytes of UTF-8 without CR or LF, not ``.`` or ``..``, and not under
``.well-known/acme-challenge/`` (https://cloud.google.com/storage/docs/objects#naming); a
generation precondition that fails answers 412; an upload type other than ``media`` or
``resumable`` is 400 here.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_OBJECT_NAME_BYTES = 1024
MAX_LIST_RESULTS = 1000
RESUMABLE_PART_MULTIPLE = 256 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


class GcsError(Exception):
    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


@dataclass
class StoredObject:
    bucket: str
    name: str
    data: bytes
    generation: int
    content_type: str
    created: float

    def resource(self) -> dict[str, Any]:
        stamp = (
            datetime.fromtimestamp(self.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": "1",
            "contentType": self.content_type,
            "size": str(len(self.data)),
            "md5Hash": base64.b64encode(hashlib.md5(self.data).digest()).decode(),
            "timeCreated": stamp,
            "updated": stamp,
        }


def check_object_name(name: str) -> None:
    encoded = name.encode("utf-8", "surrogatepass")
    if not name or len(encoded) > MAX_OBJECT_NAME_BYTES:
        raise GcsError(400, "The object name must be between 1 and 1024 bytes.", "invalid")
    if "\r" in name or "\n" in name or name in (".", "..") or name.startswith(".well-known/acme-challenge/"):
        raise GcsError(400, f"Invalid object name: {name!r}", "invalid")


@dataclass
class UploadSession:
    bucket: str
    name: str
    content_type: str
    received: bytearray


class FakeGcs:
    def __init__(self, buckets: tuple[str, ...] = ()) -> None:
        self._buckets: dict[str, dict[str, StoredObject]] = {name: {} for name in buckets}
        self.sessions: dict[str, UploadSession] = {}
        self._lock = threading.Lock()
        self._generation = int(time.time() * 1_000_000)

    def create_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, {})

    def snapshot(self) -> dict[str, dict[str, StoredObject]]:
        """Every bucket's objects (for the local server's saved data)."""
        with self._lock:
            return {bucket: dict(objects) for bucket, objects in self._buckets.items()}

    def restore(self, buckets: dict[str, dict[str, StoredObject]]) -> None:
        with self._lock:
            for bucket, objects in buckets.items():
                self._buckets.setdefault(bucket, {}).update(objects)

    def reset(self) -> None:
        with self._lock:
            for objects in self._buckets.values():
                objects.clear()

    def _bucket(self, bucket: str) -> dict[str, StoredObject]:
        objects = self._buckets.get(bucket)
        if objects is None:
            raise GcsError(404, "The specified bucket does not exist.", "notFound")
        return objects

    def insert(
        self,
        bucket: str,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> dict[str, Any]:
        check_object_name(name)
        with self._lock:
            objects = self._bucket(bucket)
            current = objects.get(name)
            if (
                if_generation_match is not None
                and (current.generation if current else 0) != if_generation_match
            ):
                raise GcsError(
                    412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet"
                )
            self._generation += 1
            stored = StoredObject(bucket, name, data, self._generation, content_type, time.time())
            objects[name] = stored
            return stored.resource()

    def start_upload(self, bucket: str, name: str, content_type: str) -> str:
        """A resumable upload's session id."""
        check_object_name(name)
        with self._lock:
            self._bucket(bucket)
            upload_id = secrets.token_urlsafe(24)
            self.sessions[upload_id] = UploadSession(bucket, name, content_type, bytearray())
        return upload_id

    def put_part(self, upload_id: str, content_range: str, data: bytes) -> dict[str, Any] | int:
        """The object once the last part is in, else how many bytes the session holds."""
        with self._lock:
            session = self.sessions.get(upload_id)
        if session is None:
            raise GcsError(404, "No such upload session.", "notFound")
        match = _CONTENT_RANGE.match(content_range or "")
        if match is None:
            raise GcsError(400, f"Invalid Content-Range: {content_range!r}", "invalid")
        first, last, total = match.group(1), match.group(2), match.group(3)
        if first is not None:
            start, end = int(first), int(last)
            if start != len(session.received) or end - start + 1 != len(data):
                raise GcsError(
                    400, "The part does not start where the upload stands or has another length.", "invalid"
                )
            if total == "*" and len(data) % RESUMABLE_PART_MULTIPLE:
                raise GcsError(400, "Every part but the last must be a multiple of 256 KiB.", "invalid")
            session.received += data
        if total == "*":
            return len(session.received)
        if int(total) != len(session.received):
            raise GcsError(400, "The upload's total size does not match the bytes sent.", "invalid")
        with self._lock:
            self.sessions.pop(upload_id, None)
        return self.insert(
            session.bucket, session.name, bytes(session.received), content_type=session.content_type
        )

    def get(self, bucket: str, name: str) -> StoredObject:
        with self._lock:
            stored = self._bucket(bucket).get(name)
        if stored is None:
            raise GcsError(404, f"No such object: {bucket}/{name}", "notFound")
        return stored

    def delete(self, bucket: str, name: str) -> None:
        with self._lock:
            if self._bucket(bucket).pop(name, None) is None:
                raise GcsError(404, f"No such object: {bucket}/{name}", "notFound")

    def list(self, bucket: str, query: dict[str, str]) -> dict[str, Any]:
        raw = query.get("maxResults", str(MAX_LIST_RESULTS))
        if not raw.isdigit() or int(raw) < 1:
            raise GcsError(400, f"Invalid value for maxResults: {raw}", "invalid")
        limit = min(int(raw), MAX_LIST_RESULTS)
        prefix = query.get("prefix", "")
        with self._lock:
            names = sorted(name for name in self._bucket(bucket) if name.startswith(prefix))
            start = query.get("pageToken")
            if start:
                names = [name for name in names if name >= base64.urlsafe_b64decode(start).decode()]
            page = [self._buckets[bucket][name].resource() for name in names[:limit]]
        body: dict[str, Any] = {"kind": "storage#objects", "items": page}
        if len(names) > limit:
            body["nextPageToken"] = base64.urlsafe_b64encode(names[limit].encode()).decode()
        return body

    # what a job reads and writes, by gs:// URI ------------------------------------------------
    def read_uri(self, uri: str) -> bytes:
        bucket, name = split_uri(uri)
        return self.get(bucket, name).data

    def write_uri(self, uri: str, data: bytes, content_type: str = "application/jsonl") -> None:
        bucket, name = split_uri(uri)
        self.insert(bucket, name, data, content_type=content_type)


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/name` -> (bucket, name)."""
    if not uri.startswith("gs://"):
        raise GcsError(400, f"Invalid Cloud Storage URI: {uri}", "invalid")
    bucket, _, name = uri[len("gs://") :].partition("/")
    return bucket, name
