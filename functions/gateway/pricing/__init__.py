"""Per-model token prices, and what a batch's usage costs at them.

The shipped table (`prices.json`) holds standard per-million-token prices; a batch pays
`batch_discount` of them unless a model lists its own `batch` prices. The operator adds or
overrides models with the `MODEL_PRICES` environment variable (JSON, set from `cdk.json`'s
`model_prices`) or, locally, a file named by `MODEL_PRICES_FILE`. A model the table does not
know has no price: its cost is None, never a guess.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from gateway import resources
from gateway.models.common import GatewayModel
from gateway.service.usage import BatchUsage

ENV_MODEL_PRICES = resources.ENV_MODEL_PRICES
ENV_MODEL_PRICES_FILE = "MODEL_PRICES_FILE"
_MILLION = Decimal(1_000_000)
_CENT_FRACTION = Decimal("0.000001")  # costs are kept to the micro-dollar


class TokenPrices(GatewayModel):
    """USD per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)


class ModelPrices(TokenPrices):
    batch: TokenPrices | None = None  # where the provider publishes batch prices of its own


class Cost(GatewayModel):
    """The gateway's `cost` field of a settled batch."""

    input: Decimal
    output: Decimal
    total: Decimal
    currency: str = "USD"


class PriceTable(GatewayModel):
    batch_discount: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    models: dict[str, ModelPrices]

    def batch_prices(self, model: str) -> TokenPrices | None:
        prices = self._lookup(model)
        if prices is None:
            return None
        if prices.batch is not None:
            return prices.batch
        discount = self.batch_discount
        return TokenPrices(
            input=prices.input * discount,
            output=prices.output * discount,
            cached_input=None if prices.cached_input is None else prices.cached_input * discount,
        )

    def _lookup(self, model: str) -> ModelPrices | None:
        """The model itself, else the longest known name it extends (`gpt-4o-mini-2024-07-18`
        is priced as `gpt-4o-mini`)."""
        if model in self.models:
            return self.models[model]
        bases = [name for name in self.models if model.startswith(name + "-")]
        return self.models[max(bases, key=len)] if bases else None


def batch_cost(table: PriceTable, model: str | None, usage: BatchUsage) -> Cost | None:
    prices = table.batch_prices(model) if model else None
    if prices is None:
        return None
    cached = min(usage.input_tokens_details.cached_tokens, usage.input_tokens)
    cached_price = prices.input if prices.cached_input is None else prices.cached_input
    input_cost = (
        Decimal(usage.input_tokens - cached) * prices.input + Decimal(cached) * cached_price
    ) / _MILLION
    output_cost = Decimal(usage.output_tokens) * prices.output / _MILLION
    input_cost, output_cost = input_cost.quantize(_CENT_FRACTION), output_cost.quantize(_CENT_FRACTION)
    return Cost(input=input_cost, output=output_cost, total=input_cost + output_cost)


@lru_cache(maxsize=1)
def price_table() -> PriceTable:
    """The shipped table with the operator's additions on top (read once per cold start)."""
    shipped: dict[str, Any] = json.loads((Path(__file__).parent / "prices.json").read_text())
    overrides: dict[str, Any] = {}
    if path := os.environ.get(ENV_MODEL_PRICES_FILE):
        overrides.update(json.loads(Path(path).read_text()))
    if raw := os.environ.get(ENV_MODEL_PRICES):
        overrides.update(json.loads(raw))
    return PriceTable.model_validate({**shipped, "models": {**shipped["models"], **overrides}})
