"""Per-model token prices, and what a batch's usage costs at them.

The shipped table (`prices.json`) holds per-million-token prices, each table with the source
and date of its figures (`sources`). `models` are OpenAI's (openai and azure deployments);
`providers.<type>.models` are the prices of the providers that price the same model their own
way (`anthropic`, `bedrock`: Bedrock ids, for the regions its table lists). A batch pays
`batch_discount` of the standard prices unless a model lists its own `batch` prices.

A model is priced only under its own name or as a dated snapshot of a priced name
(`gpt-4o-2024-08-06` as `gpt-4o`, `claude-sonnet-4-5-20250929` as `claude-sonnet-4-5`): never by
a shorter name it starts with (`o3-pro` is not `o3`). A Bedrock geographic inference profile
(`us.anthropic.…`, `us.amazon.nova-…`, `us.meta.llama…`) is priced as its model in the source
region, as AWS bills it; a global one (`global.…`) only under its own id. A model the table
does not know has no price: its cost is None, never a guess.

The operator adds or overrides models with the `MODEL_PRICES` environment variable (JSON, set
from `cdk.json`'s `model_prices`) or, locally, a file named by `MODEL_PRICES_FILE`: a bare name
is OpenAI's, `<provider type>/<model>` or `<deployment>/<model>` prices another provider's model
(a deployment's name wins over its type's).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from gateway.models.common import GatewayModel
from gateway.runtime import resources
from gateway.service.usage import BatchUsage

ENV_MODEL_PRICES = resources.ENV_MODEL_PRICES
ENV_MODEL_PRICES_FILE = "MODEL_PRICES_FILE"
_MILLION = Decimal(1_000_000)
_CENT_FRACTION = Decimal("0.000001")  # costs are kept to the micro-dollar
# A snapshot's date: OpenAI's `-2024-08-06`, Anthropic's `-20250514`.
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
# Bedrock's geographic cross-region inference profiles, billed at the source region's price.
_GEO_PROFILE = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov)\.(?=(?:anthropic|amazon|meta|openai)\.)")
OPENAI_TYPES = frozenset({"openai", "azure"})


class TokenPrices(GatewayModel):
    """USD per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)


class ModelPrices(TokenPrices):
    batch: TokenPrices | None = None  # where the provider publishes batch prices of its own
    source: str | None = None  # a key of `sources`, where the figures differ from their table's


class ProviderPrices(GatewayModel):
    """One provider type's own prices (its model names, its figures)."""

    source: str | None = None
    regions: list[str] | None = None  # None: wherever the provider runs
    models: dict[str, ModelPrices]


class PriceSource(GatewayModel):
    url: str
    checked: str  # the date the figures were read (ISO 8601)
    note: str | None = None


@dataclass(frozen=True)
class PriceScope:
    """Where a batch runs: its deployment, the deployment's type (None: OpenAI's names) and
    region (Bedrock's)."""

    deployment: str | None = None
    type: str | None = None
    region: str | None = None


class Cost(GatewayModel):
    """The gateway's `cost` field of a settled batch."""

    input: Decimal
    output: Decimal
    total: Decimal
    currency: str = "USD"


class PriceTable(GatewayModel):
    batch_discount: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    source: str | None = None
    sources: dict[str, PriceSource] = {}
    models: dict[str, ModelPrices]
    providers: dict[str, ProviderPrices] = {}

    def batch_prices(self, model: str, scope: PriceScope | None = None) -> TokenPrices | None:
        prices = self.lookup(model, scope or PriceScope())
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

    def lookup(self, model: str, scope: PriceScope) -> ModelPrices | None:
        """The operator's prices for the deployment, then for its type, then the shipped ones."""
        names = priced_names(model)
        for qualifier in (scope.deployment, scope.type):
            if qualifier:
                found = _first(self.models, [f"{qualifier}/{name}" for name in names])
                if found is not None:
                    return found
        if scope.type is None or scope.type in OPENAI_TYPES:
            return _first(self.models, names)
        provider = self.providers.get(scope.type)
        if provider is None:
            return None
        if provider.regions is not None and scope.region and scope.region not in provider.regions:
            return None  # the shipped figures are another region's
        return _first(provider.models, names)


def priced_names(model: str) -> list[str]:
    """The names `model` may be priced under, its own first: a dated snapshot's model, and a
    Bedrock geographic profile's model id."""
    names = [model]
    geo_free = _GEO_PROFILE.sub("", model)
    if geo_free != model:
        names.append(geo_free)
    for name in list(names):
        undated = _DATED_SUFFIX.sub("", name)
        if undated != name:
            names.append(undated)
    return names


def _first(models: dict[str, ModelPrices], names: list[str]) -> ModelPrices | None:
    return next((models[name] for name in names if name in models), None)


def batch_cost(
    table: PriceTable, model: str | None, usage: BatchUsage, scope: PriceScope | None = None
) -> Cost | None:
    prices = table.batch_prices(model, scope) if model else None
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


def scope_of(provider: str | None) -> PriceScope:
    """The price scope of a deployment by name (OpenAI's names for one the settings lack)."""
    from gateway.runtime.settings import get_settings

    deployment = get_settings().providers.get(provider) if provider else None
    if deployment is None:
        return PriceScope(deployment=provider)
    region = deployment.region
    if deployment.type == "bedrock" and region is None:  # the Bedrock client's region, as it picks it
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return PriceScope(deployment=deployment.name, type=deployment.type, region=region)


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
