"""The benches' goal checks: a missed goal is exit status 1, `--report-only` makes it 0."""

from __future__ import annotations

import argparse
import io
import math

import pytest

from bench import asset_sizes, auth, large_file, overhead
from bench._goals import Goal, add_report_only_flag, verdict


def test_a_goal_at_its_limit_is_met_and_past_it_is_missed() -> None:
    assert Goal("latency", 10.0, 10.0, "ms").met
    assert not Goal("latency", 10.001, 10.0, "ms").met
    assert Goal("throughput", 50.0, 50.0, "MB/s", at_most=False).met
    assert not Goal("throughput", 49.9, 50.0, "MB/s", at_most=False).met


@pytest.mark.parametrize("at_most", [True, False])
def test_a_figure_that_was_not_measured_is_a_miss(at_most: bool) -> None:
    assert not Goal("nothing", math.nan, 1.0, "ms", at_most=at_most).met


def test_verdict_exit_status_and_lines() -> None:
    met, missed = Goal("a", 1.0, 2.0, "ms"), Goal("b", 60.0, 50.0, "MB/s", at_most=False)
    out = io.StringIO()
    assert verdict([met], report_only=False, out=out) == 0
    assert out.getvalue() == "goal a: 1.000 ms (goal <= 2 ms): met\n"

    out = io.StringIO()
    assert verdict([met, Goal("c", 3.0, 2.0, "ms")], report_only=False, out=out) == 1
    assert out.getvalue().splitlines()[1:] == [
        "goal c: 3.000 ms (goal <= 2 ms): MISSED",
        "1 goal(s) missed: c",
    ]

    out = io.StringIO()
    assert verdict([Goal("c", 3.0, 2.0, "ms"), missed], report_only=True, out=out) == 0
    assert "MISSED" in out.getvalue() and "--report-only" in out.getvalue()
    assert "goal b: 60.000 MB/s (goal >= 50 MB/s): met" in out.getvalue()

    with pytest.raises(ValueError):
        verdict([], report_only=False, out=out)


def test_the_report_only_flag() -> None:
    parser = argparse.ArgumentParser()
    add_report_only_flag(parser)
    assert parser.parse_args(["--report-only"]).report_only is True
    assert parser.parse_args([]).report_only is False


def test_overhead_checks_the_gateways_own_share_of_every_operation() -> None:
    result = {
        "operations": {
            "files.list": {"overhead_p50": 25.0, "moto_p50": 20.0},  # whole over 10, own 5: met
            "files.create": {"overhead_p50": 14.0, "moto_p50": 3.0},  # own 11: missed
        }
    }
    checked = overhead.goals(result)
    assert [(g.name, g.value, g.met) for g in checked] == [
        ("files.list gateway's own p50", 5.0, True),
        ("files.create gateway's own p50", 11.0, False),
    ]
    assert verdict(checked, report_only=False, out=io.StringIO()) == 1
    lines = overhead.whole_overhead_lines(result)
    assert lines[0].startswith("(not checked) files.list whole p50 overhead 25.00 ms: over 10 ms")


def test_auth_checks_the_added_p50() -> None:
    assert [g.met for g in auth.goals({"summary": {"added_p50_ms": 0.03}})] == [True]
    assert [g.met for g in auth.goals({"summary": {"added_p50_ms": 1.2}})] == [False]


def test_asset_sizes_checks_the_layer_targets_and_lambdas_limit() -> None:
    mb = asset_sizes.MB

    def sizes(code: float, sources: float, layer: float) -> dict[str, dict[str, float]]:
        return {
            "code": {"unzipped_bytes": code * mb},
            "layer": {"source_bytes": sources * mb, "unzipped_bytes": layer * mb},
        }

    assert [g.met for g in asset_sizes.goals(sizes(1, 12, 20))] == [True, True, True]
    assert [g.met for g in asset_sizes.goals(sizes(1, 17, 24))] == [False, True, True]
    assert [g.met for g in asset_sizes.goals(sizes(1, 15, 26))] == [True, False, True]
    assert [g.met for g in asset_sizes.goals(sizes(230, 14, 24))] == [True, True, False]


def _size(size_mb: int, mb_per_s: float, rss: float, upload: float = 60.0) -> large_file.SizeSummary:
    return large_file.SizeSummary(
        size_mb=size_mb,
        runs=1,
        input_bytes=size_mb * large_file.MB,
        input_lines=1,
        output_bytes=0,
        seconds={},
        mb_per_s={"upload": upload},
        cpu_seconds={},
        peak_rss_mib={},
        end_to_end_mb_per_s=mb_per_s,
        gateway_peak_rss_mib=rss,
        gateway_rss_at_start_mib=0.0,
        moto_peak_rss_mib=0.0,
        simulator_peak_rss_mib=0.0,
    )


def test_large_file_checks_the_largest_sizes_throughput_and_the_rss_difference() -> None:
    checked = large_file.goals([_size(20, 10.0, 100.0, upload=5.0), _size(200, 61.0, 120.0)])
    assert [(g.value, g.met) for g in checked] == [(61.0, True), (60.0, True), (20.0, True)]
    checked = large_file.goals([_size(200, 49.0, 150.0, upload=16.0), _size(20, 70.0, 100.0)])
    assert [(g.value, g.met) for g in checked] == [(49.0, False), (16.0, False), (50.0, False)]
    checked = large_file.goals([_size(20, 55.0, 100.0)])  # one size: no memory comparison
    assert [g.met for g in checked] == [True, True]
