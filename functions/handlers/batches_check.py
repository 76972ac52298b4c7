"""POST /v1/batches/check (a gateway extension): the same body as a create; the errors a
create would fail the batch with (by line), its cost estimate and the provider batches it
needs, without creating anything."""

from gateway.http.resolver import GatewayApp
from gateway.models.batch_check import BatchCheck
from gateway.models.batches import CreateBatchRequest
from gateway.service import batch_check

app = GatewayApp("batches_check")


@app.endpoint
def check_batch(request: CreateBatchRequest) -> BatchCheck:
    return batch_check.check_batch(app.caller, app.provider_hint(request.custom_llm_provider), request)


handler = app.lambda_handler
