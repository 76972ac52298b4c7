"""Body of the answer of POST /v1/batches/check (a gateway extension): what a create with the
same body would do, without creating anything."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.models.batches import BatchErrors
from gateway.models.common import GatewayModel


class ProviderLimits(GatewayModel):
    """The most (and least) one batch of the provider takes."""

    max_requests: int = Field(description="Requests (lines) one batch holds at most.")
    max_bytes: int = Field(description="Bytes one batch input file holds at most.")
    min_requests: int | None = Field(default=None, description="Requests one batch needs at least.")


class BatchEstimate(GatewayModel):
    """What a budget would hold for the batch: its highest cost at batch prices."""

    model: str | None
    input_tokens: int = Field(description="An upper bound: a token per 4 bytes of request.")
    output_tokens: int = Field(
        description="What the requests cap (max_tokens, ...), plus the configured default for each "
        "request that sets no cap."
    )
    cost: float | None = Field(description="USD at batch prices; null when the model has no price.")
    currency: Literal["USD"] = "USD"


class BatchCheck(GatewayModel):
    object: Literal["batch.check"] = "batch.check"
    input_file_id: str
    provider: str
    endpoint: str
    valid: bool = Field(
        description="True when a create would not fail the batch at once (no errors). A create can "
        "still answer 400: a key's budget, or fewer requests than the provider's minimum."
    )
    checked: bool = Field(
        description="False when the file was not checked at upload (purpose other than batch)."
    )
    requests: int
    bytes: int
    errors: BatchErrors = Field(
        description="The errors a create would fail the batch with (OpenAI's `errors`): the first "
        "of them, by line."
    )
    error_count: int
    estimate: BatchEstimate
    parts: int = Field(
        description="Provider batches the file needs: one while it fits the provider's limits."
    )
    limits: ProviderLimits
