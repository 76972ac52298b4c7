"""POST /v1/batches: the batch runs at the provider that owns its input file."""

from gateway.models.batches import Batch, CreateBatchRequest
from gateway.resolver import GatewayApp
from gateway.service import batches

app = GatewayApp("batches_create")


@app.endpoint
def create_batch(request: CreateBatchRequest) -> Batch:
    return batches.create_batch(app.caller, app.provider_hint(request.custom_llm_provider), request)


handler = app.lambda_handler
