"""POST /v1/uploads/{upload_id}/cancel: no parts are left behind."""

from gateway.http.resolver import GatewayApp
from gateway.models.uploads import Upload
from gateway.service import uploads

app = GatewayApp("uploads_cancel")


@app.endpoint
def cancel_upload(upload_id: str) -> Upload:
    return uploads.cancel_upload(app.caller, upload_id)


handler = app.lambda_handler
