"""GET /spend/report: what settled batches cost, summed by key, model or day."""

from __future__ import annotations

from typing import Literal

from gateway.models.common import GatewayModel

SpendGroup = Literal["key", "model", "day"]


class SpendRow(GatewayModel):
    group: str  # a key id, a model, or a day (YYYY-MM-DD, UTC)
    spend: float
    batches: int
    input_tokens: int
    output_tokens: int


class SpendReport(GatewayModel):
    object: Literal["spend_report"] = "spend_report"
    group_by: SpendGroup
    start_date: str
    end_date: str  # inclusive
    currency: Literal["USD"] = "USD"
    total_spend: float
    data: list[SpendRow]
