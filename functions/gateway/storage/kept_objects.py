"""The objects the gateway keeps for a deployment without a file store, as the books see them:
under `kept-files/<deployment>/`, its notes on batches and its kept files, each named by its key.

- `batch-pending/<gateway batch id>.json`: a create's note written ahead (Anthropic, Gemini);
- `batch-notes/<provider batch id>.json`: the note of a provider batch (Anthropic, Gemini);
- `bedrock-jobs/<token>/note.json`, `vertex-jobs/<token>/note.json`: a job's note, written ahead
  of the job; the token hashes the gateway batch id, which only the note's body names;
- `files/<kept file id>`: a kept file (uploaded, a batch's results, a plan's merged files).

Anything else under the prefix is none of these and is left alone. Listing is by deployment
prefix, one page (at most MAX_KEYS) per call, so a caller bounds what it reads; deletes are
conditional on the object's ETag, so a note written again since it was listed is never removed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.s3 import MISSING_CODES, error_code, is_missing, s3_client

PENDING_NOTE = "pending_note"
BATCH_NOTE = "batch_note"
JOB_NOTE = "job_note"
KEPT_FILE = "kept_file"
NOTE_KINDS = frozenset({PENDING_NOTE, BATCH_NOTE, JOB_NOTE})

# The folders under `kept-files/<deployment>/` (providers.batch_notes, providers.bedrock.client,
# providers.vertex.client, providers.kept_files write them; tests/unit/test_kept_objects.py checks each).
PENDING_FOLDER = "batch-pending/"
NOTES_FOLDER = "batch-notes/"
JOB_FOLDERS = ("bedrock-jobs/", "vertex-jobs/")
FILES_FOLDER = "files/"
_NOTE_SUFFIX = ".json"
_JOB_NOTE = "/note.json"
MAX_KEYS = 1000  # S3's largest page
_GATEWAY_BATCH_TAG = "gateway_batch_id"  # models.batches.GATEWAY_BATCH_TAG, in a note's metadata
_CHANGED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
# What named_id read, by (bucket, key, ETag): an object's body and metadata change only with
# its ETag, and a warm watcher lists the same notes pass after pass.
_NAMED: dict[tuple[str, str, str], str | None] = {}
_NAMED_HELD = 20_000
_NAMED_LOCK = threading.Lock()


@dataclass(frozen=True)
class KeptObject:
    key: str
    deployment: str
    kind: str
    name: str  # gateway batch id (pending note), provider batch id, job token, kept file id
    modified_at: float  # epoch seconds
    etag: str
    # the gateway id the object names inside (a note's batch, a kept file's uploader), once read
    named_id: str | None = None


def root(deployment: str) -> str:
    return f"{resources.KEPT_FILES_PREFIX}{deployment}/"


def classify(deployment: str, key: str, modified_at: float, etag: str) -> KeptObject | None:
    """The kept object `key` is, or None for a key of none of the known shapes."""
    rest = key.removeprefix(root(deployment))
    if rest == key:
        return None
    found: tuple[str, str] | None = None
    if rest.startswith(PENDING_FOLDER) and rest.endswith(_NOTE_SUFFIX):
        found = PENDING_NOTE, rest[len(PENDING_FOLDER) : -len(_NOTE_SUFFIX)]
    elif rest.startswith(NOTES_FOLDER) and rest.endswith(_NOTE_SUFFIX):
        found = BATCH_NOTE, rest[len(NOTES_FOLDER) : -len(_NOTE_SUFFIX)]
    elif rest.startswith(FILES_FOLDER):
        found = KEPT_FILE, rest[len(FILES_FOLDER) :]
    else:
        for folder in JOB_FOLDERS:
            if rest.startswith(folder) and rest.endswith(_JOB_NOTE):
                found = JOB_NOTE, rest[len(folder) : -len(_JOB_NOTE)]
    if found is None or not found[1] or "/" in found[1]:
        return None
    kind, name = found
    return KeptObject(key, deployment, kind, name, modified_at, etag, name if kind == PENDING_NOTE else None)


class KeptBucket:
    def __init__(self, bucket: str | None = None, client: Any = None) -> None:
        self.bucket = bucket or get_settings().bucket_name
        self._s3 = client or s3_client()

    def page(
        self, deployment: str, *, folder: str = "", after: str | None = None, max_keys: int = MAX_KEYS
    ) -> tuple[list[KeptObject], str | None]:
        """One list call: the kept objects of `deployment` (under `folder`) after key `after`,
        and the key to continue after (None: the listing ended)."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": root(deployment) + folder,
            "MaxKeys": max(1, min(max_keys, MAX_KEYS)),
        }
        if after:
            params["StartAfter"] = after
        try:
            answer = self._s3.list_objects_v2(**params)
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":  # nothing kept yet (a local server's first start)
                return [], None
            raise
        contents: list[dict[str, Any]] = list(answer.get("Contents") or ())
        found = [
            obj
            for item in contents
            if (
                obj := classify(
                    deployment,
                    str(item["Key"]),
                    item["LastModified"].timestamp(),
                    str(item.get("ETag") or ""),
                )
            )
        ]
        more = bool(answer.get("IsTruncated")) and bool(contents)
        return found, str(contents[-1]["Key"]) if more else None

    def every(self, deployment: str) -> Iterator[KeptObject]:
        """Every kept object of `deployment`, page after page (audits: cost grows with the bucket)."""
        after: str | None = None
        while True:
            found, after = self.page(deployment, after=after)
            yield from found
            if after is None:
                return

    def named_id(self, obj: KeptObject) -> str | None:
        """The gateway id `obj` names inside: a note's batch (a pending note's is its key's), the
        gateway file id a kept file was uploaded under; None if it names none (or is gone).
        Remembered by ETag in this process: the same object read again costs no request."""
        if obj.kind == PENDING_NOTE:
            return obj.name
        remembered = (self.bucket, obj.key, obj.etag)
        if obj.etag and remembered in _NAMED:
            return _NAMED[remembered]
        named, etag_read = self._read_named_id(obj)
        if obj.etag and etag_read == obj.etag:  # what was read is the object listed
            with _NAMED_LOCK:
                if len(_NAMED) >= _NAMED_HELD:
                    del _NAMED[next(iter(_NAMED))]  # the oldest
                _NAMED[remembered] = named
        return named

    def _read_named_id(self, obj: KeptObject) -> tuple[str | None, str | None]:
        """What named_id answers, and the ETag of what it read (None: the object is gone)."""
        try:
            if obj.kind == KEPT_FILE:
                head = self._s3.head_object(Bucket=self.bucket, Key=obj.key)
                return _uploader(head.get("Metadata") or {}), str(head.get("ETag") or "")
            answer = self._s3.get_object(Bucket=self.bucket, Key=obj.key)
        except ClientError as exc:
            if is_missing(exc):
                return None, None
            raise
        with answer["Body"] as body:
            try:
                note = json.loads(body.read())
            except ValueError:
                note = None
        return _note_names(note), str(answer.get("ETag") or "")

    def delete_if_unchanged(self, obj: KeptObject) -> bool:
        """Delete the object as it was listed; False when it changed or went meanwhile. (S3 asks
        for s3:GetObject besides s3:DeleteObject on a delete with an ETag's If-Match.)"""
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.etag)
        except ClientError as exc:
            if error_code(exc) in _CHANGED | MISSING_CODES:
                return False
            raise
        return True


def _uploader(metadata: dict[str, str]) -> str | None:
    """The gateway file id a kept file was uploaded as: its filename metadata holds that id, a
    dot and the client's name (adoption.upstream_filename)."""
    uploaded_as = unquote(str(metadata.get("filename") or ""))
    return uploaded_as.partition(".")[0] if "." in uploaded_as else None


def _note_names(note: Any) -> str | None:
    """The gateway batch a note's body names (at its top, or in its metadata)."""
    if not isinstance(note, dict):
        return None
    metadata = note.get("metadata")
    named = note.get(_GATEWAY_BATCH_TAG) or (
        metadata.get(_GATEWAY_BATCH_TAG) if isinstance(metadata, dict) else None
    )
    return str(named) if named else None
