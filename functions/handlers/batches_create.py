"""POST /v1/batches: the batch runs at the provider that owns its input file."""

from gateway.http import idempotency
from gateway.http.resolver import GatewayApp
from gateway.models.batches import Batch, CreateBatchRequest
from gateway.service import batches

app = GatewayApp("batches_create")


@app.endpoint
def create_batch(request: CreateBatchRequest) -> Batch:
    provider = app.provider_hint(request.custom_llm_provider)
    return idempotency.run_once(
        app,
        {"provider": provider, **request.model_dump(mode="json")},
        Batch,
        lambda seed: batches.create_batch(
            app.caller, provider, request, batch_id=idempotency.object_id("batch", seed)
        ),
    )


handler = app.lambda_handler
