"""The benches' statistics and pure helpers (no server, no subprocess: milliseconds)."""

from __future__ import annotations

import pytest
from gateway import routes

from bench import coldstart, overhead
from bench._stats import median, percentile, summarize


def test_median_of_odd_and_even_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0]) == 7.0


def test_percentile_interpolates_linearly_like_numpy() -> None:
    samples = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 20.0
    assert percentile(samples, 95) == pytest.approx(19.05)
    assert percentile(samples, 50) == 10.5
    assert percentile([5.0, 1.0], 95) == pytest.approx(4.8)


def test_percentile_rejects_no_samples_and_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], float("nan"))


def test_summarize() -> None:
    figures = summarize([0.004, 0.001, 0.002, 0.003])
    assert figures["p50"] == pytest.approx(0.0025)
    assert figures["min"] == 0.001 and figures["max"] == 0.004 and figures["n"] == 4


def test_overhead_round_figures_and_median_over_rounds() -> None:
    samples = overhead.RoundSamples(gateway=[0.010, 0.012, 0.011], direct=[0.001, 0.002, 0.003])
    samples.moto = [0.005, 0.006, 0.007]
    figures = overhead.round_figures(samples)
    assert figures["gateway_p50"] == pytest.approx(11.0)
    assert figures["overhead_p50"] == pytest.approx(9.0)
    assert figures["moto_p50"] == pytest.approx(6.0)
    combined = overhead.combine_rounds([{"x": 1.0}, {"x": 5.0}, {"x": 2.0}])
    assert combined == {"x": 2.0}


def test_overhead_reads_the_devserver_banner() -> None:
    banner = """
  OpenAI Batches & Files gateway (local)   http://127.0.0.1:4000
  OpenAI SDK base_url     http://127.0.0.1:4000/v1
  Master key              sk-1234   (local dev key)
  Provider openai         simulator http://127.0.0.1:4010/v1
  Provider azure          simulator http://127.0.0.1:4010
  Provider simulator      http://127.0.0.1:4010   (for openai, azure: no API key set; ...)
  AWS endpoint            http://127.0.0.1:5000   (embedded moto)
"""
    assert overhead.parse_banner(banner) == {
        "gateway": "http://127.0.0.1:4000/v1",
        "simulator": "http://127.0.0.1:4010",
        "openai": "http://127.0.0.1:4010/v1",
        "aws": "http://127.0.0.1:5000",
    }


def test_coldstart_clients_follow_the_route_grants() -> None:
    assert coldstart.clients_for(routes.route("health").grants) == []
    assert coldstart.clients_for(routes.route("files_list").grants) == ["dynamodb", "secrets"]
    assert coldstart.clients_for(routes.route("files_content").grants) == [
        "dynamodb",
        "secrets",
        "providers",
        "s3",
    ]
    assert "lambda" in coldstart.clients_for(routes.route("uploads_complete").grants)
    assert set(coldstart.CLIENT_CODE) >= {
        kind for r in routes.ROUTES for kind in coldstart.clients_for(r.grants)
    }


def test_coldstart_ratios_to_litellm() -> None:
    results = {"files_list": {"total_ms": 50.0}, coldstart.LITELLM: {"total_ms": 1000.0}}
    assert coldstart.add_ratios(results) == 1000.0
    assert results["files_list"]["ratio_to_litellm"] == pytest.approx(0.05)
    assert coldstart.add_ratios({"files_list": {"total_ms": 50.0}}) is None
