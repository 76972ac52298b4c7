"""Files: create, retrieve, list, delete, content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from gateway.auth import Caller
from gateway.errors import ConflictError, InvalidRequestError, UpstreamRequestError
from gateway.ids import new_id
from gateway.models.common import ListPage
from gateway.models.files import FileDeleted, FileObject
from gateway.providers.registry import client_for
from gateway.service.listing import ListRequest, page_objects
from gateway.service.ownership import owned_record
from gateway.service.translate import file_object
from gateway.settings import get_settings
from gateway.storage.id_map import IdMap, ObjectRecord

if TYPE_CHECKING:  # content delivery (S3) is loaded by the two functions that use it only
    from gateway.service.content_delivery import FileContent


@dataclass(frozen=True)
class NewFile:
    filename: str
    content: bytes | IO[bytes]
    purpose: str
    content_type: str = "application/octet-stream"
    expires_after: dict[str, Any] | None = None


def create_file(
    caller: Caller, provider: str | None, new_file: NewFile, id_map: IdMap | None = None
) -> FileObject:
    id_map = id_map or IdMap()
    provider = provider or get_settings().default_provider
    caller.require_provider(provider)
    if not new_file.purpose.strip():
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
    upstream = client_for(provider).create_file(
        filename=new_file.filename,
        content=new_file.content,
        purpose=new_file.purpose,
        expires_after=new_file.expires_after,
        content_type=new_file.content_type,
    )
    obj = file_object(upstream, new_id("file"))
    id_map.put(
        ObjectRecord(
            id=obj.id,
            kind="file",
            owner=caller.key_id,
            provider=provider,
            created_at=obj.created_at,
            object=obj.model_dump(mode="json"),
            upstream_id=str(upstream["id"]),
            purpose=obj.purpose,
            ttl=obj.expires_at,
        )
    )
    return obj


def retrieve_file(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileObject:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    if record.upstream_id is None or record.status in {"error"}:
        return FileObject.model_validate(record.object)
    obj = file_object(client_for(record.provider).retrieve_file(record.upstream_id), record.id)
    record.object = obj.model_dump(mode="json")
    id_map.save_if_changed(record)  # an unchanged file costs no write
    return obj


def list_files(caller: Caller, request: ListRequest, id_map: IdMap | None = None) -> ListPage[FileObject]:
    objects, has_more = page_objects(id_map or IdMap(), caller, "file", request)
    return ListPage[FileObject].of([FileObject.model_validate(o) for o in objects], has_more)


def delete_file(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileDeleted:
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    if record.upstream_id is not None:
        try:
            client_for(record.provider).delete_file(record.upstream_id)
        except UpstreamRequestError as exc:
            if exc.status_code != 404:  # already gone upstream: forget it here too
                raise
    id_map.delete(record)
    from gateway.service import content_delivery

    content_delivery.forget(record)
    return FileDeleted(id=record.id)


def file_content(caller: Caller, file_id: str, id_map: IdMap | None = None) -> FileContent:
    """Inline bytes when they fit a Lambda response, else a presigned URL (service.content_delivery)."""
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, file_id, "file")
    filename = str(record.object.get("filename") or f"{record.id}.jsonl")
    if record.upstream_id is None:
        failed = record.status == "error"
        raise (InvalidRequestError if failed else ConflictError)(
            f"File {file_id} failed to reach its provider: {record.object.get('status_details')}"
            if failed
            else f"File {file_id} is still being transferred to its provider; try again shortly.",
            code="file_not_ready",
        )
    from gateway.service import content_delivery

    return content_delivery.deliver(record, filename)
