"""POST /v1/files: upload a file to the chosen provider."""

import hashlib
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import File, Form, UploadFile
from gateway.http import idempotency
from gateway.http.resolver import GatewayApp
from gateway.models.files import Anchor, ExpirySeconds, FileObject, UploadPurpose
from gateway.service import files
from gateway.service.forms import expires_after_from_form

app = GatewayApp("files_create")


@app.endpoint
def create_file(
    file: Annotated[UploadFile, File(description="The file to upload")],
    purpose: Annotated[UploadPurpose, Form()],
    custom_llm_provider: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    anchor: Annotated[Anchor | None, Form(alias="expires_after[anchor]")] = None,
    seconds: Annotated[ExpirySeconds | None, Form(alias="expires_after[seconds]")] = None,
    dotted_anchor: Annotated[Anchor | None, Form(alias="expires_after.anchor")] = None,
    dotted_seconds: Annotated[ExpirySeconds | None, Form(alias="expires_after.seconds")] = None,
) -> FileObject:
    new_file = files.NewFile(
        filename=file.filename or "upload.jsonl",
        content=file.content,
        purpose=purpose,
        content_type=file.content_type or "application/octet-stream",
        expires_after=expires_after_from_form(anchor or dotted_anchor, seconds or dotted_seconds),
    )
    provider = app.provider_hint(custom_llm_provider)
    request = {  # the same file sent again is the same request, whatever its multipart boundary
        "provider": provider,
        "filename": new_file.filename,
        "purpose": purpose,
        "expires_after": new_file.expires_after,
        "sha256": hashlib.sha256(file.content).hexdigest(),
    }
    return idempotency.run_once(
        app,
        request,
        FileObject,
        lambda seed: files.create_file(
            app.caller, provider, new_file, file_id=idempotency.object_id("file", seed)
        ),
    )


handler = app.lambda_handler
