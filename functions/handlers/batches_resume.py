"""POST /v1/batches/{batch_id}/resume (the gateway's own, for a batch run as parts)."""

from gateway.http.resolver import GatewayApp
from gateway.models.batches import Batch
from gateway.service import batches

app = GatewayApp("batches_resume")


@app.endpoint
def resume_batch(batch_id: str) -> Batch:
    return batches.pause_batch(app.caller, batch_id, paused=False)


handler = app.lambda_handler
