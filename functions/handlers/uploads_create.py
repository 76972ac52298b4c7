"""POST /v1/uploads: start an upload of a large file in parts."""

from gateway.models.uploads import CreateUploadRequest, Upload
from gateway.resolver import GatewayApp
from gateway.service import uploads

app = GatewayApp("uploads_create")


@app.endpoint
def create_upload(request: CreateUploadRequest) -> Upload:
    return uploads.create_upload(app.caller, app.provider_hint(request.custom_llm_provider), request)


handler = app.lambda_handler
