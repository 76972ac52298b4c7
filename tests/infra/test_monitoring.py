"""The dashboard, the alarms and the topic they notify (infra/monitoring.py).

The session synth shows the shipped settings; a small stack of its own (no bundling) shows the
overrides from cdk.json and the optional e-mail subscription.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template
from gateway import routes
from gateway.observability import metric_names

from infra import REPO_ROOT
from infra.alarm_settings import DEFAULT_ALARMS
from infra.config import ConfigError, GatewayConfig
from infra.events import GatewayEvents
from infra.monitoring import API_THROTTLED, DASHBOARD_NAME, AlarmTopic, GatewayMonitoring
from tests.infra.conftest import Synth
from tests.infra.template_tools import functions_by_handler, resources_of

# Alarms per setting in the shipped configuration (providers openai and bedrock).
ROUTED_AND_UNROUTED = (
    len(routes.ROUTES)
    + len(routes.ASYNC_FUNCTIONS)
    + len(routes.SCHEDULED_FUNCTIONS)
    + len(routes.QUEUE_CONSUMERS)
)
# Thresholds in per cent that CloudWatch sees as the average of a 0/1 metric (a fraction).
FRACTION_ALARMS = {"api_5xx_rate", "function_error_rate"}


def _alarms(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Alarm properties by the setting named at the start of their description."""
    found: dict[str, list[dict[str, Any]]] = {}
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        match = re.match(r"openai-gateway (\w+):", alarm["Properties"].get("AlarmDescription", ""))
        assert match, alarm["Properties"].get("AlarmDescription")
        found.setdefault(match.group(1), []).append(alarm["Properties"])
    return found


def _topic_id(template: dict[str, Any]) -> str:
    (topic_id,) = resources_of(template, "AWS::SNS::Topic")
    return topic_id


def _dashboard_body(template: dict[str, Any]) -> str:
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, str):
        return body
    return "".join(part if isinstance(part, str) else json.dumps(part) for part in body["Fn::Join"][1])


def test_every_alarm_setting_has_its_alarms_with_threshold_and_the_topic_as_action(synth: Synth) -> None:
    alarms = _alarms(synth.api_json)
    topic = {"Ref": _topic_id(synth.api_json)}
    providers = len(synth.context["providers"])
    expected_counts = {
        "api_5xx_rate": 1,
        "provider_error_rate": providers,
        "watcher_stalled": 1,
        "invariant_violations": 1,
        "dead_letters": 1,
        "transfer_failures": 1,
        "transfer_failure_lost": len(routes.ASYNC_FUNCTIONS),
        "dynamodb_throttling": 2,  # reads and writes
        "function_error_rate": ROUTED_AND_UNROUTED,
    }
    assert set(expected_counts) == set(DEFAULT_ALARMS)
    assert {name: len(found) for name, found in alarms.items()} == expected_counts
    comparisons = {
        ">=": "GreaterThanOrEqualToThreshold",
        ">": "GreaterThanThreshold",
        "<": "LessThanThreshold",
    }
    for name, found in alarms.items():
        setting = DEFAULT_ALARMS[name]
        threshold = setting.threshold / 100 if name in FRACTION_ALARMS else setting.threshold
        for alarm in found:
            assert alarm["Threshold"] == threshold, name
            assert alarm["ComparisonOperator"] == comparisons[setting.comparison], name
            assert alarm["EvaluationPeriods"] == setting.evaluation_periods, name
            assert alarm["DatapointsToAlarm"] == setting.evaluation_periods, name
            assert alarm["ActionsEnabled"] is True and alarm["AlarmActions"] == [topic], name


def test_the_watcher_alarm_counts_passes_per_interval_and_silence_is_breaching(synth: Synth) -> None:
    (alarm,) = _alarms(synth.api_json)["watcher_stalled"]
    (metric,) = alarm["Metrics"]
    stat = metric["MetricStat"]
    assert stat["Metric"]["MetricName"] == metric_names.WATCHER_PASS_DURATION.name
    assert stat["Stat"] == "SampleCount"
    assert stat["Period"] == 60 * synth.context["watch_interval_minutes"]
    assert alarm["TreatMissingData"] == "breaching"


def test_any_invariant_violation_alarms_whatever_the_invariant(synth: Synth) -> None:
    (alarm,) = _alarms(synth.api_json)["invariant_violations"]
    (query,) = alarm["Metrics"]
    assert query["Expression"] == (
        'SELECT SUM(InvariantViolations) FROM SCHEMA("OpenAIGateway", invariant, service)'
    )
    assert query["Period"] == 300 and alarm["Threshold"] == 1


def test_a_provider_error_rate_counts_429_5xx_timeouts_and_unreachable_of_that_provider(synth: Synth) -> None:
    for alarm in _alarms(synth.api_json)["provider_error_rate"]:
        stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
        (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        outcomes = {
            metric_id: {d["Name"]: d["Value"] for d in metric["Dimensions"]}["outcome"]
            for metric_id, metric in stats.items()
        }
        providers = {
            {d["Name"]: d["Value"] for d in metric["Dimensions"]}["provider"] for metric in stats.values()
        }
        assert len(providers) == 1 and providers <= set(synth.context["providers"])
        numerator = expression.split("100 * ")[1].split(" / ")[0]
        errors = {outcomes[i] for i in re.findall(r"FILL\((\w+), 0\)", numerator)}
        assert errors == {"429", "5xx", "timeout", "unreachable"}
        # every outcome in the denominator, each filled: a rare outcome never hides a period
        assert set(re.findall(r"FILL\((\w+), 0\)", expression)) == set(outcomes)


def test_the_lost_transfer_alarms_watch_lambdas_own_metrics(synth: Synth) -> None:
    functions = functions_by_handler(synth.api_json)
    metrics = {
        alarm["MetricName"]: alarm["Dimensions"] for alarm in _alarms(synth.api_json)["transfer_failure_lost"]
    }
    by_name = {function.name: function for function in routes.ASYNC_FUNCTIONS}
    assert metrics == {
        "DestinationDeliveryFailures": [
            {"Name": "FunctionName", "Value": {"Ref": functions[by_name["file_transfer"].handler][0]}}
        ],
        "Errors": [
            {"Name": "FunctionName", "Value": {"Ref": functions[by_name["transfer_failed"].handler][0]}}
        ],
    }


def test_every_alarm_of_the_stack_notifies_the_topic(synth: Synth) -> None:
    topic = {"Ref": _topic_id(synth.api_json)}
    alarms = resources_of(synth.api_json, "AWS::CloudWatch::Alarm").values()
    assert alarms and all(alarm["Properties"]["AlarmActions"] == [topic] for alarm in alarms)


def test_the_topic_is_an_output_and_refuses_plain_http(synth: Synth) -> None:
    topic_id = _topic_id(synth.api_json)
    assert synth.api_json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    (policy,) = resources_of(synth.api_json, "AWS::SNS::TopicPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert "alarm_email" not in synth.context  # shipped without an address: no subscription
    assert resources_of(synth.api_json, "AWS::SNS::Subscription") == {}


def test_one_dashboard_with_a_section_per_question(synth: Synth) -> None:
    (dashboard,) = resources_of(synth.api_json, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == DASHBOARD_NAME
    assert synth.api_json["Outputs"]["DashboardName"]["Value"] == DASHBOARD_NAME
    body = _dashboard_body(synth.api_json)
    for title in (
        "API (API Gateway)",
        "Requests by route and status class",
        "Throttled: answers 429",
        "Throttles (Lambda concurrency)",
        "Errors",
        "Duration p99 (ms)",
        "Concurrent executions (max)",
        "Cold starts",
        *(f"Provider {provider}" for provider in synth.context["providers"]),
        "Calls by outcome",
        "Error rate (%)",
        "Finished by status",
        "Stuck: unfinished batches",
        "Cost settled per day",
        "Passes per interval",
        "Invariant violations",
        "Success rate (%)",
        "Queue and dead letters",
        "Transfers given up",
        "DynamoDB table",
        "Throttles",
    ):
        assert title in body, title


def test_answers_429_are_counted_from_the_access_log(synth: Synth) -> None:
    (stage,) = resources_of(synth.api_json, "AWS::ApiGateway::Stage").values()
    (access_logs,) = [
        part["Ref"]
        for part in stage["Properties"]["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
        if isinstance(part, dict) and "Ref" in part and "::" not in part["Ref"]
    ]
    (metric_filter,) = resources_of(synth.api_json, "AWS::Logs::MetricFilter").values()
    properties = metric_filter["Properties"]
    assert properties["LogGroupName"] == {"Ref": access_logs}
    assert properties["FilterPattern"] == '{ $.status = "429" }'
    (transformation,) = properties["MetricTransformations"]
    assert transformation == {
        "MetricNamespace": "OpenAIGateway",
        "MetricName": API_THROTTLED,
        "MetricValue": "1",
    }
    assert API_THROTTLED in _dashboard_body(synth.api_json)


def test_the_dashboard_draws_every_gateway_metric_and_every_function(synth: Synth) -> None:
    body = _dashboard_body(synth.api_json)
    for metric in metric_names.ALL:
        assert re.search(rf"\b{metric.name}\b", body), metric.name
    for function_id, _ in functions_by_handler(synth.api_json).values():
        assert json.dumps({"Ref": function_id}) in body, function_id
    # API Gateway's, Lambda's, SQS's and DynamoDB's own metrics too
    for namespace in ("AWS/ApiGateway", "AWS/Lambda", "AWS/SQS", "AWS/DynamoDB"):
        assert namespace in body, namespace


# -- overrides and the e-mail subscription, on a small stack of their own --------------------


def _monitoring_template(config: GatewayConfig) -> dict[str, Any]:
    app = cdk.App()
    stack = cdk.Stack(app, "Small")
    api = apigw.RestApi(stack, "Api", rest_api_name="openai-gateway")
    access_logs = logs.LogGroup(stack, "AccessLogs")
    api.root.add_method("GET", apigw.MockIntegration())
    functions = {
        name: lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context): pass"),
        )
        for name in ("health", *(function.name for function in routes.ASYNC_FUNCTIONS))
    }
    topic = AlarmTopic(stack, "Alarms", email=config.alarm_email)
    monitoring = GatewayMonitoring(
        stack,
        "Monitoring",
        api=api,
        access_logs=access_logs,
        functions=functions,
        events=GatewayEvents(stack, "Events"),
        table_name="table",
        config=config,
        topic=topic.topic,
    )
    return {
        "stack": Template.from_stack(stack).to_json(),
        "monitoring": Template.from_stack(monitoring).to_json(),
    }


def test_cdk_json_overrides_thresholds_and_evaluation_periods() -> None:
    config = GatewayConfig.from_mapping(
        {
            "alarms": json.dumps(
                {
                    "api_5xx_rate": {"threshold": 2, "evaluation_periods": 5},
                    "watcher_stalled": {"evaluation_periods": 2},
                    "dead_letters": {"threshold": 10, "period_minutes": 15},
                }
            ),
            "watch_interval_minutes": "5",
        }
    )
    alarms = _alarms(_monitoring_template(config)["monitoring"])
    (api,) = alarms["api_5xx_rate"]
    assert (api["Threshold"], api["EvaluationPeriods"], api["DatapointsToAlarm"]) == (0.02, 5, 5)
    (watcher,) = alarms["watcher_stalled"]
    assert watcher["EvaluationPeriods"] == 2 and watcher["Metrics"][0]["MetricStat"]["Period"] == 300
    (dead,) = alarms["dead_letters"]
    assert dead["Threshold"] == 10 and dead["Period"] == 900
    (invariants,) = alarms["invariant_violations"]  # not overridden: the default
    assert invariants["Threshold"] == DEFAULT_ALARMS["invariant_violations"].threshold


def test_alarm_email_subscribes_the_address() -> None:
    template = _monitoring_template(GatewayConfig(alarm_email="ops@example.com"))["stack"]
    (subscription,) = resources_of(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": _topic_id(template)}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alarms": {"api_500": {"threshold": 1}}}, "unknown alarm 'api_500'"),
        ({"alarms": {"api_5xx_rate": {"limit": 1}}}, "unknown fields"),
        ({"alarms": {"api_5xx_rate": {"threshold": -1}}}, "threshold must be >= 0"),
        ({"alarms": {"api_5xx_rate": {"threshold": "high"}}}, "must be a number"),
        ({"alarms": {"api_5xx_rate": {"evaluation_periods": 0}}}, "whole number in range"),
        ({"alarms": {"dead_letters": {"evaluation_periods": 3, "period_minutes": 1440}}}, "one day"),
        # the watcher's alarm evaluates 3 watch intervals by default
        ({"watch_interval_minutes": 720}, "one day"),
        ({"alarm_email": "not an address"}, "alarm_email must be an e-mail address"),
    ],
)
def test_bad_alarm_settings_stop_the_synth(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig.from_mapping(values)


def test_the_readme_runbook_covers_every_alarm() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    runbook = readme[readme.index("### Dashboard, alarms and runbook") :]
    for name in DEFAULT_ALARMS:
        assert re.search(rf"^\| `{name}`", runbook, re.MULTILINE), f"no runbook row for {name}"
