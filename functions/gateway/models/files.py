from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from gateway.models.common import GatewayModel, WireModel

# Purposes OpenAI accepts on upload; output purposes are set by the provider.
UploadPurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
UPLOAD_PURPOSES: tuple[str, ...] = get_args(UploadPurpose)


FileStatus = Literal["uploaded", "processed", "error"]
OPENAI_FILE_STATUSES: frozenset[str] = frozenset(get_args(FileStatus))
# Azure OpenAI's own file states with no OpenAI equivalent: the file is going away.
_GONE_FILE_STATUSES = frozenset(("deleting", "deleted"))


class FileObject(WireModel):
    """openai-python `FileObject`.

    `status` is always one of OpenAI's three: strict clients (LiteLLM's pydantic types) reject
    anything else. Azure's `pending` and `running` (still being processed) read `uploaded`,
    its `deleting` and `deleted` read `error` with the provider's word in `status_details`.
    """

    id: str
    bytes: int
    created_at: int
    filename: str
    object: Literal["file"] = "file"
    purpose: str
    status: FileStatus = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _openai_status(cls, data: Any) -> Any:
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str) or status in OPENAI_FILE_STATUSES:
            return data
        if status in _GONE_FILE_STATUSES:
            details = data.get("status_details") or f"The provider reports this file as '{status}'."
            return {**data, "status": "error", "status_details": details}
        return {**data, "status": "uploaded"}


class FileDeleted(GatewayModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


Anchor = Literal["created_at"]
# One hour to 30 days, as OpenAI takes it.
ExpirySeconds = Annotated[int, Field(ge=3600, le=2592000)]


class ExpiresAfter(GatewayModel):
    anchor: Anchor = "created_at"
    seconds: ExpirySeconds
