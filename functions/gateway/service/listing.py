"""Cursor pagination over a caller's objects, shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.formats.ids import shown_id
from gateway.http.auth import Caller
from gateway.storage.id_map import IdMap, Kind, ObjectRecord, PageQuery


@dataclass(frozen=True)
class ListRequest:
    limit: int
    ascending: bool = False
    after: str | None = None
    provider: str | None = None
    purpose: str | None = None
    key_id: str | None = None  # master key only: one key's objects


def page_records(
    id_map: IdMap, caller: Caller, kind: Kind, request: ListRequest
) -> tuple[list[ObjectRecord], bool]:
    return id_map.page(page_query(id_map, caller, kind, request))


def page_objects(
    id_map: IdMap, caller: Caller, kind: Kind, request: ListRequest
) -> tuple[list[dict[str, Any]], bool]:
    """Only the stored client-facing objects (a list that refreshes nothing)."""
    return id_map.page_objects(page_query(id_map, caller, kind, request))


def page_query(id_map: IdMap, caller: Caller, kind: Kind, request: ListRequest) -> PageQuery:
    if request.provider is not None:
        caller.require_provider(request.provider)
    owner = caller.owner_scope
    if request.key_id is not None:
        if not caller.is_master:
            raise InvalidRequestError("Only the master key may filter lists by key.", param="key_id")
        owner = request.key_id
    after = None
    if request.after:
        after = id_map.get(request.after)
        if after is not None and after.kind != kind:
            message = f"Invalid 'after' cursor '{shown_id(request.after)}': it is not a {kind} id."
            raise InvalidRequestError(message, param="after", code="invalid_cursor")
        if after is None or (owner is not None and after.owner != owner):
            # another key's object is as unknown as a missing one
            message = f"No such {kind} for the 'after' cursor: {shown_id(request.after)}"
            raise NotFoundError(message, param="after")
    return PageQuery(
        kind=kind,
        limit=request.limit,
        owner=owner,
        ascending=request.ascending,
        after=after,
        provider=request.provider,
        purpose=request.purpose,
    )
