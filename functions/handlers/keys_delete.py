"""POST /key/delete: by key (or key id) or by alias; the key stops working at once here."""

from gateway.http.resolver import GatewayApp
from gateway.models.keys import DeletedKeysResponse, DeleteKeysRequest
from gateway.service import keys

app = GatewayApp("keys_delete")


@app.endpoint
def delete_keys(request: DeleteKeysRequest) -> DeletedKeysResponse:
    keys.require_master(app.caller)
    return DeletedKeysResponse(deleted_keys=keys.delete(request))


handler = app.lambda_handler
