"""Usage summed from output lines, and its cost at batch prices."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gateway import pricing
from gateway.pricing import PriceScope, PriceTable, batch_cost, price_table
from gateway.service.usage import BatchUsage, tally_output


def output_line(custom_id: str, status: int, usage: dict[str, Any] | None) -> bytes:
    body: dict[str, Any] = {"object": "chat.completion"}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(
        {"id": "r", "custom_id": custom_id, "response": {"status_code": status, "body": body}, "error": None}
    ).encode()


def test_only_successful_lines_count_and_both_usage_shapes_are_read() -> None:
    lines = [
        output_line(
            "a",
            200,
            {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "total_tokens": 120,
                "prompt_tokens_details": {"cached_tokens": 40},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        ),
        output_line(
            "b",
            200,
            {
                "input_tokens": 10,
                "output_tokens": 3,
                "total_tokens": 13,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 2},
            },
        ),
        output_line("c", 400, {"prompt_tokens": 999, "completion_tokens": 999, "total_tokens": 1998}),
        json.dumps({"custom_id": "d", "response": None, "error": {"code": "x"}}).encode(),
        b"not json",
        b"",
    ]
    tally = tally_output(lines)
    assert (tally.succeeded, tally.failed) == (2, 3)
    assert tally.usage.model_dump() == {
        "input_tokens": 110,
        "input_tokens_details": {"cached_tokens": 40},
        "output_tokens": 23,
        "output_tokens_details": {"reasoning_tokens": 7},
        "total_tokens": 133,
    }


def test_a_line_without_total_tokens_adds_input_and_output() -> None:
    tally = tally_output([output_line("a", 200, {"prompt_tokens": 7, "completion_tokens": 0})])
    assert tally.usage.total_tokens == 7 and tally.succeeded == 1


def test_cost_is_half_the_standard_price_with_cached_input_at_its_own_price() -> None:
    usage = BatchUsage.model_validate(
        {
            "input_tokens": 2_000_000,
            "input_tokens_details": {"cached_tokens": 1_000_000},
            "output_tokens": 500_000,
        }
    )
    cost = batch_cost(price_table(), "gpt-4o-mini-2024-07-18", usage)
    assert cost is not None
    # 1M uncached x 0.15/2 + 1M cached x 0.075/2 = 0.1125; 0.5M x 0.60/2 = 0.15
    assert (cost.input, cost.output, cost.total, cost.currency) == (
        Decimal("0.112500"),
        Decimal("0.150000"),
        Decimal("0.262500"),
        "USD",
    )


def test_published_batch_prices_win_over_the_discount() -> None:
    table = PriceTable.model_validate(
        {"models": {"m": {"input": 10, "output": 10, "batch": {"input": 1, "output": 2}}}}
    )
    cost = batch_cost(table, "m", BatchUsage(input_tokens=1_000_000, output_tokens=1_000_000))
    assert cost is not None and cost.total == Decimal(3)


def test_an_unknown_model_has_no_cost() -> None:
    assert batch_cost(price_table(), "my-own-model", BatchUsage(input_tokens=5)) is None
    assert batch_cost(price_table(), None, BatchUsage(input_tokens=5)) is None


def test_the_operator_adds_and_overrides_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"house-model": {"input": 4, "output": 8}}))
    monkeypatch.setenv(pricing.ENV_MODEL_PRICES_FILE, str(prices_file))
    monkeypatch.setenv(pricing.ENV_MODEL_PRICES, json.dumps({"gpt-4o": {"input": 100, "output": 100}}))
    price_table.cache_clear()
    try:
        table = price_table()
        assert table.batch_prices("house-model") is not None
        cost = batch_cost(table, "gpt-4o", BatchUsage(input_tokens=1_000_000))
        assert cost is not None and cost.total == Decimal(50)
    finally:
        price_table.cache_clear()


def test_an_azure_deployment_name_is_priced_as_the_model_it_serves() -> None:
    from gateway.providers.config import ProviderDeployment

    azure = ProviderDeployment(
        name="azure", type="azure", api_base="https://x", models={"prod-mini": "gpt-4o-mini"}
    )
    assert azure.base_model("prod-mini") == "gpt-4o-mini" and azure.base_model("other") == "other"
    assert batch_cost(price_table(), "prod-mini", BatchUsage(input_tokens=1_000_000)) is None
    cost = batch_cost(price_table(), azure.base_model("prod-mini"), BatchUsage(input_tokens=1_000_000))
    assert cost is not None and cost.total == Decimal("0.075")


MILLION_EACH = BatchUsage(input_tokens=1_000_000, output_tokens=1_000_000)


def _total(model: str, scope: PriceScope | None = None) -> Decimal | None:
    cost = batch_cost(price_table(), model, MILLION_EACH, scope)
    return cost.total if cost else None


def test_a_longer_model_name_is_never_priced_as_a_shorter_one() -> None:
    # the pro models cost 10x their namesakes: each has its own price, at half for a batch
    assert _total("o3-pro") == Decimal(50) and _total("o3") == Decimal(5)
    assert _total("o1-pro") == Decimal(375) and _total("gpt-5-pro") == Decimal("67.5")
    for unknown in ("o3-deep-research", "gpt-5-codex", "gpt-4o-mini-tts", "o1-preview", "gpt-4o-audio"):
        assert _total(unknown) is None, unknown


def test_only_a_dated_snapshot_inherits_its_models_price() -> None:
    assert _total("o3-pro-2025-06-10") == _total("o3-pro")
    assert _total("gpt-4o-mini-2024-07-18") == _total("gpt-4o-mini")
    assert _total("gpt-4o-2024-05-13") == Decimal(10)  # a snapshot priced its own way keeps it
    assert _total("gpt-4o-2024-08-06") == _total("gpt-4o") == Decimal("6.25")
    assert _total("gpt-4o-latest") is None and _total("gpt-4o-2024") is None


def test_claude_is_priced_per_provider_at_batch_prices() -> None:
    anthropic = PriceScope(deployment="claude", type="anthropic")
    assert _total("claude-sonnet-4-5", anthropic) == Decimal(9)  # (3 + 15) / 2
    assert _total("claude-sonnet-4-5-20250929", anthropic) == Decimal(9)
    assert _total("claude-3-5-haiku-20241022", anthropic) == Decimal("2.4")
    assert _total("claude-sonnet-4-5") is None  # not one of OpenAI's models
    assert _total("gpt-4o", anthropic) is None  # nor Anthropic's
    bedrock = PriceScope(deployment="bedrock", type="bedrock", region="us-east-1")
    assert _total("anthropic.claude-3-5-haiku-20241022-v1:0", bedrock) == Decimal("2.4")
    assert _total("us.anthropic.claude-sonnet-4-20250514-v1:0", bedrock) == Decimal(9)
    assert _total("global.anthropic.claude-sonnet-4-20250514-v1:0", bedrock) is None
    assert _total("claude-sonnet-4-5", bedrock) is None
    elsewhere = PriceScope(deployment="bedrock-eu", type="bedrock", region="eu-west-1")
    assert _total("anthropic.claude-3-5-haiku-20241022-v1:0", elsewhere) is None  # another region's


def test_gemini_on_vertex_is_priced_at_vertex_batch_prices() -> None:
    vertex = PriceScope(deployment="vertex", type="vertex")
    assert _total("gemini-2.5-flash", vertex) == Decimal("1.4")  # (0.3 + 2.5) / 2
    assert _total("gemini-2.5-pro", vertex) == Decimal("5.625")  # (1.25 + 10) / 2
    assert _total("claude-sonnet-4@20250514", vertex) == Decimal(9)  # (3 + 15) / 2
    assert _total("gemini-2.5-flash") is None and _total("gemini-3-pro-preview", vertex) is None


def test_the_operator_prices_a_deployment_or_a_provider_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        pricing.ENV_MODEL_PRICES,
        json.dumps(
            {
                "bedrock-eu/anthropic.claude-3-5-haiku-20241022-v1:0": {"input": 2, "output": 2},
                "anthropic/claude-house": {"input": 4, "output": 4},
            }
        ),
    )
    price_table.cache_clear()
    try:
        eu = PriceScope(deployment="bedrock-eu", type="bedrock", region="eu-west-1")
        assert _total("eu.anthropic.claude-3-5-haiku-20241022-v1:0", eu) == Decimal(2)
        assert _total("claude-house-20260101", PriceScope(deployment="a", type="anthropic")) == Decimal(4)
        assert _total("claude-house") is None
    finally:
        price_table.cache_clear()


def test_every_shipped_price_names_its_source_and_date() -> None:
    table = price_table()
    tables = [(table.source, table.models)] + [(p.source, p.models) for p in table.providers.values()]
    for source, models in tables:
        for name, prices in models.items():
            named = table.sources[prices.source or source or ""]
            assert named.url.startswith("https://") and date.fromisoformat(named.checked), name
