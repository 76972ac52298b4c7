"""Provider objects <-> client objects: swap upstream ids for the gateway's own."""

from __future__ import annotations

import time
from typing import Any

from gateway.formats.ids import new_id
from gateway.models.batches import Batch
from gateway.models.files import FileObject
from gateway.observability import logger
from gateway.providers.registry import client_for
from gateway.service.adoption import client_filename
from gateway.storage.id_map import IdMap, ObjectRecord

OUTPUT_PURPOSE = "batch_output"  # OpenAI's purpose of a batch's output and error files


def file_object(upstream: dict[str, Any], gateway_id: str) -> FileObject:
    fields = {**upstream, "id": gateway_id, "object": "file"}
    if isinstance(upstream.get("filename"), str):  # uploaded under the gateway's id: the client's name
        fields["filename"] = client_filename(gateway_id, upstream["filename"])
    return FileObject.model_validate(fields)


def batch_object(upstream: dict[str, Any], record: ObjectRecord, input_file_id: str, id_map: IdMap) -> Batch:
    """`record` is the batch's own record (id, provider, owner).

    The gateway ids of its output and error files are remembered in `record.state["files"]`
    (upstream id -> gateway id): a file registered once costs no lookup on later retrieves."""
    fields = {
        **upstream,
        "id": record.id,
        "object": "batch",
        "input_file_id": input_file_id,
        "provider": record.provider,
    }
    known: dict[str, str] = record.state.get("files") or {}
    for name in ("output_file_id", "error_file_id"):
        if upstream_file := upstream.get(name):
            gateway_file = known.get(upstream_file)
            if gateway_file is None:
                gateway_file = register_provider_file(
                    id_map, record.provider, upstream_file, owner=record.owner
                )
                known = {**known, upstream_file: gateway_file}
                record.state = {**record.state, "files": known}
            fields[name] = gateway_file
    return Batch.model_validate(fields)


def register_provider_file(
    id_map: IdMap, provider: str, upstream_id: str, *, owner: str, purpose: str | None = None
) -> str:
    """The gateway id of a file the provider created (batch output/errors), registered once.
    `purpose`: what clients see in place of the provider's (a planned batch's merged files, read
    as OpenAI's `batch_output`; files.retrieve keeps it).

    Two steps, each safe to interrupt: a conditional claim of the reverse item (which answers
    with the winner if there was one), then the object item, created only if missing. Whoever
    finds a claim without its object (a crash between the steps, a concurrent retrieve still
    at step two) creates it: a half-done registration never leaves a 404 behind."""
    candidate = new_id("file")
    gateway_id = id_map.claim_upstream(provider, upstream_id, candidate)
    if gateway_id != candidate and id_map.get(gateway_id) is not None:
        return gateway_id
    obj = _provider_file(provider, upstream_id, gateway_id)
    if purpose is not None:
        obj = obj.model_copy(update={"purpose": purpose})
    id_map.put_new(  # False: a concurrent registration created it first; same upstream file
        ObjectRecord(
            id=gateway_id,
            kind="file",
            owner=owner,
            provider=provider,
            created_at=obj.created_at,
            object=obj.model_dump(mode="json"),
            upstream_id=upstream_id,
            purpose=obj.purpose,
        )
    )
    return gateway_id


def _provider_file(provider: str, upstream_id: str, gateway_id: str) -> FileObject:
    """The provider's file object, or a stand-in when it cannot be fetched or read now: the
    record holds the upstream id either way, and files.retrieve refreshes it from the provider."""
    try:
        return file_object(client_for(provider).retrieve_file(upstream_id), gateway_id)
    except Exception:  # unreachable, or an object that does not validate
        logger.warning(
            "could not fetch provider file", extra={"provider": provider, "upstream_id": upstream_id}
        )
    stand_in = {
        "bytes": 0,
        "created_at": int(time.time()),
        "filename": f"{upstream_id}.jsonl",
        "purpose": OUTPUT_PURPOSE,
        "status": "processed",
    }
    return file_object(stand_in, gateway_id)
