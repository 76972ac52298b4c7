"""POST /v1/uploads: start an upload of a large file in parts."""

from gateway.http import idempotency
from gateway.http.resolver import GatewayApp
from gateway.models.uploads import CreateUploadRequest, Upload
from gateway.service import uploads

app = GatewayApp("uploads_create")


@app.endpoint
def create_upload(request: CreateUploadRequest) -> Upload:
    provider = app.provider_hint(request.custom_llm_provider)
    return idempotency.run_once(
        app,
        {"provider": provider, **request.model_dump(mode="json")},
        Upload,
        lambda seed: uploads.create_upload(
            app.caller, provider, request, upload_id=idempotency.object_id("upload", seed)
        ),
    )


handler = app.lambda_handler
