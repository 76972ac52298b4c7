"""POST /v1/uploads/{upload_id}/complete: the File at once, its transfer asynchronously."""

from gateway.http import idempotency
from gateway.http.resolver import GatewayApp
from gateway.models.uploads import CompleteUploadRequest, Upload
from gateway.service import uploads

app = GatewayApp("uploads_complete")


@app.endpoint
def complete_upload(upload_id: str, request: CompleteUploadRequest) -> Upload:
    return idempotency.run_once(
        app,
        {"upload_id": upload_id, **request.model_dump(mode="json")},
        Upload,
        lambda _seed: uploads.complete_upload(app.caller, upload_id, request),
    )


handler = app.lambda_handler
