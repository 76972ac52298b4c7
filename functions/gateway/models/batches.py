from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from gateway.models.common import GatewayModel, WireModel
from gateway.models.retry import RetryOptions

# The endpoints a batch may target: openai-python's `BatchCreateParams.endpoint` Literal (a unit
# test compares the two, so an SDK release that adds one fails a test). Azure documents the same
# endpoints without the /v1 ("/chat/completions"); those are read as the /v1 form.
BatchEndpoint = Literal[
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
]
BATCH_ENDPOINTS: tuple[str, ...] = get_args(BatchEndpoint)
# Endpoints the SDK still lists but OpenAI no longer takes (openai-python 3.63's docstring):
# refused at create, whatever the provider, with OpenAI's reason.
RETIRED_BATCH_ENDPOINTS = {
    "/v1/videos": "The Videos API shut down on September 24, 2026; batch creation no longer accepts "
    "'/v1/videos'",
}
_AZURE_SHORT_FORMS = {endpoint.removeprefix("/v1"): endpoint for endpoint in BATCH_ENDPOINTS}
TERMINAL_BATCH_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# The metadata key the gateway tags a provider's batch with (service.adoption): its own, so a
# client that sends it is refused (it would name, and let adoption find, another batch).
GATEWAY_BATCH_TAG = "gateway_batch_id"
RESERVED_METADATA_KEY = "reserved_metadata_key"  # the error code


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


class BatchCost(WireModel):
    """The gateway's own field: what the batch cost at batch prices, once settled."""

    input: float
    output: float
    total: float
    currency: str = "USD"


class BatchUsage(WireModel):
    """openai-python `BatchUsage`: the provider's token totals, passed through (optional here so
    that a provider's partial object never fails a retrieve)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: dict[str, Any] | None = None
    output_tokens_details: dict[str, Any] | None = None


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
    usage: BatchUsage | None = None
    cost: BatchCost | None = None  # the gateway's: null until settled, or for a model with no price
    # the gateway's: the provider (or deployment) name the batch runs at, as the gateway records it
    provider: str | None = None


class BatchPart(WireModel):
    """The gateway's `parts` field of a batch run as a plan: one provider batch of it (the
    openai SDK keeps it as an extra field). `status`: `planned` (its lines being written),
    `ready` (waiting its turn), `waiting` (the provider refused it for quota: tried again
    after `next_attempt_at`), `submitting`, `running`, `done` (the provider batch ended:
    `upstream_status`), `dropped` (never ran: cancelled or out of time)."""

    id: str
    index: int
    status: str
    provider_batch_id: str | None = None
    upstream_status: str | None = None
    request_counts: BatchRequestCounts
    next_attempt_at: int | None = None


class OutputExpiresAfter(GatewayModel):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(ge=3600, le=2592000)


class CreateBatchRequest(GatewayModel):
    """Body of POST /v1/batches."""

    input_file_id: str = Field(min_length=1, max_length=256)
    # the schema lists only what a create accepts: a retired endpoint is the SDK's, not OpenAI's
    endpoint: BatchEndpoint = Field(
        json_schema_extra={"enum": [e for e in BATCH_ENDPOINTS if e not in RETIRED_BATCH_ENDPOINTS]}
    )
    completion_window: Literal["24h"]
    # OpenAI's limits, checked below (the envelope's param is `metadata`) and stated in the schema.
    metadata: dict[str, str] | None = Field(
        default=None,
        json_schema_extra={
            "maxProperties": 16,
            "propertyNames": {"maxLength": 64, "not": {"const": GATEWAY_BATCH_TAG}},
            "additionalProperties": {"type": "string", "maxLength": 512},
        },
    )
    output_expires_after: OutputExpiresAfter | None = None
    # LiteLLM's users send this with the SDK's extra_body.
    custom_llm_provider: str | None = Field(default=None, min_length=1, max_length=64)
    # the gateway's own (extra_body): never sent upstream; when absent, the key's `batch_retry`
    retry: RetryOptions | None = None

    @field_validator("endpoint", mode="before")
    @classmethod
    def _azure_short_form(cls, value: object) -> object:
        return _AZURE_SHORT_FORMS.get(value, value) if isinstance(value, str) else value

    @field_validator("endpoint")
    @classmethod
    def _not_retired(cls, value: str) -> str:
        if value in RETIRED_BATCH_ENDPOINTS:
            raise ValueError(RETIRED_BATCH_ENDPOINTS[value])
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if GATEWAY_BATCH_TAG in value:
            raise PydanticCustomError(
                RESERVED_METADATA_KEY,
                "the key '{key}' is reserved for the gateway's own use; name it otherwise",
                {"key": GATEWAY_BATCH_TAG, "code": RESERVED_METADATA_KEY},
            )
        if len(value) > 16:
            raise ValueError("metadata may hold at most 16 key-value pairs")
        for key, item in value.items():
            if len(key) > 64:
                raise ValueError(f"metadata key '{key[:20]}...' is longer than 64 characters")
            if len(item) > 512:
                raise ValueError(f"metadata value for '{key}' is longer than 512 characters")
        return value

    def upstream_body(self, upstream_input_file_id: str) -> dict[str, object]:
        body = self.model_dump(exclude_none=True, exclude={"custom_llm_provider", "retry"})
        body["input_file_id"] = upstream_input_file_id
        return body
