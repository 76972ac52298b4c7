"""The Uploads API's wire objects, field for field openai-python's `Upload` and `UploadPart`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.models.common import GatewayModel
from gateway.models.files import ExpiresAfter, FileObject, UploadPurpose

UploadStatus = Literal["pending", "completed", "cancelled", "expired"]

# What OpenAI accepts: an Upload holds at most 8 GB and expires an hour after it is created.
MAX_UPLOAD_BYTES = 8 * 1024**3
UPLOAD_LIFETIME_SECONDS = 3600
# part_ids are kept in the file's record until the transfer is done (DynamoDB items <= 400 KB).
MAX_UPLOAD_PARTS = 4096


class Upload(GatewayModel):
    """openai-python `openai.types.Upload`."""

    id: str
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    object: Literal["upload"] = "upload"
    purpose: str
    status: UploadStatus
    file: FileObject | None = None


class UploadPart(GatewayModel):
    """openai-python `openai.types.uploads.UploadPart`."""

    id: str
    created_at: int
    object: Literal["upload.part"] = "upload.part"
    upload_id: str


class CreateUploadRequest(GatewayModel):
    bytes: int = Field(ge=0, le=MAX_UPLOAD_BYTES)
    filename: str = Field(min_length=1, max_length=1024)
    mime_type: str = Field(min_length=1, max_length=255)
    purpose: UploadPurpose
    expires_after: ExpiresAfter | None = None
    custom_llm_provider: str | None = Field(default=None, min_length=1, max_length=64)


class CompleteUploadRequest(GatewayModel):
    part_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(max_length=MAX_UPLOAD_PARTS)
    md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
