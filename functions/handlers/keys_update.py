"""POST /key/update: change a key's alias, providers, duration or metadata."""

from gateway.http.resolver import GatewayApp
from gateway.models.keys import KeyInfo, UpdateKeyRequest
from gateway.service import keys

app = GatewayApp("keys_update")


@app.endpoint
def update_key(request: UpdateKeyRequest) -> KeyInfo:
    keys.require_master(app.caller)
    return keys.update(request)


handler = app.lambda_handler
