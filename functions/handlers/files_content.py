"""GET /v1/files/{file_id}/content: the raw bytes, or a redirect to them when too large for Lambda."""

from aws_lambda_powertools.event_handler import Response
from gateway.http.resolver import GatewayApp
from gateway.service import files
from gateway.service.content_delivery import RedirectContent, attachment_disposition

app = GatewayApp("files_content")


# No return annotation: an annotated Response[bytes] would break the base64 encoding.
@app.endpoint
def file_content(file_id: str):  # type: ignore[no-untyped-def]
    content = files.file_content(app.caller, file_id)
    if isinstance(content, RedirectContent):
        # Clients follow it (the openai SDK does) and drop the Authorization header on the way.
        return Response(
            status_code=302, body="", headers={"Location": content.url, "Cache-Control": "no-store"}
        )
    return Response(
        status_code=200,
        content_type="application/octet-stream",
        body=content.content,
        headers={"Content-Disposition": attachment_disposition(content.filename)},
    )


handler = app.lambda_handler
