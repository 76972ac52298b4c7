"""Look up an id for a caller: another key's object is exactly as unknown as a missing one.

Only then is the key's provider list checked (403 naming the provider), so a 403 never
tells a caller about an object it does not own.
"""

from __future__ import annotations

from gateway.errors import NotFoundError
from gateway.formats.ids import shown_id
from gateway.http import upstream_ids
from gateway.http.auth import Caller
from gateway.http.provider_choice import require_azure_owner
from gateway.storage.id_map import NO_PROVIDER, IdMap, Kind, ObjectRecord

_NOUN = {
    "file": "File",
    "batch": "Batch",
    "upload": "Upload",
    "webhook_endpoint": "WebhookEndpoint",
    "webhook_delivery": "WebhookDelivery",
}


def owned_record(
    id_map: IdMap, caller: Caller, object_id: str, kind: Kind, *, param: str = "id"
) -> ObjectRecord:
    record = id_map.get(object_id)
    if record is None or record.kind != kind or not caller.can_see(record.owner):
        raise NotFoundError(f"No such {_NOUN[kind]} object: {shown_id(object_id)}", param=param)
    if record.provider != NO_PROVIDER:
        caller.require_provider(record.provider)
        require_azure_owner(record.provider, object_id)
    upstream_ids.remember(record.upstream_id, record.id)
    return record
