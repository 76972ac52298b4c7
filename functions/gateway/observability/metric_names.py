"""Every metric the gateway emits: one list, read by the code that emits them (Powertools
Metrics, CloudWatch embedded metric format), by the dashboard and alarms (`infra/`) and by the
README's table. Dimensions stay few and bounded: a route comes from the route table, a provider
from the deployment configuration, a model only where configuration bounds it. Never a key, a
tenant, an id or a secret."""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "OpenAIGateway"
SERVICE = "openai-gateway"  # the `service` dimension every metric carries


@dataclass(frozen=True)
class MetricName:
    name: str
    unit: str  # a CloudWatch unit name, as Powertools' MetricUnit spells it
    dimensions: tuple[str, ...]  # besides `service`
    meaning: str
    # Coarser dimension sets each datapoint is published under too (each besides `service`;
    # () is `service` alone): what an alarm over every value of a dimension reads, since an
    # alarm cannot sum a SEARCH.
    rollups: tuple[tuple[str, ...], ...] = ()


def _metric(
    name: str,
    unit: str,
    dimensions: tuple[str, ...],
    meaning: str,
    rollups: tuple[tuple[str, ...], ...] = (),
) -> MetricName:
    assert all(set(rollup) < set(dimensions) for rollup in rollups), name
    return MetricName(name, unit, dimensions, meaning, rollups)


# API
REQUESTS = _metric(
    "Requests",
    "Count",
    ("route", "status_class"),
    "requests answered, by route and 2xx/4xx/5xx",
    rollups=(("status_class",),),
)
# Providers (outcome: ok, 4xx, 429, 5xx, timeout, unreachable)
PROVIDER_CALLS = _metric(
    "ProviderCalls",
    "Count",
    ("provider", "outcome"),
    "calls to a provider, by outcome",
    rollups=(("provider",),),
)
PROVIDER_LATENCY = _metric("ProviderLatency", "Milliseconds", ("provider",), "a provider call's duration")
# Batches and money
BATCHES_CREATED = _metric("BatchesCreated", "Count", ("provider",), "batches created")
BATCHES_FINISHED = _metric(
    "BatchesFinished", "Count", ("provider", "status"), "batches ended, by final status"
)
REQUESTS_COMPLETED = _metric("BatchRequestsCompleted", "Count", ("provider",), "batch lines that succeeded")
REQUESTS_FAILED = _metric("BatchRequestsFailed", "Count", ("provider",), "batch lines that failed")
COST_SETTLED = _metric("CostSettledUSD", "None", ("provider", "model"), "US dollars booked at settlement")
BUDGET_REFUSALS = _metric("BudgetRefusals", "Count", (), "creates refused by a key's budget")
# Watcher
WATCHER_PASS_DURATION = _metric("WatcherPassDuration", "Milliseconds", (), "one watcher pass")
WATCHER_BATCHES_TRACKED = _metric("WatcherBatchesTracked", "Count", (), "unfinished batches a pass looked at")
WATCHER_CHANGES = _metric("WatcherChangesRecorded", "Count", (), "status changes a pass recorded")
STRANDED_ADOPTED = _metric(
    "StrandedCreatesAdopted", "Count", (), "pending creates attached to their provider batch"
)
STRANDED_GIVEN_UP = _metric("StrandedCreatesGivenUp", "Count", (), "pending creates given up")
OLDEST_UNFINISHED_AGE = _metric(
    "OldestUnfinishedBatchAge", "Seconds", (), "age of the oldest unfinished batch"
)
INVARIANT_VIOLATIONS = _metric(
    "InvariantViolations", "Count", ("invariant",), "records a books check found off", rollups=((),)
)
# Webhooks (outcome: delivered, retried, failed)
WEBHOOK_DELIVERIES = _metric(
    "WebhookDeliveries", "Count", ("outcome",), "webhook delivery attempts, by outcome", rollups=((),)
)
WEBHOOK_LATENCY = _metric("WebhookDeliveryLatency", "Milliseconds", (), "a delivery attempt's duration")
# File transfers
TRANSFER_BYTES = _metric("TransferBytes", "Bytes", ("provider",), "bytes moved to a provider")
TRANSFER_FAILURES = _metric("TransferFailures", "Count", ("provider",), "transfers that gave up")

ALL: tuple[MetricName, ...] = tuple(value for value in globals().values() if isinstance(value, MetricName))
