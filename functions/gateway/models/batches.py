from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.models.common import WireModel

BATCH_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
)
TERMINAL_BATCH_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchError(WireModel):
    code: str | None = None
    line: int | None = None
    message: str | None = None
    param: str | None = None


class BatchErrors(WireModel):
    data: list[BatchError] | None = None
    object: str | None = None


class BatchRequestCounts(WireModel):
    completed: int
    failed: int
    total: int


class Batch(WireModel):
    """openai-python `Batch`: every field present, nullable ones as null."""

    id: str
    completion_window: str
    created_at: int
    endpoint: str
    input_file_id: str
    object: Literal["batch"] = "batch"
    status: str
    cancelled_at: int | None = None
    cancelling_at: int | None = None
    completed_at: int | None = None
    error_file_id: str | None = None
    errors: BatchErrors | None = None
    expired_at: int | None = None
    expires_at: int | None = None
    failed_at: int | None = None
    finalizing_at: int | None = None
    in_progress_at: int | None = None
    metadata: dict[str, str] | None = None
    model: str | None = None
    output_file_id: str | None = None
    request_counts: BatchRequestCounts | None = None
    usage: WireModel | None = None


class OutputExpiresAfter(BaseModel):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(ge=3600, le=2592000)


class CreateBatchRequest(BaseModel):
    """Body of POST /v1/batches."""

    input_file_id: str = Field(min_length=1, max_length=256)
    endpoint: Literal[
        "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions", "/v1/moderations"
    ]
    completion_window: Literal["24h"]
    # OpenAI's limits: at most 16 pairs, keys up to 64 and values up to 512 characters.
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = (
        Field(default=None, max_length=16)
    )
    output_expires_after: OutputExpiresAfter | None = None
    # LiteLLM's users send this with the SDK's extra_body.
    custom_llm_provider: str | None = Field(default=None, min_length=1, max_length=64)

    def upstream_body(self, upstream_input_file_id: str) -> dict[str, object]:
        body = self.model_dump(exclude_none=True, exclude={"custom_llm_provider"})
        body["input_file_id"] = upstream_input_file_id
        return body
