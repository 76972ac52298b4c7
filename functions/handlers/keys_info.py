"""GET /key/info?key=...: one key's settings (the key itself is never returned)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.keys import KeyInfoResponse
from gateway.service import keys

app = GatewayApp("keys_info")


@app.endpoint
def key_info(key: Annotated[str, Query(min_length=1)]) -> KeyInfoResponse:
    keys.require_master(app.caller)
    record = keys.find(key)
    return KeyInfoResponse(key=record.key_id, info=keys.info(record))


handler = app.lambda_handler
