"""The dashboard and the alarms (cdk-monitoring-constructs), in a nested stack of their own.

One dashboard, a section per question an operator asks (API, functions, providers, batches,
money, watcher, webhooks, transfers, DynamoDB), built from the gateway's own metrics
(`gateway.observability.metric_names`: names and dimensions) and AWS's (API Gateway, Lambda,
SQS, DynamoDB). Every alarm notifies the alarm topic (`AlarmTopic`, in the API stack: its ARN
is a stack output); its threshold, evaluation periods and period come from
`infra.alarm_settings` with cdk.json's overrides. README, "Dashboard, alarms and runbook", says what each
means and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
import cdk_monitoring_constructs as mc
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from gateway import routes
from gateway.observability import metric_names as names
from gateway.observability.metric_names import MetricName

from infra import API_STACK_NAME
from infra.alarm_settings import AlarmSetting, check_window
from infra.api import STAGE_NAME
from infra.config import GatewayConfig
from infra.events import GatewayEvents

DASHBOARD_NAME = "openai-gateway"
ALARM_PREFIX = API_STACK_NAME
DISAMBIGUATOR = "Critical"
# The values of the bounded dimensions the alarms sum over (the code emits no others).
PROVIDER_OUTCOMES = ("ok", "4xx", "429", "5xx", "timeout", "unreachable")
PROVIDER_ERROR_OUTCOMES = ("429", "5xx", "timeout", "unreachable")
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")
# Counted from the API's access log (a metric filter), not emitted by the code: every answer
# 429, whether API Gateway's stage throttling or a function's own limit gave it.
API_THROTTLED = "ApiThrottled"
FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_DAY = cdk.Duration.days(1)

_COMPARISONS = {
    ">=": cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ">": cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "<": cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
}


def gateway_metric(
    metric: MetricName, statistic: str = "Sum", period: cdk.Duration = FIVE_MINUTES, **dimensions: str
) -> cloudwatch.Metric:
    """One series of a gateway metric: every dimension it is emitted with has a value."""
    if set(dimensions) != set(metric.dimensions):
        raise ValueError(f"{metric.name} is emitted with {metric.dimensions}, not {sorted(dimensions)}")
    return cloudwatch.Metric(
        namespace=names.NAMESPACE,
        metric_name=metric.name,
        dimensions_map={"service": names.SERVICE, **dimensions},
        statistic=statistic,
        period=period,
    )


def gateway_search(
    metric: MetricName, statistic: str = "Sum", period: cdk.Duration = FIVE_MINUTES
) -> cloudwatch.MathExpression:
    """Every series of a gateway metric (one line per value of its dimensions), for a graph."""
    schema = ",".join([names.NAMESPACE, *sorted(("service", *metric.dimensions))])
    return cloudwatch.MathExpression(
        expression=(
            f'SEARCH(\'{{{schema}}} MetricName="{metric.name}" service="{names.SERVICE}"\', '
            f"'{statistic}', {int(period.to_seconds())})"
        ),
        using_metrics={},
        label=" ",
        period=period,
    )


def gateway_total(metric: MetricName, period: cdk.Duration = FIVE_MINUTES) -> cloudwatch.MathExpression:
    """The sum over every series of a gateway metric (CloudWatch Metrics Insights), alarmable."""
    schema = ", ".join(['"' + names.NAMESPACE + '"', *sorted(("service", *metric.dimensions))])
    return cloudwatch.MathExpression(
        expression=f"SELECT SUM({metric.name}) FROM SCHEMA({schema})",
        using_metrics={},
        label=f"{metric.name} (all)",
        period=period,
    )


class AlarmTopic(Construct):
    """The SNS topic every alarm notifies; `alarm_email` (cdk.json) subscribes an address."""

    def __init__(self, scope: Construct, construct_id: str, *, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", display_name="openai-gateway alarms", enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class GatewayMonitoring(cdk.NestedStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        access_logs: logs.ILogGroup,
        functions: Mapping[str, lambda_.Function],
        events: GatewayEvents,
        table_name: str,
        config: GatewayConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id, description="openai-gateway: dashboard and alarms")
        self._settings = config.alarm_settings
        self._watch_period = cdk.Duration.minutes(config.watch_interval_minutes)
        self.action = mc.SnsAlarmActionStrategy(on_alarm_topic=topic)
        self.facade = mc.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                actions_enabled=True, alarm_name_prefix=ALARM_PREFIX, action=self.action
            ),
            metric_factory_defaults=mc.MetricFactoryDefaults(namespace=names.NAMESPACE, period=FIVE_MINUTES),
            dashboard_factory=mc.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=DASHBOARD_NAME,
                create_dashboard=True,
                create_summary_dashboard=False,
                create_alarm_dashboard=False,
            ),
        )
        providers = sorted(config.providers)
        self.facade.add_large_header("OpenAI gateway: API, functions, providers, batches, money")
        self._api(api, access_logs)
        self._functions(functions)
        self._providers(providers)
        self._batches(providers)
        self._watcher()
        self._webhooks(events)
        self._transfers(providers, functions)
        self._table(table_name)

    @property
    def dashboard_name(self) -> str:
        """The name the dashboard factory gives the one dashboard (a literal: no reference)."""
        return DASHBOARD_NAME

    # -- alarms ---------------------------------------------------------------------------

    def _period(self, setting: AlarmSetting) -> cdk.Duration:
        return cdk.Duration.minutes(setting.period_minutes) if setting.period_minutes else self._watch_period

    def threshold(
        self,
        name: str,
        *,
        missing: cloudwatch.TreatMissingData | None = None,
        description: str | None = None,
    ) -> mc.CustomThreshold:
        setting = self._settings[name]
        period = self._period(setting)
        check_window(name, setting, int(period.to_minutes()))
        return mc.CustomThreshold(
            threshold=setting.threshold,
            comparison_operator=_COMPARISONS[setting.comparison],
            evaluation_periods=setting.evaluation_periods,
            datapoints_to_alarm=setting.evaluation_periods,
            period=period,
            treat_missing_data_override=missing or cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description_override=f"openai-gateway {name}: {description or setting.meaning} "
            f"{setting.comparison} {setting.threshold:g} (README: Dashboard, alarms and runbook)",
        )

    def alarmed(
        self,
        name: str,
        friendly_name: str,
        metric: cloudwatch.IMetric,
        *,
        missing: cloudwatch.TreatMissingData | None = None,
        description: str | None = None,
    ) -> mc.CustomMetricWithAlarm:
        return mc.CustomMetricWithAlarm(
            metric=metric,  # type: ignore[arg-type]
            alarm_friendly_name=friendly_name,
            add_alarm={DISAMBIGUATOR: self.threshold(name, missing=missing, description=description)},
        )

    def _group(self, title: str, *metrics: object, **options: object) -> mc.CustomMetricGroup:
        return mc.CustomMetricGroup(title=title, metrics=list(metrics), **options)  # type: ignore[arg-type]

    def _custom(self, human_readable_name: str, friendly_name: str, *groups: mc.CustomMetricGroup) -> None:
        self.facade.monitor_custom(
            human_readable_name=human_readable_name,
            alarm_friendly_name=friendly_name,
            metric_groups=list(groups),
        )

    # -- sections -------------------------------------------------------------------------

    def _api(self, api: apigw.RestApi, access_logs: logs.ILogGroup) -> None:
        logs.MetricFilter(
            self,
            "ThrottledAnswers",
            log_group=access_logs,
            metric_namespace=names.NAMESPACE,
            metric_name=API_THROTTLED,
            filter_pattern=logs.FilterPattern.string_value("$.status", "=", "429"),
            metric_value="1",
        )
        setting = self._settings["api_5xx_rate"]
        period = self._period(setting)
        self.facade.monitor_api_gateway(
            api=api,
            api_stage=STAGE_NAME,
            human_readable_name="API (API Gateway)",
            alarm_friendly_name="Api",
            latency_types_to_render=[mc.LatencyType.P50, mc.LatencyType.P99],
            add5_xx_fault_rate_alarm={
                DISAMBIGUATOR: mc.ErrorRateThreshold(
                    max_error_rate=setting.threshold / 100,  # the average of 5XXError: a fraction
                    evaluation_periods=setting.evaluation_periods,
                    datapoints_to_alarm=setting.evaluation_periods,
                    period=period,
                    alarm_description_override=f"openai-gateway api_5xx_rate: {setting.meaning} > "
                    f"{setting.threshold:g} (README: Dashboard, alarms and runbook)",
                )
            },
        )
        self._custom(
            "API (the gateway's answers)",
            "ApiAnswers",
            self._group("Requests by route and status class", gateway_search(names.REQUESTS)),
            self._group(
                "Throttled: answers 429 (access log)",
                cloudwatch.Metric(
                    namespace=names.NAMESPACE,
                    metric_name=API_THROTTLED,
                    statistic="Sum",
                    period=FIVE_MINUTES,
                    label="429 answers",
                ),
            ),
        )

    def _functions(self, functions: Mapping[str, lambda_.Function]) -> None:
        def each(metric: str, statistic: str) -> list[cloudwatch.Metric]:
            return [
                function.metric(metric, statistic=statistic, period=FIVE_MINUTES, label=name)
                for name, function in sorted(functions.items())
            ]

        wide = {"graph_widget_width": 12}
        self._custom(
            "Functions",
            "Functions",
            self._group("Errors", *each("Errors", "Sum"), **wide),
            self._group("Duration p99 (ms)", *each("Duration", "p99"), **wide),
            self._group("Concurrent executions (max)", *each("ConcurrentExecutions", "Maximum"), **wide),
            self._group("Throttles (Lambda concurrency)", *each("Throttles", "Sum"), **wide),
            self._group(
                "Cold starts (Powertools ColdStart)",
                cloudwatch.MathExpression(
                    expression=(
                        f"SEARCH('{{{names.NAMESPACE},function_name,service}} MetricName=\"ColdStart\"', "
                        f"'Sum', {int(FIVE_MINUTES.to_seconds())})"
                    ),
                    using_metrics={},
                    label=" ",
                    period=FIVE_MINUTES,
                ),
                **wide,
            ),
        )
        setting = self._settings["function_error_rate"]
        for name, function in sorted(functions.items()):
            # Alarms only: the section above draws every function on the same graphs.
            self.facade.monitor_lambda_function(
                lambda_function=function,
                alarm_friendly_name=f"Function-{name}",
                human_readable_name=name,
                add_to_detail_dashboard=False,
                add_to_summary_dashboard=False,
                add_to_alarm_dashboard=False,
                add_fault_rate_alarm={
                    DISAMBIGUATOR: mc.ErrorRateThreshold(
                        # the average of Errors (0 or 1 per invocation): a fraction
                        max_error_rate=setting.threshold / 100,
                        evaluation_periods=setting.evaluation_periods,
                        datapoints_to_alarm=setting.evaluation_periods,
                        period=self._period(setting),
                        alarm_description_override=f"openai-gateway function_error_rate: {name}: "
                        f"{setting.meaning} > {setting.threshold:g} (README: Dashboard, alarms and runbook)",
                    )
                },
            )

    def _providers(self, providers: list[str]) -> None:
        for provider in providers:
            calls = {
                outcome: gateway_metric(names.PROVIDER_CALLS, provider=provider, outcome=outcome)
                for outcome in PROVIDER_OUTCOMES
            }
            ids = {outcome: f"c{index}" for index, outcome in enumerate(PROVIDER_OUTCOMES)}
            errors = " + ".join(_filled(ids[outcome]) for outcome in PROVIDER_ERROR_OUTCOMES)
            every = " + ".join(_filled(i) for i in ids.values())
            error_rate = cloudwatch.MathExpression(
                expression=f"IF(({every}) > 0, 100 * ({errors}) / ({every}), 0)",
                using_metrics={ids[outcome]: metric for outcome, metric in calls.items()},
                label=f"{provider}: errors (429, 5xx, timeout, unreachable) %",
                period=FIVE_MINUTES,
            )
            self._custom(
                f"Provider {provider}",
                f"Provider-{provider}",
                self._group(
                    "Calls by outcome",
                    *(metric.with_(label=outcome) for outcome, metric in calls.items()),
                ),
                self._group(
                    "Error rate (%)",
                    self.alarmed("provider_error_rate", f"ProviderErrorRate-{provider}", error_rate),
                ),
                self._group(
                    "Latency (ms)",
                    *(
                        gateway_metric(names.PROVIDER_LATENCY, statistic, provider=provider).with_(
                            label=statistic
                        )
                        for statistic in ("p50", "p99")
                    ),
                ),
            )

    def _batches(self, providers: list[str]) -> None:
        self._custom(
            "Batches",
            "Batches",
            self._group(
                "Created",
                *(gateway_metric(names.BATCHES_CREATED, provider=p).with_(label=p) for p in providers),
            ),
            self._group("Finished by status", gateway_search(names.BATCHES_FINISHED)),
            self._group(
                "Requests completed / failed",
                gateway_search(names.REQUESTS_COMPLETED),
                gateway_search(names.REQUESTS_FAILED),
            ),
            self._group(
                "Stuck: unfinished batches and the oldest one's age (s)",
                gateway_metric(names.WATCHER_BATCHES_TRACKED, "Maximum").with_(label="unfinished"),
                gateway_metric(names.OLDEST_UNFINISHED_AGE, "Maximum").with_(label="oldest age (s)"),
                gateway_metric(names.BUDGET_REFUSALS).with_(label="budget refusals"),
            ),
        )
        self._custom(
            "Money",
            "Money",
            self._group(
                "Cost settled per day (USD, by provider and model)",
                gateway_search(names.COST_SETTLED, period=ONE_DAY),
                graph_widget_width=24,
            ),
        )

    def _watcher(self) -> None:
        passes = gateway_metric(names.WATCHER_PASS_DURATION, "SampleCount", period=self._watch_period)
        self._custom(
            "Watcher",
            "Watcher",
            self._group(
                "Passes per interval",
                self.alarmed(
                    "watcher_stalled",
                    "WatcherStalled",
                    passes.with_(label="passes"),
                    missing=cloudwatch.TreatMissingData.BREACHING,  # no pass at all is the case
                ),
            ),
            self._group(
                "Pass duration (ms)",
                *(
                    gateway_metric(names.WATCHER_PASS_DURATION, s).with_(label=s)
                    for s in ("Average", "Maximum")
                ),
            ),
            self._group(
                "Changes, stranded creates",
                gateway_metric(names.WATCHER_CHANGES).with_(label="changes recorded"),
                gateway_metric(names.STRANDED_ADOPTED).with_(label="stranded adopted"),
                gateway_metric(names.STRANDED_GIVEN_UP).with_(label="stranded given up"),
            ),
            self._group(
                "Invariant violations",
                self.alarmed(
                    "invariant_violations", "InvariantViolations", gateway_total(names.INVARIANT_VIOLATIONS)
                ),
                gateway_search(names.INVARIANT_VIOLATIONS),
            ),
        )

    def _webhooks(self, events: GatewayEvents) -> None:
        outcomes = {
            outcome: gateway_metric(names.WEBHOOK_DELIVERIES, outcome=outcome) for outcome in WEBHOOK_OUTCOMES
        }
        ids = {outcome: f"w{index}" for index, outcome in enumerate(WEBHOOK_OUTCOMES)}
        every = " + ".join(_filled(i) for i in ids.values())
        success_rate = cloudwatch.MathExpression(
            expression=f"IF(({every}) > 0, 100 * {_filled(ids['delivered'])} / ({every}), 100)",
            using_metrics={ids[outcome]: metric for outcome, metric in outcomes.items()},
            label="delivered %",
            period=FIVE_MINUTES,
        )
        self._custom(
            "Webhooks",
            "Webhooks",
            self._group("Success rate (%)", success_rate),
            self._group("Deliveries by outcome", *(m.with_(label=o) for o, m in outcomes.items())),
            self._group(
                "Delivery latency (ms)",
                *(gateway_metric(names.WEBHOOK_LATENCY, s).with_(label=s) for s in ("p50", "p99")),
            ),
            self._group(
                "Queue and dead letters",
                events.queue.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, label="queued"
                ),
                self.alarmed(
                    "dead_letters",
                    "WebhookDeadLetters",
                    events.dead_letters.metric_approximate_number_of_messages_visible(
                        period=self._period(self._settings["dead_letters"])
                    ),
                ),
            ),
        )

    def _transfers(self, providers: list[str], functions: Mapping[str, lambda_.Function]) -> None:
        failures = {p: gateway_metric(names.TRANSFER_FAILURES, provider=p) for p in providers}
        ids = {p: f"t{index}" for index, p in enumerate(providers)}
        total = cloudwatch.MathExpression(
            expression=" + ".join(_filled(i) for i in ids.values()),
            using_metrics={ids[p]: metric for p, metric in failures.items()},
            label="transfers given up",
            period=FIVE_MINUTES,
        )
        # A failed transfer event goes to its on-failure function; that hand-over failing, or
        # the last function failing, would lose the record silently.
        lost = []
        for function in routes.ASYNC_FUNCTIONS:
            target = functions[function.name]
            period = self._period(self._settings["transfer_failure_lost"])
            if function.on_failure:
                metric = target.metric("DestinationDeliveryFailures", statistic="Sum", period=period)
                what = f"{function.on_failure} could not be handed a failed {function.name} event"
            else:
                metric = target.metric_errors(period=period)
                what = f"{function.name} failed: a failure record may be lost"
            lost.append(
                self.alarmed(
                    "transfer_failure_lost", f"TransferFailureLost-{function.name}", metric, description=what
                )
            )
        self._custom(
            "File transfers",
            "Transfers",
            self._group(
                "Bytes moved",
                *(gateway_metric(names.TRANSFER_BYTES, provider=p).with_(label=p) for p in providers),
            ),
            self._group("Transfers given up", self.alarmed("transfer_failures", "TransferFailures", total)),
            self._group("Failure records not handled", *lost),
        )

    def _table(self, table_name: str) -> None:
        setting = self._settings["dynamodb_throttling"]
        threshold = mc.ThrottledEventsThreshold(
            max_throttled_events_threshold=setting.threshold,
            evaluation_periods=setting.evaluation_periods,
            datapoints_to_alarm=setting.evaluation_periods,
            period=self._period(setting),
            alarm_description_override=f"openai-gateway dynamodb_throttling: {setting.meaning} > "
            f"{setting.threshold:g} (README: Dashboard, alarms and runbook)",
        )
        self.facade.monitor_dynamo_table(
            table=dynamodb.Table.from_table_name(self, "Table", table_name),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            human_readable_name="DynamoDB table",
            alarm_friendly_name="Table",
            add_read_throttled_events_count_alarm={DISAMBIGUATOR: threshold},
            add_write_throttled_events_count_alarm={DISAMBIGUATOR: threshold},
        )


def _filled(metric_id: str) -> str:
    """A series with 0 where it has no datapoint: metric math drops a period in which any
    operand has none, and most outcomes (a timeout, a dead letter) are rare."""
    return f"FILL({metric_id}, 0)"
