"""Upload parts in S3: one object per part, upload-parts/<upload id>/<part id>.

S3's own multipart upload needs parts of at least 5 MiB (except the last), and a client's
parts are smaller than that here (they must fit a Lambda event), so each part is a plain
object and the transfer streams them in the order `complete` names them. The bucket's
lifecycle rule on the prefix removes whatever a crash leaves behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.storage.s3 import s3_client

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


@dataclass(frozen=True)
class StoredPart:
    part_id: str
    size: int


def _prefix(upload_id: str) -> str:
    return f"{resources.UPLOAD_PARTS_PREFIX}{upload_id}/"


def part_key(upload_id: str, part_id: str) -> str:
    return _prefix(upload_id) + part_id


def _bucket() -> str:
    return get_settings().bucket_name


def put_part(upload_id: str, part_id: str, data: bytes) -> None:
    s3_client().put_object(Bucket=_bucket(), Key=part_key(upload_id, part_id), Body=data)


def list_parts(upload_id: str) -> dict[str, int]:
    """Every stored part of the upload: part id -> size in bytes."""
    prefix = _prefix(upload_id)
    sizes: dict[str, int] = {}
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=_bucket(), Prefix=prefix):
        for item in page.get("Contents", []):
            sizes[item["Key"][len(prefix) :]] = int(item["Size"])
    return sizes


def named_parts(upload_id: str, part_ids: list[str]) -> tuple[list[StoredPart], list[str]]:
    """The stored parts `part_ids` names, in that order, and the ids not stored."""
    stored = list_parts(upload_id)
    found = [StoredPart(part_id, stored[part_id]) for part_id in part_ids if part_id in stored]
    return found, [part_id for part_id in part_ids if part_id not in stored]


def delete_parts(upload_id: str) -> int:
    """Remove every part of the upload; returns how many there were."""
    keys = [part_key(upload_id, part_id) for part_id in list_parts(upload_id)]
    client = s3_client()
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        client.delete_objects(
            Bucket=_bucket(), Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
    return len(keys)


def open_part(upload_id: str, part_id: str, first: int = 0, last: int | None = None) -> Any:
    """The part's bytes first..last (inclusive) as a streaming body: call `.read(n)`, `.close()`."""
    params: dict[str, Any] = {"Bucket": _bucket(), "Key": part_key(upload_id, part_id)}
    if first or last is not None:
        params["Range"] = f"bytes={first}-{'' if last is None else last}"
    return s3_client().get_object(**params)["Body"]
