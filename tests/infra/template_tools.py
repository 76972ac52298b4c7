"""Reading synthesized CloudFormation templates: functions, roles' statements, API paths, and
the API stack with its nested stacks as one template."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk

Template = dict[str, Any]


def resources_of(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def functions_by_handler(template: Template) -> dict[str, tuple[str, dict[str, Any]]]:
    """handler string -> (logical id, properties) of every AWS::Lambda::Function."""
    result = {}
    for logical_id, resource in resources_of(template, "AWS::Lambda::Function").items():
        handler = resource["Properties"]["Handler"]
        assert handler not in result, f"two functions with handler {handler}"
        result[handler] = (logical_id, resource["Properties"])
    return result


def role_id_of(function_properties: dict[str, Any]) -> str:
    role = function_properties["Role"]
    assert set(role) == {"Fn::GetAtt"} and role["Fn::GetAtt"][1] == "Arn", role
    return str(role["Fn::GetAtt"][0])


def statements_of_role(template: Template, role_id: str, effect: str = "Allow") -> list[dict[str, Any]]:
    """Every statement of `effect` that applies to the role (inline and attached AWS::IAM::Policy)."""
    role = template["Resources"][role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), f"{role_id} has managed policies"
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        properties = policy["Properties"]
        if {"Ref": role_id} in properties.get("Roles", []):
            statements.extend(properties["PolicyDocument"]["Statement"])
    for statement in statements:
        assert statement["Effect"] in ("Allow", "Deny"), statement
    return [statement for statement in statements if statement["Effect"] == effect]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


def resources_by_action(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            result.setdefault(action, []).extend(as_list(statement["Resource"]))
    return result


def import_value(name: str) -> dict[str, str]:
    return {"Fn::ImportValue": name}


def joined(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def api_paths(template: Template) -> dict[str, str]:
    """AWS::ApiGateway::Resource logical id -> full path, from the PathPart/ParentId chain."""
    resources = resources_of(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            properties = resources[logical_id]["Properties"]
            parent = properties["ParentId"]
            if "Fn::GetAtt" in parent:
                assert parent["Fn::GetAtt"][1] == "RootResourceId", parent
                prefix = ""
            else:
                prefix = path_of(parent["Ref"])
            paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def api_methods(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, full path) -> method properties."""
    paths = api_paths(template)
    methods = {}
    for method in resources_of(template, "AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        resource = properties["ResourceId"]
        path = "/" if "Fn::GetAtt" in resource else paths[resource["Ref"]]
        key = (properties["HttpMethod"], path)
        assert key not in methods, f"duplicate method {key}"
        methods[key] = properties
    return methods


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (json path, value) pair in a template, keys included as values of their own."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield f"{path}/{key}#key", key
            yield from walk(child, f"{path}/{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk(child, f"{path}[{index}]")
    else:
        yield path, value


_VTL_STRING = re.compile(r"\$context\.error\.messageString")
_VTL_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")


def render_vtl(template: str) -> Any:
    """A gateway response / mock template as API Gateway would fill it, parsed as JSON."""
    rendered = _VTL_STRING.sub('"An error message"', template)
    rendered = _VTL_VARIABLE.sub("X", rendered)
    return json.loads(rendered)


def nested_templates(outdir: Path, stack: cdk.Stack) -> dict[str, Template]:
    """The logical id in `stack`'s template of each of its nested stacks -> that stack's template."""
    nested: dict[str, Template] = {}
    for construct in stack.node.find_all():
        if isinstance(construct, cdk.NestedStack) and construct.nested_stack_parent is stack:
            resource = construct.nested_stack_resource
            assert resource is not None
            nested[stack.get_logical_id(resource)] = json.loads(
                (outdir / construct.template_file).read_text()
            )
    return nested


def flattened(outdir: Path, stack: cdk.Stack) -> Template:
    """`stack`'s template with its nested stacks' resources merged in, as one template would hold
    them: a nested stack's resource is named `<nested stack's logical id>.<its logical id>`, a
    nested parameter is replaced by the expression the parent passes, a parent's `Outputs.*`
    attribute of a nested stack by that output's value. For the tests that read the whole API
    (functions, roles, methods), whichever template each part lives in."""
    parent = json.loads((outdir / stack.template_file).read_text())
    resources = {
        logical_id: resource
        for logical_id, resource in parent["Resources"].items()
        if resource["Type"] != "AWS::CloudFormation::Stack"
    }
    outputs: dict[tuple[str, str], Any] = {}
    for stack_id, template in nested_templates(outdir, stack).items():
        arguments = parent["Resources"][stack_id]["Properties"].get("Parameters", {})
        names = {logical_id: f"{stack_id}.{logical_id}" for logical_id in template["Resources"]}

        def ref(name: str, arguments: dict[str, Any] = arguments, names: dict[str, str] = names) -> Any:
            return arguments.get(name) or ({"Ref": names[name]} if name in names else None)

        def get_att(attribute: list[str], names: dict[str, str] = names) -> Any:
            return {"Fn::GetAtt": [names[attribute[0]], *attribute[1:]]} if attribute[0] in names else None

        template = _substituted(template, ref, get_att)
        for logical_id, resource in template["Resources"].items():
            depends_on = resource.get("DependsOn")
            if depends_on is not None:
                resource["DependsOn"] = [names.get(name, name) for name in as_list(depends_on)]
            resources[names[logical_id]] = resource
        for name, output in template.get("Outputs", {}).items():
            outputs[(stack_id, f"Outputs.{name}")] = output["Value"]
    merged = {**parent, "Resources": resources}
    return _substituted(merged, lambda ref: None, lambda attribute: outputs.get(tuple(attribute)))


def _substituted(
    value: Any,
    ref: Callable[[str], Any],
    get_att: Callable[[list[str]], Any] = lambda attribute: None,
) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and (replacement := ref(value["Ref"])) is not None:
            return replacement
        if set(value) == {"Fn::GetAtt"} and (replacement := get_att(value["Fn::GetAtt"])) is not None:
            return _substituted(replacement, ref, get_att)
        return {key: _substituted(child, ref, get_att) for key, child in value.items()}
    if isinstance(value, list):
        return [_substituted(child, ref, get_att) for child in value]
    return value
