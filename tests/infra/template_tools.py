"""Reading synthesized CloudFormation templates: functions, roles' statements, API paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

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
