"""Batch events in the stack: the watcher's schedule, the event bus, the webhook delivery queue
with its dead-letter queue and alarm, the consumer's event source, and who finds what."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match
from gateway import routes
from gateway.runtime import resources

from tests.infra.conftest import Synth
from tests.infra.template_tools import functions_by_handler, resources_of

(WATCHER,) = routes.SCHEDULED_FUNCTIONS
(CONSUMER,) = routes.QUEUE_CONSUMERS


def _function(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    return functions_by_handler(synth.api_json)[handler]


def _one(synth: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources_of(synth.api_json, resource_type).items()
    return logical_id, resource["Properties"]


def _queues(synth: Synth) -> dict[str, dict[str, Any]]:
    queues = resources_of(synth.api_json, "AWS::SQS::Queue")
    return {
        ("dead" if "DeadLetters" in logical_id else "deliveries"): {"id": logical_id, **queue["Properties"]}
        for logical_id, queue in queues.items()
    }


def test_the_watcher_runs_every_minute_from_cdk_json(synth: Synth) -> None:
    assert synth.context["watch_interval_minutes"] == 1
    watcher_id, _ = _function(synth, WATCHER.handler)
    _, schedule = _one(synth, "AWS::Scheduler::Schedule")
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule.get("State", "ENABLED") == "ENABLED"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [watcher_id, "Arn"]}
    role_id = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = synth.api_json["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    ((policy),) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "lambda:InvokeFunction",
        {"Fn::GetAtt": [watcher_id, "Arn"]},  # that function only, no `:*` versions
    )


def test_the_bus_exists_and_publishers_find_it(synth: Synth) -> None:
    bus_id, _ = _one(synth, "AWS::Events::EventBus")
    for name in ("batches_retrieve", "batches_list", "batches_cancel", "batch_watcher"):
        handler = f"handlers.{name}.handler"
        env = _function(synth, handler)[1]["Environment"]["Variables"]
        assert env[resources.ENV_EVENT_BUS_NAME] == {"Ref": bus_id}, name
        assert resources.ENV_WEBHOOK_QUEUE_URL in env, name
    assert resources.ENV_EVENT_BUS_NAME not in _function(synth, "handlers.files_list.handler")[1].get(
        "Environment", {}
    ).get("Variables", {})


def test_the_delivery_queue_redrives_to_an_encrypted_dead_letter_queue_with_an_alarm(synth: Synth) -> None:
    queues = _queues(synth)
    deliveries, dead = queues["deliveries"], queues["dead"]
    assert deliveries["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead["id"], "Arn"]},
        "maxReceiveCount": CONSUMER.max_receive_count,
    }
    assert deliveries["VisibilityTimeout"] > CONSUMER.timeout_seconds
    for queue in (deliveries, dead):
        assert queue["SqsManagedSseEnabled"] is True
    synth.api.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead["id"], "QueueName"]}}],
            "Threshold": 1,
        },
    )
    consumer_env = _function(synth, CONSUMER.handler)[1]["Environment"]["Variables"]
    assert consumer_env[CONSUMER.queue_url_env] == {"Ref": deliveries["id"]}
    assert consumer_env[CONSUMER.dead_letter_url_env] == {"Ref": dead["id"]}


def test_the_consumer_reads_the_queue_reporting_partial_failures(synth: Synth) -> None:
    consumer_id, consumer = _function(synth, CONSUMER.handler)
    assert consumer["Timeout"] == CONSUMER.timeout_seconds
    synth.api.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": consumer_id},
            "EventSourceArn": {"Fn::GetAtt": [_queues(synth)["deliveries"]["id"], "Arn"]},
            "BatchSize": CONSUMER.batch_size,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    synth.api.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    # only SSL: cdk-nag's SQS4, both queues
    synth.api.resource_properties_count_is(
        "AWS::SQS::QueuePolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Effect": "Deny"})])}},
        2,
    )
