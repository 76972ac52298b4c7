"""POST /v1/batches/{batch_id}/cancel."""

from gateway.http.resolver import GatewayApp
from gateway.models.batches import Batch
from gateway.service import batches

app = GatewayApp("batches_cancel")


@app.endpoint
def cancel_batch(batch_id: str) -> Batch:
    return batches.cancel_batch(app.caller, batch_id)


handler = app.lambda_handler
