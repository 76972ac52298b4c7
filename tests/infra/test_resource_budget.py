"""Room to grow: every template (the two stacks and each nested stack) holds at most 60 % of
CloudFormation's 500 resources, and `python -m infra.resource_count` (make synth) says so."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Template
from gateway import routes

from infra.api import ApiPaths, paths_by_prefix, prefix_construct_id
from infra.resource_count import RESOURCE_BUDGET, main, over_budget, template_counts
from tests.infra.conftest import Synth


def test_every_template_is_within_the_budget(synth: Synth) -> None:
    counts = {name: len(template.get("Resources", {})) for name, template in synth.templates.items()}
    assert RESOURCE_BUDGET == 300
    assert over_budget(counts) == {}, counts
    assert template_counts(synth.outdir) == counts  # what make synth prints covers them all


def test_the_api_paths_live_in_a_nested_stack_per_prefix(synth: Synth) -> None:
    groups = paths_by_prefix()
    assert set(groups) == {"", *routes.PREFIXES}
    nested = {name for name in synth.templates if name.endswith(".nested.template.json")}
    for prefix in groups:
        assert any(prefix_construct_id(prefix) in name for name in nested), prefix
    served = {path for entries in groups.values() for _, path in entries}
    assert served == {path for route in routes.ROUTES for path in route.paths}
    parent = synth.templates[f"{synth.gateway.api.stack_name}.template.json"]["Resources"]
    parent_paths = [r for r in parent.values() if r["Type"] == "AWS::ApiGateway::Resource"]
    methods = [r for r in parent.values() if r["Type"] == "AWS::ApiGateway::Method"]
    # The API stack keeps the prefixes' own resources only: a new route adds nothing to it.
    prefix_paths = {path for prefix in routes.PREFIXES for path in _ancestors(prefix)}
    assert methods == [] and len(parent_paths) == len(prefix_paths)


def _ancestors(prefix: str) -> list[str]:
    parts = [part for part in prefix.split("/") if part]
    return ["/".join(parts[: depth + 1]) for depth in range(len(parts))]


def test_the_count_command_fails_above_the_budget(tmp_path: Path) -> None:
    resources = {f"Topic{index}": {"Type": "AWS::SNS::Topic"} for index in range(RESOURCE_BUDGET + 1)}
    (tmp_path / "Big.template.json").write_text(json.dumps({"Resources": resources}))
    (tmp_path / "Small.nested.template.json").write_text(json.dumps({"Resources": {}}))
    assert main([str(tmp_path)]) == 1
    (tmp_path / "Big.template.json").write_text(json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}))
    assert main([str(tmp_path)]) == 0


def _deployment_id(status_code: str) -> str:
    app = cdk.App()
    stack = cdk.Stack(app, "Small")
    api = apigw.RestApi(stack, "Api")
    paths = ApiPaths(stack, prefix_construct_id("/v1"), prefix="/v1")
    files = apigw.Resource(paths, "files", parent=api.root, path_part="files")
    files.add_method(
        "GET",
        apigw.MockIntegration(integration_responses=[apigw.IntegrationResponse(status_code=status_code)]),
    )
    template = Template.from_stack(stack).to_json()
    (deployment,) = [
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::Deployment"
    ]
    return deployment


def test_a_change_in_a_nested_stacks_method_redeploys_the_stage() -> None:
    """The stage's deployment is named after every method, nested ones included: a changed path
    in a nested stack makes a new deployment, as it did in one template."""
    assert _deployment_id("200") != _deployment_id("201")
