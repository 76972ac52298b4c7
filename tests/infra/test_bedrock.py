"""Amazon Bedrock batch inference in the stack: the service role Bedrock assumes holds only its
grants (read the input prefix, write the output prefix, invoke the configured models), and the
functions that call Bedrock may pass that role, to Bedrock only, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from gateway import routes
from gateway.runtime import resources

from infra import DATA_STACK_NAME
from infra.config import ConfigError, GatewayConfig
from infra.stack import build
from tests.infra.conftest import Synth, cdk_context
from tests.infra.template_tools import (
    actions_of,
    as_list,
    functions_by_handler,
    import_value,
    joined,
    resources_of,
    role_id_of,
    statements_of_role,
)

BUCKET_ARN = import_value(f"{DATA_STACK_NAME}-BucketArn")
BEDROCK_ACTIONS = {
    routes.BEDROCK_CREATE_JOB: {"bedrock:CreateModelInvocationJob", "bedrock:TagResource", "iam:PassRole"},
    routes.BEDROCK_GET_JOB: {"bedrock:GetModelInvocationJob"},
    routes.BEDROCK_LIST_JOBS: {"bedrock:ListModelInvocationJobs"},
    routes.BEDROCK_STOP_JOB: {"bedrock:StopModelInvocationJob"},
}


def _bedrock_role(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    roles = {
        logical_id: resource
        for logical_id, resource in resources_of(template, "AWS::IAM::Role").items()
        if any(
            s["Principal"] == {"Service": "bedrock.amazonaws.com"}
            for s in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        )
    }
    assert len(roles) == 1, roles
    return next(iter(roles.items()))


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_only_bedrock_of_this_account_may_assume_the_role(synth: Synth) -> None:
    _, role = _bedrock_role(synth.api_json)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole" and trust["Effect"] == "Allow"
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "model-invocation-job/*" in _render(trust["Condition"]["ArnLike"]["aws:SourceArn"])


def test_the_role_reads_input_writes_output_and_invokes_the_configured_models_only(synth: Synth) -> None:
    role_id, _ = _bedrock_role(synth.api_json)
    statements = statements_of_role(synth.api_json, role_id)
    by_action = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            by_action[action] = (as_list(statement["Resource"]), statement.get("Condition"))
    assert set(by_action) == {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "bedrock:InvokeModel"}
    assert by_action["s3:GetObject"] == ([joined(BUCKET_ARN, f"/{resources.BEDROCK_INPUT_PREFIX}*")], None)
    assert by_action["s3:PutObject"] == ([joined(BUCKET_ARN, f"/{resources.BEDROCK_OUTPUT_PREFIX}*")], None)
    assert by_action["s3:ListBucket"] == (
        [BUCKET_ARN],
        {
            "StringLike": {
                "s3:prefix": [f"{resources.BEDROCK_INPUT_PREFIX}*", f"{resources.BEDROCK_OUTPUT_PREFIX}*"]
            }
        },
    )
    models, _ = by_action["bedrock:InvokeModel"]
    rendered = _render(models)
    configured = synth.context["providers"]["bedrock"]["models"].values()
    assert len(models) == 3  # a foundation model; a profile and its model in the regions it routes to
    for model_id in configured:
        assert model_id in rendered
    assert "foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0" in rendered
    assert "inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0" in rendered
    assert "bedrock:*::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0" in rendered
    assert all("*" not in _render(m).replace("bedrock:*::", "") for m in models)  # no wildcard model


# Every function by name (routes, and the watcher that runs planned batches' parts) with its grants.
_GRANTS: dict[str, tuple[str, frozenset[str]]] = {
    **{route.name: (route.handler, route.grants) for route in routes.ROUTES},
    **{function.name: (function.handler, function.permissions) for function in routes.SCHEDULED_FUNCTIONS},
}


def _statements_of(synth: Synth, name: str) -> list[dict[str, Any]]:
    handler, _ = _GRANTS[name]
    _, properties = functions_by_handler(synth.api_json)[handler]
    return statements_of_role(synth.api_json, role_id_of(properties))


# ids by name: a Route's repr shows frozensets, whose order changes with each process's hash seed
# (and pytest-xdist's workers must collect the same ids)
@pytest.mark.parametrize(
    "name", sorted(name for name, (_, grants) in _GRANTS.items() if grants & set(BEDROCK_ACTIONS))
)
def test_functions_get_exactly_their_bedrock_actions(synth: Synth, name: str) -> None:
    _, grants = _GRANTS[name]
    expected = set().union(*(BEDROCK_ACTIONS[g] for g in grants if g in BEDROCK_ACTIONS))
    granted = {a for a in actions_of(_statements_of(synth, name)) if a.startswith(("bedrock:", "iam:"))}
    assert granted == expected


def test_the_watcher_may_run_a_planned_batchs_jobs() -> None:
    """The watcher submits a planned batch's parts as jobs and stops them on cancel."""
    _, grants = _GRANTS["batch_watcher"]
    assert {routes.BEDROCK_CREATE_JOB, routes.BEDROCK_RECORDS_WRITE, routes.BEDROCK_STOP_JOB} <= grants


def test_functions_may_pass_the_bedrock_role_to_bedrock_and_nothing_else(synth: Synth) -> None:
    role_id, _ = _bedrock_role(synth.api_json)
    passers = []
    for _, properties in functions_by_handler(synth.api_json).values():
        for statement in statements_of_role(synth.api_json, role_id_of(properties)):
            if "iam:PassRole" in as_list(statement["Action"]):
                assert as_list(statement["Action"]) == ["iam:PassRole"]
                assert statement["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
                assert statement["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
                }
                passers.append(properties["Handler"])
    # a create, and the watcher submitting a planned batch's parts
    assert sorted(passers) == sorted([routes.route("batches_create").handler, _GRANTS["batch_watcher"][0]])


def test_job_actions_name_the_gateways_jobs_and_the_list_is_the_only_wildcard(synth: Synth) -> None:
    role_id, _ = _bedrock_role(synth.api_json)
    (invoke,) = [
        s for s in statements_of_role(synth.api_json, role_id) if s["Action"] == "bedrock:InvokeModel"
    ]
    models = sorted(map(_render, as_list(invoke["Resource"])))
    checked = 0
    for name in _GRANTS:
        for statement in _statements_of(synth, name):
            actions = as_list(statement["Action"])
            if not any(a.startswith("bedrock:") for a in actions):
                continue
            checked += 1
            targets = [_render(t) for t in as_list(statement["Resource"])]
            if "bedrock:ListModelInvocationJobs" in actions:
                assert targets == ['"*"']  # no resource-level permissions for lists
                # (merged with X-Ray's, the other actions without a resource scope)
                assert {a for a in actions if not a.startswith("xray:")} == {
                    "bedrock:ListModelInvocationJobs"
                }
                continue
            jobs = [t for t in targets if t not in models]
            assert jobs and all(t.endswith(':model-invocation-job/*"]]}') for t in jobs), jobs
            if "bedrock:CreateModelInvocationJob" in actions:
                assert sorted(t for t in targets if t in models) == models  # the configured models
            else:
                assert jobs == targets
    assert checked >= 5


def test_the_functions_name_the_role_in_their_environment(synth: Synth) -> None:
    role_id, _ = _bedrock_role(synth.api_json)
    for _, properties in functions_by_handler(synth.api_json).values():
        variables = properties["Environment"]["Variables"]
        assert variables[resources.ENV_BEDROCK_ROLE_ARN] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_without_a_bedrock_deployment_there_is_no_role_and_no_grant(tmp_path: Path) -> None:
    context = {
        **cdk_context(),
        "providers": {"openai": {"type": "openai", "api_base": "https://api.openai.com/v1"}},
    }
    app = cdk.App(outdir=str(tmp_path), context=context)
    api = Template.from_stack(build(app, nag=False).api).to_json()
    assert not [
        r
        for r in resources_of(api, "AWS::IAM::Role").values()
        if "bedrock.amazonaws.com" in _render(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert "bedrock:" not in _render(resources_of(api, "AWS::IAM::Policy"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "bedrock"}, "list the Bedrock models"),
        ({"type": "bedrock", "models": {"a": "not a model"}}, "is not a Bedrock model id"),
        (
            {"type": "bedrock", "region": "mars-1", "models": {"a": "anthropic.claude-v2"}},
            "not an AWS region",
        ),
    ],
)
def test_bedrock_settings_are_checked(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig(providers={"bedrock": spec}, default_provider="bedrock")
    ok = {
        "type": "bedrock",
        "region": "eu-west-1",
        "models": {"haiku": "anthropic.claude-3-haiku-20240307-v1:0"},
    }
    assert GatewayConfig(providers={"bedrock": ok}, default_provider="bedrock").providers["bedrock"] == ok
