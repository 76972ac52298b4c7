"""Look up an id for a caller: another key's object is exactly as unknown as a missing one.

Only then is the key's provider list checked (403 naming the provider), so a 403 never
tells a caller about an object it does not own.
"""

from __future__ import annotations

from gateway.auth import Caller
from gateway.errors import NotFoundError
from gateway.provider_choice import require_azure_owner
from gateway.storage.id_map import IdMap, Kind, ObjectRecord

_NOUN = {"file": "File", "batch": "Batch", "upload": "Upload"}


def owned_record(
    id_map: IdMap, caller: Caller, object_id: str, kind: Kind, *, param: str = "id"
) -> ObjectRecord:
    record = id_map.get(object_id)
    if record is None or record.kind != kind or not caller.can_see(record.owner):
        raise NotFoundError(f"No such {_NOUN[kind]} object: {object_id}", param=param)
    caller.require_provider(record.provider)
    require_azure_owner(record.provider, object_id)
    return record
