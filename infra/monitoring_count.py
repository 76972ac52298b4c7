"""What the synthesized monitoring bills by the month: dashboards and alarm metrics, counted in a
cloud assembly's templates (bench/cost.py prices them; `make synth` prints them).

CloudWatch bills a standard alarm per metric it lists: one for an alarm on a metric, one per
metric a metric-math alarm reads (an expression is free); an alarm on a Metrics Insights query
by the series the query reads, which the template does not say (its caller knows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.resource_count import TEMPLATE_SUFFIX


@dataclass(frozen=True)
class BilledMonitoring:
    dashboards: int
    alarms: int
    alarm_metrics: int  # the metrics the alarms other than Metrics Insights ones list
    insights_queries: tuple[str, ...]  # one per alarm on a Metrics Insights query


def billed_monitoring(outdir: Path) -> BilledMonitoring:
    dashboards = alarms = alarm_metrics = 0
    queries: list[str] = []
    for path in sorted(outdir.glob(f"*{TEMPLATE_SUFFIX}")):
        for resource in json.loads(path.read_text()).get("Resources", {}).values():
            if resource["Type"] == "AWS::CloudWatch::Dashboard":
                dashboards += 1
            elif resource["Type"] == "AWS::CloudWatch::Alarm":
                alarms += 1
                query = _insights_query(resource["Properties"])
                if query:
                    queries.append(query)
                else:
                    alarm_metrics += _listed_metrics(resource["Properties"])
    return BilledMonitoring(dashboards, alarms, alarm_metrics, tuple(queries))


def _listed_metrics(alarm: dict[str, Any]) -> int:
    if "Metrics" not in alarm:
        return 1  # MetricName, Namespace, Dimensions: one metric
    return sum(1 for query in alarm["Metrics"] if "MetricStat" in query)


def _insights_query(alarm: dict[str, Any]) -> str | None:
    for query in alarm.get("Metrics", ()):
        expression = query.get("Expression")
        if isinstance(expression, str) and expression.lstrip().upper().startswith("SELECT "):
            return expression
    return None


def summary(outdir: Path) -> str:
    billed = billed_monitoring(outdir)
    return (
        f"Monitoring: {billed.dashboards} dashboard(s), {billed.alarms} alarms "
        f"({billed.alarm_metrics} alarm metrics, {len(billed.insights_queries)} on a Metrics Insights query)"
    )
