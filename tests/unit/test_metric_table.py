"""README.md's metric table is the one metric_names generates (`make metric-table` updates it)."""

from __future__ import annotations

from pathlib import Path

from gateway.observability import metric_names, metric_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_metric_as_metric_names_declares_it() -> None:
    readme = README.read_text()
    assert metric_table.with_table(readme) == readme, "README.md's metric table is stale: make metric-table"
    for metric in metric_names.ALL:
        assert f"| `{metric.name}` | {metric.unit} |" in readme


def test_a_stale_table_is_replaced() -> None:
    stale = f"before\n{metric_table.START}\n| `Old` | Count |\n{metric_table.END}\nafter\n"
    fresh = metric_table.with_table(stale)
    assert "`Old`" not in fresh and fresh.startswith("before\n") and fresh.endswith("\nafter\n")
    assert metric_table.markdown() in fresh
