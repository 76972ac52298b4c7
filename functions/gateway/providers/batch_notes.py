"""The gateway's notes on batches at providers that keep none of OpenAI's fields (Anthropic):
the input file, endpoint, completion window, metadata (with the `gateway_batch_id` tag that
`service.adoption` looks for), the custom_id map, and whether the results are kept yet.

`kept-files/<deployment>/batch-notes/<upstream batch id>.json`, written after the provider's
create. So that a create whose answer was lost (the provider made the batch, the gateway never
heard) can still be adopted, the same note is written ahead under
`batch-pending/<gateway batch id>.json`; a provider batch found without a note takes the one pending
note of the same size made within CLAIM_WINDOW_SECONDS before it.
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from botocore.exceptions import ClientError

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.s3 import is_missing, s3_client

CLAIM_WINDOW_SECONDS = 300


class BatchNotes:
    def __init__(self, deployment: str, bucket: str | None = None, client: Any = None) -> None:
        self.bucket = bucket or get_settings().bucket_name
        self._s3 = client or s3_client()
        root = f"{resources.KEPT_FILES_PREFIX}{deployment}/"
        self.notes_prefix = root + "batch-notes/"
        self.pending_prefix = root + "batch-pending/"

    def get(self, upstream_id: str) -> dict[str, Any] | None:
        return self._read(self.notes_prefix + upstream_id + ".json")

    def put(self, upstream_id: str, note: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=self.notes_prefix + upstream_id + ".json", Body=_json(note)
        )

    def put_pending(self, request_key: str, note: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=self.pending_prefix + request_key + ".json", Body=_json(note)
        )

    def get_pending(self, request_key: str) -> dict[str, Any] | None:
        """The note written ahead under `request_key` (None once forgotten, or never written)."""
        return self._read(self.pending_prefix + request_key + ".json")

    def forget_pending(self, request_key: str) -> None:
        """Once the batch's own note is written (best effort: a stale pending note only ever
        matches a batch of its size made within minutes of it)."""
        with suppress(ClientError):
            self._s3.delete_object(Bucket=self.bucket, Key=self.pending_prefix + request_key + ".json")

    def claim_pending(self, upstream_id: str, created_at: int, total: int) -> dict[str, Any] | None:
        """The note of a create that made `upstream_id` but never wrote its note: the one pending
        note of `total` requests attempted within CLAIM_WINDOW_SECONDS before `created_at` that
        no other batch holds. It becomes the batch's note (None if there is no single match)."""
        candidates = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.pending_prefix
        ):
            for item in page.get("Contents") or ():
                note = self._read(str(item["Key"]))
                attempted = int((note or {}).get("attempted_at") or 0)
                if (
                    note
                    and note.get("total") == total
                    and 0 <= created_at - attempted <= CLAIM_WINDOW_SECONDS
                ):
                    candidates.append(note)
        if len(candidates) != 1:
            return None
        note = candidates[0]
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=self.notes_prefix + upstream_id + ".json",
                Body=_json(note),
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in {"PreconditionFailed", "412"}:
                raise
            return self.get(upstream_id)
        return note

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        with body:
            note = json.loads(body.read())
        return note if isinstance(note, dict) else None


def _json(note: dict[str, Any]) -> bytes:
    return json.dumps(note, separators=(",", ":"), sort_keys=True).encode()
