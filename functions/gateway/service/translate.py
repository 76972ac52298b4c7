"""Provider objects <-> client objects: swap upstream ids for the gateway's own."""

from __future__ import annotations

import time
from typing import Any

from gateway.ids import new_id
from gateway.models.batches import Batch
from gateway.models.files import FileObject
from gateway.observability import logger
from gateway.providers.registry import client_for
from gateway.storage.id_map import IdMap, ObjectRecord


def file_object(upstream: dict[str, Any], gateway_id: str) -> FileObject:
    return FileObject.model_validate({**upstream, "id": gateway_id, "object": "file"})


def batch_object(upstream: dict[str, Any], record: ObjectRecord, input_file_id: str, id_map: IdMap) -> Batch:
    """`record` is the batch's own record (id, provider, owner)."""
    fields = {**upstream, "id": record.id, "object": "batch", "input_file_id": input_file_id}
    for name in ("output_file_id", "error_file_id"):
        if upstream_file := upstream.get(name):
            fields[name] = register_provider_file(id_map, record.provider, upstream_file, owner=record.owner)
    return Batch.model_validate(fields)


def register_provider_file(id_map: IdMap, provider: str, upstream_id: str, *, owner: str) -> str:
    """The gateway id of a file the provider created (batch output/errors), registered once."""
    existing = id_map.gateway_id_for(provider, upstream_id)
    if existing:
        return existing
    candidate = new_id("file")
    winner = id_map.claim_upstream(provider, upstream_id, candidate)
    if winner != candidate:
        return winner
    try:
        upstream = client_for(provider).retrieve_file(upstream_id)
    except Exception:  # the id is registered either way; the object is refreshed on retrieve
        logger.warning(
            "could not fetch provider file", extra={"provider": provider, "upstream_id": upstream_id}
        )
        upstream = {
            "bytes": 0,
            "created_at": int(time.time()),
            "filename": f"{upstream_id}.jsonl",
            "purpose": "batch_output",
            "status": "processed",
        }
    obj = file_object(upstream, candidate)
    id_map.put(
        ObjectRecord(
            id=candidate,
            kind="file",
            owner=owner,
            provider=provider,
            created_at=obj.created_at,
            object=obj.model_dump(mode="json"),
            upstream_id=upstream_id,
            purpose=obj.purpose,
        )
    )
    return candidate
