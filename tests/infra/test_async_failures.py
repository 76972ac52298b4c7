"""A transfer Lambda gives up on is not lost: its record goes to transfer_failed, whose own
failures (and any record Lambda cannot hand over) raise an alarm."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match
from gateway import routes

from tests.infra.conftest import Synth
from tests.infra.template_tools import functions_by_handler, resources_of

ASYNC = {function.name: function for function in routes.ASYNC_FUNCTIONS}


def _invoke_configs(synth: Synth) -> dict[str, dict[str, Any]]:
    """EventInvokeConfig properties by the function (name) they configure."""
    functions = functions_by_handler(synth.api_json)
    ids = {functions[f.handler][0]: name for name, f in ASYNC.items()}
    configs = resources_of(synth.api_json, "AWS::Lambda::EventInvokeConfig").values()
    return {ids[c["Properties"]["FunctionName"]["Ref"]]: c["Properties"] for c in configs}


def test_the_transfer_hands_a_failed_event_to_transfer_failed(synth: Synth) -> None:
    failed_id, _ = functions_by_handler(synth.api_json)[ASYNC["transfer_failed"].handler]
    config = _invoke_configs(synth)["file_transfer"]
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [failed_id, "Arn"]}}}
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 3600
    assert config["Qualifier"] == "$LATEST"


def test_the_config_waits_for_the_role_that_may_invoke_the_destination(synth: Synth) -> None:
    """Lambda refuses an on-failure destination the function's role cannot invoke yet: the grant
    is in the role itself (its inline policies), and the config waits for the role."""
    failed_id, _ = functions_by_handler(synth.api_json)[ASYNC["transfer_failed"].handler]
    _, properties = functions_by_handler(synth.api_json)[ASYNC["file_transfer"].handler]
    role_id = properties["Role"]["Fn::GetAtt"][0]
    (config,) = [
        resource
        for resource in resources_of(synth.api_json, "AWS::Lambda::EventInvokeConfig").values()
        if "DestinationConfig" in resource["Properties"]
    ]
    role = resources_of(synth.api_json, "AWS::IAM::Role")[role_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    invokes = [
        statement
        for statement in statements
        if "lambda:InvokeFunction" in _listed(statement["Action"])
        and {"Fn::GetAtt": [failed_id, "Arn"]} in _listed(statement["Resource"])
    ]
    assert invokes and role_id in config["DependsOn"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_async_function_has_its_retries_and_event_age_from_the_route_table(synth: Synth) -> None:
    configs = _invoke_configs(synth)
    assert set(configs) == set(ASYNC)
    for name, function in ASYNC.items():
        assert configs[name]["MaximumRetryAttempts"] == function.retry_attempts, name
        assert configs[name]["MaximumEventAgeInSeconds"] == function.max_event_age_seconds, name
    assert "DestinationConfig" not in configs["transfer_failed"]


def test_a_lost_failure_record_raises_an_alarm(synth: Synth) -> None:
    functions = functions_by_handler(synth.api_json)
    for name, metric in (("file_transfer", "DestinationDeliveryFailures"), ("transfer_failed", "Errors")):
        function_id, _ = functions[ASYNC[name].handler]
        synth.api.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/Lambda",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmDescription": Match.string_like_regexp(name),
            },
        )
