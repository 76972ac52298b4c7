"""SnapStart, an option (`snapstart` in cdk.json, off by default because it is billed).

On: every route function publishes versions with SnapStart, an alias points at the current one,
and API Gateway invokes the alias (SnapStart never applies to $LATEST). Off: no version, no
alias, the API invokes the functions. The session synth (cdk.json: off) shows the default; one
more synth, without cdk-nag, of the same app with the option on shows the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from gateway import routes

from infra.config import ConfigError, GatewayConfig
from infra.functions import SNAPSTART_ALIAS
from infra.resource_count import over_budget, template_counts
from infra.stack import build
from tests.infra.conftest import Synth, cdk_context
from tests.infra.template_tools import as_list, flattened, functions_by_handler, resources_of, role_id_of

Template = dict[str, Any]


@dataclass
class SnapStartSynth:
    api: Template  # the API stack with its nested stacks merged in
    counts: dict[str, int]  # resources per template


@pytest.fixture(scope="module")
def snapstart_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapStartSynth]:
    context = {**cdk_context(), "snapstart": True}
    outdir = tmp_path_factory.mktemp("cdk.out.snapstart")
    app = cdk.App(outdir=str(outdir), context=context)
    gateway = build(app, nag=False)
    app.synth()
    yield SnapStartSynth(flattened(outdir, gateway.api), template_counts(outdir))


@pytest.fixture(scope="module")
def snapstart_api(snapstart_synth: SnapStartSynth) -> Template:
    return snapstart_synth.api


def integration_targets(template: Template) -> list[str]:
    """The resource each API method's integration URI names (Ref or GetAtt logical id)."""
    targets = []
    for method in resources_of(template, "AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        if integration["Type"] != "AWS_PROXY":
            continue
        parts = integration["Uri"]["Fn::Join"][1]
        for part in parts:
            if isinstance(part, dict) and ("Ref" in part or "Fn::GetAtt" in part):
                target = part.get("Ref") or part["Fn::GetAtt"][0]
                if not target.startswith("AWS::"):  # pseudo parameters: partition, region
                    targets.append(target)
    return targets


def test_off_by_default_nothing_changes(synth: Synth) -> None:
    assert synth.context["snapstart"] is False and synth.gateway.config.snapstart is False
    assert resources_of(synth.api_json, "AWS::Lambda::Version") == {}
    assert resources_of(synth.api_json, "AWS::Lambda::Alias") == {}
    functions = resources_of(synth.api_json, "AWS::Lambda::Function")
    assert all("SnapStart" not in function["Properties"] for function in functions.values())
    targets = integration_targets(synth.api_json)
    assert targets and set(targets) <= set(functions)  # the functions themselves ($LATEST)


def test_on_route_functions_publish_snapstart_versions(snapstart_api: Template) -> None:
    functions = functions_by_handler(snapstart_api)
    versions = resources_of(snapstart_api, "AWS::Lambda::Version").values()
    versioned = {version["Properties"]["FunctionName"]["Ref"] for version in versions}
    for route in routes.ROUTES:
        logical_id, properties = functions[route.handler]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}, route.name
        assert logical_id in versioned, route.name
    for function in routes.ASYNC_FUNCTIONS:  # invoked by name, waited for by no client
        logical_id, properties = functions[function.handler]
        assert "SnapStart" not in properties and logical_id not in versioned, function.name


def test_on_the_api_invokes_each_functions_alias(snapstart_api: Template) -> None:
    functions = functions_by_handler(snapstart_api)
    aliases = resources_of(snapstart_api, "AWS::Lambda::Alias")
    versions = resources_of(snapstart_api, "AWS::Lambda::Version")
    alias_of_function = {}
    for alias_id, alias in aliases.items():
        properties = alias["Properties"]
        assert properties["Name"] == SNAPSTART_ALIAS
        version = versions[properties["FunctionVersion"]["Fn::GetAtt"][0]]
        assert version["Properties"]["FunctionName"] == properties["FunctionName"]
        alias_of_function[properties["FunctionName"]["Ref"]] = alias_id
    route_function_ids = {functions[route.handler][0] for route in routes.ROUTES}
    assert set(alias_of_function) == route_function_ids
    targets = integration_targets(snapstart_api)
    assert set(targets) == set(aliases)  # never a function's $LATEST
    permissions = resources_of(snapstart_api, "AWS::Lambda::Permission").values()
    api_invokable = {
        json.dumps(permission["Properties"]["FunctionName"])
        for permission in permissions
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert api_invokable == {json.dumps({"Ref": alias_id}) for alias_id in aliases}


def test_snapstart_needs_python_312_or_later() -> None:
    assert GatewayConfig.from_mapping({"snapstart": "true", "python_version": "3.12"}).snapstart is True
    assert GatewayConfig.from_mapping({"snapstart": False}).snapstart is False
    with pytest.raises(ConfigError, match="snapstart needs python_version"):
        GatewayConfig.from_mapping({"snapstart": True, "python_version": "3.11"})
    with pytest.raises(ConfigError, match="snapstart"):
        GatewayConfig.from_mapping({"snapstart": "yes"})
    with pytest.raises(ConfigError, match="python_version must be one of"):
        GatewayConfig.from_mapping({"python_version": "3.10"})


def test_every_template_stays_within_the_resource_budget_either_way(
    synth: Synth, snapstart_synth: SnapStartSynth
) -> None:
    """SnapStart adds a version and an alias per route function; each template, nested stacks
    included, stays under 60 % of CloudFormation's 500 resources either way."""
    off, on = len(synth.api_json["Resources"]), len(snapstart_synth.api["Resources"])
    assert on == off + 2 * len(routes.ROUTES)
    assert over_budget(snapstart_synth.counts) == {}, snapstart_synth.counts
    assert len(snapstart_synth.counts) == len(synth.templates)


def test_function_roles_hold_their_statements_inline(synth: Synth) -> None:
    """What keeps the API stack under the limit with room: a function's statements (X-Ray's
    among them) live in its role, not in an AWS::IAM::Policy per function."""
    policies = resources_of(synth.api_json, "AWS::IAM::Policy").values()
    attached = {role["Ref"] for policy in policies for role in policy["Properties"]["Roles"]}
    functions = functions_by_handler(synth.api_json)
    function_roles = {role_id_of(properties) for _, properties in functions.values()}
    assert len(function_roles) == len(functions)
    pollers = {role_id_of(functions[consumer.handler][1]) for consumer in routes.QUEUE_CONSUMERS}
    assert attached & function_roles == pollers  # the queue's event source grants its poller
    for _, properties in functions.values():
        assert properties["TracingConfig"] == {"Mode": "Active"}
        role = synth.api_json["Resources"][role_id_of(properties)]["Properties"]
        (inline,) = role["Policies"]
        actions = {a for st in inline["PolicyDocument"]["Statement"] for a in as_list(st["Action"])}
        assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "logs:PutLogEvents"} <= actions
