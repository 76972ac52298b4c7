"""Gemini models are priced at Google's own Batch column under the `gemini` type, never as OpenAI's."""

from __future__ import annotations

from decimal import Decimal

from gateway.pricing import PriceScope, batch_cost, price_table
from gateway.service.usage import BatchUsage

GEMINI = PriceScope(deployment="gemini", type="gemini")


def test_a_gemini_batch_pays_the_batch_column() -> None:
    usage = BatchUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    cost = batch_cost(price_table(), "gemini-2.5-flash", usage, GEMINI)
    assert cost is not None
    assert (cost.input, cost.output) == (Decimal("0.15"), Decimal("1.25"))
    pro = batch_cost(price_table(), "gemini-3-pro-preview", usage, GEMINI)
    assert pro is not None and pro.total == Decimal("7.0")


def test_a_gemini_model_has_no_price_outside_its_type() -> None:
    assert batch_cost(price_table(), "gemini-2.5-flash", BatchUsage(input_tokens=5)) is None
    assert batch_cost(price_table(), "gemini-9-ultra", BatchUsage(input_tokens=5), GEMINI) is None
