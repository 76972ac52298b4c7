"""DELETE /v1/files/{file_id}."""

from gateway.http.resolver import GatewayApp
from gateway.models.files import FileDeleted
from gateway.service import files

app = GatewayApp("files_delete")


@app.endpoint
def delete_file(file_id: str) -> FileDeleted:
    return files.delete_file(app.caller, file_id)


handler = app.lambda_handler
