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
    # Dimensions whose values are a closed list (dimension, its values): `emit` refuses any
    # other, and the dashboard and alarms sum over exactly these.
    closed: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def values_of(self, dimension: str) -> tuple[str, ...]:
        """The closed list of `dimension`'s values (a KeyError for an open dimension)."""
        return dict(self.closed)[dimension]


def _metric(
    name: str,
    unit: str,
    dimensions: tuple[str, ...],
    meaning: str,
    rollups: tuple[tuple[str, ...], ...] = (),
    closed: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> MetricName:
    assert all(set(rollup) < set(dimensions) for rollup in rollups), name
    assert all(dimension in dimensions for dimension, _ in closed), name
    return MetricName(name, unit, dimensions, meaning, rollups, closed)


# ProviderCalls' outcomes: answered below 400, 4xx other than 429, 429, 5xx; no answer in
# time; no answer at all (DNS, connection refused or reset).
PROVIDER_OK, PROVIDER_4XX, PROVIDER_429, PROVIDER_5XX = "ok", "4xx", "429", "5xx"
PROVIDER_TIMEOUT, PROVIDER_UNREACHABLE = "timeout", "unreachable"
PROVIDER_OUTCOMES = (
    PROVIDER_OK,
    PROVIDER_4XX,
    PROVIDER_429,
    PROVIDER_5XX,
    PROVIDER_TIMEOUT,
    PROVIDER_UNREACHABLE,
)
# What a provider's error rate (its alarm) counts: the provider's fault or its limit, not a
# request the gateway should not have sent (4xx).
PROVIDER_ERROR_OUTCOMES = (PROVIDER_429, PROVIDER_5XX, PROVIDER_TIMEOUT, PROVIDER_UNREACHABLE)
# WebhookDeliveries' outcomes: acknowledged; failed and queued again; failed for the last time
# (the job went to the dead-letter queue).
WEBHOOK_DELIVERED, WEBHOOK_RETRIED, WEBHOOK_FAILED = "delivered", "retried", "failed"
WEBHOOK_OUTCOMES = (WEBHOOK_DELIVERED, WEBHOOK_RETRIED, WEBHOOK_FAILED)


# Functions (Powertools' name and dimension for it: `function_name` is Lambda's, one per function)
COLD_STARTS = _metric(
    "ColdStart", "Count", ("function_name",), "invocations that started a new execution environment"
)
# API
REQUESTS = _metric(
    "Requests",
    "Count",
    ("route", "status_class"),
    "requests answered, by route and 2xx/4xx/5xx",
    rollups=(("status_class",),),
)
# Providers
PROVIDER_CALLS = _metric(
    "ProviderCalls",
    "Count",
    ("provider", "outcome"),
    "calls to a provider, by outcome",
    rollups=(("provider",),),
    closed=(("outcome", PROVIDER_OUTCOMES),),
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
WATCHER_STOPPED_EARLY = _metric(
    "WatcherPassesStoppedEarly", "Count", (), "passes that ran out of time before their work was done"
)
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
# Webhooks
WEBHOOK_DELIVERIES = _metric(
    "WebhookDeliveries",
    "Count",
    ("outcome",),
    "webhook delivery attempts, by outcome",
    rollups=((),),
    closed=(("outcome", WEBHOOK_OUTCOMES),),
)
WEBHOOK_LATENCY = _metric("WebhookDeliveryLatency", "Milliseconds", (), "a delivery attempt's duration")
# File transfers
TRANSFER_BYTES = _metric("TransferBytes", "Bytes", ("provider",), "bytes moved to a provider")
TRANSFER_FAILURES = _metric("TransferFailures", "Count", ("provider",), "transfers that gave up")

ALL: tuple[MetricName, ...] = tuple(value for value in globals().values() if isinstance(value, MetricName))
