"""POST /v1/uploads/{upload_id}/parts: one part (multipart field `data`), stored in S3."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import File, UploadFile
from gateway.http.resolver import GatewayApp
from gateway.models.uploads import UploadPart
from gateway.service import uploads

app = GatewayApp("uploads_add_part")


@app.endpoint
def add_part(upload_id: str, data: Annotated[UploadFile, File(description="The part's bytes")]) -> UploadPart:
    return uploads.add_part(app.caller, upload_id, data.content)


handler = app.lambda_handler
