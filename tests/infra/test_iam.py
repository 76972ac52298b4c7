"""Least privilege: each function's role allows exactly what its route's grants imply."""

from __future__ import annotations

from typing import Any

import pytest
from gateway import routes
from gateway.runtime import resources

from infra import DATA_STACK_NAME
from tests.infra.conftest import Synth
from tests.infra.template_tools import (
    actions_of,
    as_list,
    functions_by_handler,
    import_value,
    joined,
    resources_by_action,
    resources_of,
    role_id_of,
    statements_of_role,
)

# Written out independently of infra/functions.py, so that a change there shows up here.
EXPECTED_ACTIONS: dict[str, set[str]] = {
    routes.TABLE_GET: {"dynamodb:GetItem"},
    routes.TABLE_PUT: {"dynamodb:PutItem"},
    routes.TABLE_UPDATE: {"dynamodb:UpdateItem"},
    routes.TABLE_DELETE: {"dynamodb:DeleteItem"},
    routes.TABLE_BATCH_WRITE: {"dynamodb:BatchWriteItem"},
    routes.TABLE_BATCH_GET: {"dynamodb:BatchGetItem"},
    routes.TABLE_QUERY_BY_OWNER: {"dynamodb:Query"},
    routes.TABLE_QUERY_BY_KIND: {"dynamodb:Query"},
    routes.TABLE_QUERY_BY_WATCH: {"dynamodb:Query"},
    routes.TABLE_KEY_ITEMS: set(),
    routes.TABLE_IDEMPOTENCY: {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    },
    routes.SECRET_MASTER_KEY: {"secretsmanager:GetSecretValue"},
    routes.SECRET_PROVIDER_KEYS: {"secretsmanager:GetSecretValue"},
    routes.SECRET_KEY_PEPPER: {"secretsmanager:GetSecretValue"},
    routes.BUCKET_READ: {"s3:GetObject"},
    routes.BUCKET_LIST: {"s3:ListBucket"},
    routes.BUCKET_WRITE: {"s3:PutObject"},
    routes.BUCKET_ABORT_UPLOAD: {"s3:AbortMultipartUpload"},
    routes.BUCKET_DELETE: {"s3:DeleteObject"},
    routes.KEPT_READ: {"s3:GetObject"},
    routes.KEPT_LIST: {"s3:ListBucket"},
    routes.KEPT_WRITE: {"s3:PutObject"},
    routes.KEPT_ABORT_UPLOAD: {"s3:AbortMultipartUpload"},
    routes.KEPT_DELETE: {"s3:DeleteObject"},
    routes.PLAN_FILES_READ: {"s3:GetObject"},
    routes.PLAN_FILES_WRITE: {"s3:PutObject"},
    routes.INVOKE_TRANSFER: {"lambda:InvokeFunction"},
    routes.INVOKE_WATCHER: {"lambda:InvokeFunction"},
    routes.INVOKE_TRANSFER_FAILED: {"lambda:InvokeFunction"},
    routes.EVENTS_PUT: {"events:PutEvents"},
    routes.QUEUE_WEBHOOKS_SEND: {"sqs:SendMessage"},
    routes.QUEUE_WEBHOOKS_DLQ_SEND: {"sqs:SendMessage"},
    # the shipped cdk.json has a bedrock deployment (tests/infra/test_bedrock.py: the resources)
    routes.BEDROCK_CREATE_JOB: {"bedrock:CreateModelInvocationJob", "bedrock:TagResource", "iam:PassRole"},
    routes.BEDROCK_GET_JOB: {"bedrock:GetModelInvocationJob"},
    routes.BEDROCK_LIST_JOBS: {"bedrock:ListModelInvocationJobs"},
    routes.BEDROCK_STOP_JOB: {"bedrock:StopModelInvocationJob"},
    routes.BEDROCK_RECORDS_WRITE: {"s3:PutObject"},
    routes.BEDROCK_RESULTS_READ: {"s3:GetObject"},
}
# What a queue consumer's event source mapping (Lambda's poller, with the function's role) needs
# on its queue: granted by the SqsEventSource, used by no code of the function.
POLLER_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
CONSUMERS = {consumer.name for consumer in routes.QUEUE_CONSUMERS}
INDEX_BY_CAPABILITY = {
    routes.TABLE_QUERY_BY_OWNER: resources.INDEX_BY_OWNER,
    routes.TABLE_QUERY_BY_KIND: resources.INDEX_BY_KIND,
    routes.TABLE_QUERY_BY_WATCH: resources.INDEX_BY_WATCH,
}
ALWAYS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SECRET_EXPORTS = {
    routes.SECRET_MASTER_KEY: f"{DATA_STACK_NAME}-MasterKeySecretArn",
    routes.SECRET_PROVIDER_KEYS: f"{DATA_STACK_NAME}-ProviderKeysSecretArn",
    routes.SECRET_KEY_PEPPER: f"{DATA_STACK_NAME}-KeyPepperSecretArn",
}
TABLE_ARN = import_value(f"{DATA_STACK_NAME}-TableArn")
BUCKET_ARN = import_value(f"{DATA_STACK_NAME}-BucketArn")
# Each function with bucket access reaches one prefix: cached content or upload parts, never both.
CACHED, PARTS = (resources.CACHED_CONTENT_PREFIX,), (resources.UPLOAD_PARTS_PREFIX,)
BUCKET_PREFIXES_BY_FUNCTION: dict[str, tuple[str, ...]] = {
    "files_content": CACHED,
    "files_delete": CACHED,
    "uploads_add_part": PARTS,
    "uploads_complete": PARTS,
    "uploads_cancel": PARTS,
    "file_transfer": PARTS,
    "transfer_failed": PARTS,
    "batch_watcher": (*PARTS, resources.PLAN_FILES_PREFIX),  # a plan's files: listed, deleted
}


KEPT_ARN = joined(BUCKET_ARN, f"/{resources.KEPT_FILES_PREFIX}*")


QUEUE_GRANTS = {
    routes.QUEUE_WEBHOOKS_SEND: "WebhookDeliveries",
    routes.QUEUE_WEBHOOKS_DLQ_SEND: "WebhookDeadLetters",
}


def queue_of(grant: str) -> str:
    return QUEUE_GRANTS[grant]


def prefixes_of(name: str) -> tuple[str, ...]:
    return BUCKET_PREFIXES_BY_FUNCTION.get(name, ())


def object_arns(name: str, action: str | None = None) -> list[dict[str, Any]]:
    """The object ARNs `action` reaches for function `name`: its own prefixes through the bucket:
    capabilities, the kept files' prefix through the kept: ones."""
    grants = SPECS[name]
    arns = []
    if action is None or any(action in EXPECTED_ACTIONS[g] for g in grants if g.startswith("bucket:")):
        arns += [joined(BUCKET_ARN, f"/{prefix}*") for prefix in prefixes_of(name)]
    if action is not None and any(action in EXPECTED_ACTIONS[g] for g in grants if g.startswith("kept:")):
        arns.append(KEPT_ARN)
    if action is not None and any(
        action in EXPECTED_ACTIONS[g] for g in grants if g.startswith("plan-files:")
    ):
        arns.append(joined(BUCKET_ARN, f"/{resources.PLAN_FILES_PREFIX}*"))
    # the Bedrock jobs' records (written by a create) and results (read once a job is over)
    if action == "s3:PutObject" and routes.BEDROCK_RECORDS_WRITE in grants:
        arns.append(joined(BUCKET_ARN, f"/{resources.BEDROCK_INPUT_PREFIX}*"))
    if action == "s3:GetObject" and routes.BEDROCK_RESULTS_READ in grants:
        arns.append(joined(BUCKET_ARN, f"/{resources.BEDROCK_OUTPUT_PREFIX}*"))
    return arns


_OTHERS = (*routes.ASYNC_FUNCTIONS, *routes.SCHEDULED_FUNCTIONS, *routes.QUEUE_CONSUMERS)
SPECS: dict[str, frozenset[str]] = {
    **{route.name: route.grants for route in routes.ROUTES},
    **{function.name: function.permissions for function in _OTHERS},
}
HANDLERS = {
    **{route.name: route.handler for route in routes.ROUTES},
    **{function.name: function.handler for function in _OTHERS},
}


def statements_for(synth: Synth, name: str) -> list[dict[str, Any]]:
    _, properties = functions_by_handler(synth.api_json)[HANDLERS[name]]
    return statements_of_role(synth.api_json, role_id_of(properties))


def test_every_capability_in_the_route_table_is_known_here() -> None:
    used = {grant for grants in SPECS.values() for grant in grants}
    assert used <= set(EXPECTED_ACTIONS)


def test_each_function_has_its_own_role(synth: Synth) -> None:
    roles = [role_id_of(p) for _, p in functions_by_handler(synth.api_json).values()]
    assert len(set(roles)) == len(roles) == len(SPECS)
    for role_id in roles:
        trust = synth.api_json["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_actions_are_exactly_those_implied_by_the_grants(synth: Synth, name: str) -> None:
    expected = set(ALWAYS) | (POLLER_ACTIONS if name in CONSUMERS else set())
    for grant in SPECS[name]:
        expected |= EXPECTED_ACTIONS[grant]
    assert actions_of(statements_for(synth, name)) == expected


@pytest.mark.parametrize("name", sorted(SPECS))
def test_resources_are_scoped(synth: Synth, name: str) -> None:
    grants = SPECS[name]
    functions = functions_by_handler(synth.api_json)
    by_action = resources_by_action(statements_for(synth, name))
    for action, targets in by_action.items():
        if action.startswith("xray:") or action == "bedrock:ListModelInvocationJobs":
            assert targets == ["*"]  # no resource-level permissions
            continue
        assert "*" not in targets, action
        if action.startswith("logs:"):
            _, properties = functions[HANDLERS[name]]
            assert targets == [{"Fn::GetAtt": [properties["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}]
        elif action == "secretsmanager:GetSecretValue":
            granted = {SECRET_EXPORTS[grant] for grant in grants if grant in SECRET_EXPORTS}
            assert sorted(t["Fn::ImportValue"] for t in targets) == sorted(granted)
        elif action == "dynamodb:Query":  # indexes only, never the table itself
            indexes = sorted(INDEX_BY_CAPABILITY[grant] for grant in grants if grant in INDEX_BY_CAPABILITY)
            assert targets == [joined(TABLE_ARN, f"/index/{index}") for index in indexes]
        elif action.startswith("dynamodb:"):
            assert set(map(str, targets)) == {str(TABLE_ARN)}, action
        elif action == "s3:ListBucket":
            assert targets and all(target == BUCKET_ARN for target in targets)
        elif action.startswith("s3:"):
            assert sorted(map(str, targets)) == sorted(map(str, object_arns(name, action))), action
        elif action.startswith(("bedrock:", "iam:")):
            continue  # tests/infra/test_bedrock.py
        elif action == "lambda:InvokeFunction":
            invoked = [g.removeprefix("invoke:") for g in grants if g.startswith("invoke:")]
            assert targets == [
                {"Fn::GetAtt": [functions[f"handlers.{target}.handler"][0], "Arn"]} for target in invoked
            ]
        elif action == "events:PutEvents":
            ((bus_id, attribute),) = [t["Fn::GetAtt"] for t in targets]
            assert attribute == "Arn"
            assert synth.api_json["Resources"][bus_id]["Type"] == "AWS::Events::EventBus"
        elif action.startswith("sqs:"):
            queues = {synth.api_json["Resources"][t["Fn::GetAtt"][0]]["Type"] for t in targets}
            assert queues == {"AWS::SQS::Queue"}, action
            expected_queues = {queue_of(grant) for grant in grants if grant in QUEUE_GRANTS}
            if action in POLLER_ACTIONS:
                assert name in CONSUMERS
                expected_queues = {"WebhookDeliveries"}
            assert {t["Fn::GetAtt"][0].split("Events", 1)[1][:-8] for t in targets} == expected_queues
        else:
            pytest.fail(f"unexpected action {action}")


def test_list_bucket_is_limited_to_the_gateway_prefixes(synth: Synth) -> None:
    checked = 0
    for name, grants in SPECS.items():
        for statement in statements_for(synth, name):
            if "s3:ListBucket" in as_list(statement["Action"]):
                kept = {"StringLike": {"s3:prefix": [resources.KEPT_FILES_PREFIX + "*"]}}
                if statement["Condition"] == kept:
                    assert routes.KEPT_LIST in grants
                else:
                    assert statement["Condition"] == {
                        "StringLike": {"s3:prefix": [prefix + "*" for prefix in prefixes_of(name)]}
                    }
                    assert routes.BUCKET_LIST in grants
                checked += 1
    assert checked > 0


def test_files_content_caches_and_presigns_under_file_content_only(synth: Synth) -> None:
    """It streams big content into file-content/ (PutObject covers the multipart calls), finds it
    again (GetObject for HeadObject; ListBucket so that a miss is a 404, not a 403) and presigns
    GETs signed with its own role; it never touches upload parts and never deletes."""
    by_action = resources_by_action(statements_for(synth, "files_content"))
    cached = [joined(BUCKET_ARN, f"/{resources.CACHED_CONTENT_PREFIX}*")]
    for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
        assert by_action[action] == cached, action
    assert sorted(map(str, by_action["s3:GetObject"])) == sorted(
        map(str, [*cached, KEPT_ARN])
    )  # + kept files
    assert by_action["s3:ListBucket"] == [BUCKET_ARN]
    assert "s3:DeleteObject" not in by_action
    assert not {action for action in by_action if action.startswith("dynamodb:")} - {"dynamodb:GetItem"}
    s3_targets = [targets for action, targets in by_action.items() if action.startswith("s3:")]
    assert resources.UPLOAD_PARTS_PREFIX not in str(s3_targets)


def test_only_the_listed_functions_reach_the_bucket(synth: Synth) -> None:
    with_bucket = {
        name
        for name in SPECS
        if any(action.startswith("s3:") for action in actions_of(statements_for(synth, name)))
    }
    kept = {name for name, grants in SPECS.items() if any(g.startswith("kept:") for g in grants)}
    assert with_bucket == set(BUCKET_PREFIXES_BY_FUNCTION) | kept


def test_functions_that_only_read_or_only_delete_write_nothing_else(synth: Synth) -> None:
    """files_content writes nothing; files_delete only deletes; keys_delete never puts or updates."""
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"}
    assert not actions_of(statements_for(synth, "files_content")) & writes
    assert actions_of(statements_for(synth, "files_delete")) & writes == {"dynamodb:DeleteItem"}
    assert actions_of(statements_for(synth, "keys_delete")) & writes == {"dynamodb:DeleteItem"}
    assert not actions_of(statements_for(synth, "files_list")) & writes
    assert not actions_of(statements_for(synth, "keys_list")) & writes


def test_the_retrieve_function_cannot_delete(synth: Synth) -> None:
    actions = actions_of(statements_for(synth, "files_retrieve"))
    assert "dynamodb:GetItem" in actions
    assert not {"dynamodb:DeleteItem", "s3:DeleteObject"} & actions
    assert "dynamodb:DeleteItem" in actions_of(statements_for(synth, "files_delete"))


def test_files_list_cannot_read_the_provider_keys(synth: Synth) -> None:
    secrets = resources_by_action(statements_for(synth, "files_list"))["secretsmanager:GetSecretValue"]
    assert import_value(SECRET_EXPORTS[routes.SECRET_PROVIDER_KEYS]) not in secrets
    assert import_value(SECRET_EXPORTS[routes.SECRET_MASTER_KEY]) in secrets


def test_only_the_functions_that_record_batch_changes_publish_events(synth: Synth) -> None:
    publishers = {name for name in SPECS if "events:PutEvents" in actions_of(statements_for(synth, name))}
    assert publishers == {"batches_retrieve", "batches_list", "batches_cancel", "batch_watcher"}
    dead_letterers = {
        name
        for name in SPECS
        if any(
            "WebhookDeadLetters" in str(targets)
            for action, targets in resources_by_action(statements_for(synth, name)).items()
            if action == "sqs:SendMessage"
        )
    }
    assert dead_letterers == {"webhook_deliver"}


def test_health_has_no_data_access(synth: Synth) -> None:
    assert actions_of(statements_for(synth, "health")) == ALWAYS


def test_the_console_has_no_data_access(synth: Synth) -> None:
    """It serves static files; the page reaches data only through the API, with a person's key."""
    assert actions_of(statements_for(synth, "console")) == ALWAYS


def test_only_uploads_complete_can_invoke_the_transfer_function(synth: Synth) -> None:
    """(and file_transfer its on-failure destination: Lambda invokes it with that role; and
    batches_create the watcher, for a planned batch's start: tests/infra/test_functions.py)"""
    invokers = {name for name in SPECS if "lambda:InvokeFunction" in actions_of(statements_for(synth, name))}
    assert invokers == {"uploads_complete", "file_transfer", "batches_create"}


def test_api_gateway_may_invoke_each_route_function_once_and_never_the_transfer_function(
    synth: Synth,
) -> None:
    functions = functions_by_handler(synth.api_json)
    permissions = resources_of(synth.api_json, "AWS::Lambda::Permission").values()
    targets = [p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in permissions]
    assert sorted(targets) == sorted(functions[route.handler][0] for route in routes.ROUTES)
    (api_id,) = resources_of(synth.api_json, "AWS::ApiGateway::RestApi")
    for permission in permissions:
        properties = permission["Properties"]
        assert properties["Principal"] == "apigateway.amazonaws.com"
        source = properties["SourceArn"]["Fn::Join"][1]
        assert {"Ref": api_id} in source
