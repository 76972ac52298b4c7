"""POST /key/generate: a new virtual key, shown once."""

from gateway.models.keys import GeneratedKey, GenerateKeyRequest
from gateway.resolver import GatewayApp
from gateway.service import keys

app = GatewayApp("keys_generate")


@app.endpoint
def generate_key(request: GenerateKeyRequest) -> GeneratedKey:
    keys.require_master(app.caller)
    return keys.generate(request)


handler = app.lambda_handler
