"""GET /v1/batches/{batch_id}: status fresh from the provider."""

from gateway.http.resolver import GatewayApp
from gateway.models.batches import Batch
from gateway.service import batches

app = GatewayApp("batches_retrieve")


@app.endpoint
def retrieve_batch(batch_id: str) -> Batch:
    return batches.retrieve_batch(app.caller, batch_id)


handler = app.lambda_handler
