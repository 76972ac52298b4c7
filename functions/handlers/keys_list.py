"""GET /key/list: every virtual key's id (or full info with return_full_object=true)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.keys import KeyInfo, KeyListResponse
from gateway.service import keys
from gateway.storage.keys import KeyStore

app = GatewayApp("keys_list")


@app.endpoint
def list_keys(
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    return_full_object: Annotated[bool, Query()] = False,
    key_alias: Annotated[str | None, Query()] = None,
) -> KeyListResponse:
    keys.require_master(app.caller)
    records = sorted(KeyStore().all(), key=lambda r: (r.created_at, r.key_id))
    if key_alias is not None:
        records = [r for r in records if r.key_alias == key_alias]
    chosen = records[(page - 1) * size : page * size]
    items: list[str | KeyInfo] = [keys.info(r) if return_full_object else r.key_id for r in chosen]
    return KeyListResponse(
        keys=items, total_count=len(records), current_page=page, total_pages=max(1, -(-len(records) // size))
    )


handler = app.lambda_handler
