"""GET /v1/files/{file_id}/content: the raw bytes."""

from aws_lambda_powertools.event_handler import Response
from gateway.resolver import GatewayApp
from gateway.service import files

app = GatewayApp("files_content")


# No return annotation: an annotated Response[bytes] would break the base64 encoding.
@app.endpoint
def file_content(file_id: str):  # type: ignore[no-untyped-def]
    content = files.file_content(app.caller, file_id)
    return Response(
        status_code=200,
        content_type="application/octet-stream",
        body=content.content,
        headers={"Content-Disposition": f'attachment; filename="{content.filename}"'},
    )


handler = app.lambda_handler
