"""GET /v1/files/{file_id}: the file as its provider sees it now."""

from gateway.http.resolver import GatewayApp
from gateway.models.files import FileObject
from gateway.service import files

app = GatewayApp("files_retrieve")


@app.endpoint
def retrieve_file(file_id: str) -> FileObject:
    return files.retrieve_file(app.caller, file_id)


handler = app.lambda_handler
