"""docs/openapi.json: generated from the handlers (infra/openapi.py), committed, and current."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from gateway.routes import ROUTES, Route

from infra import REPO_ROOT, openapi


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_openapi()


def test_committed_document_is_current(document: dict[str, Any]) -> None:
    committed = openapi.OUTPUT.read_text(encoding="utf-8") if openapi.OUTPUT.exists() else ""
    assert committed == openapi.render(document), (
        "docs/openapi.json is stale (or missing): run `make openapi` and commit the result."
    )


def test_generation_is_deterministic(document: dict[str, Any]) -> None:
    assert openapi.render(openapi.build_openapi()) == openapi.render(document)
    assert document["info"]["title"] == "OpenAI Batches & Files gateway"
    assert (
        document["info"]["version"]
        == tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    )


# The API's operations; the console's static files (api=False) are not one.
API_ROUTES = [route for route in ROUTES if route.api]


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda route: route.name)
def test_every_route_is_documented_with_its_method(document: dict[str, Any], route: Route) -> None:
    path = "/v1" + route.path if route.prefixed else route.path
    operation = document["paths"].get(path, {}).get(route.method.lower())
    assert operation is not None, f"{route.method} {path} ({route.name}) is not in the document"
    assert operation["operationId"] == route.name
    assert operation["responses"]["default"] == {"$ref": "#/components/responses/Error"}


def test_no_path_outside_the_route_table(document: dict[str, Any]) -> None:
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    expected = {("/v1" + r.path if r.prefixed else r.path, r.method) for r in API_ROUTES}
    assert documented == expected
    assert not [path for path in document["paths"] if path.startswith("/console")]


def test_security_on_authenticated_routes_only(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert (schemes[openapi.BEARER]["type"], schemes[openapi.BEARER]["scheme"]) == ("http", "bearer")
    assert schemes[openapi.API_KEY]["in"] == "header" and schemes[openapi.API_KEY]["name"] == "api-key"
    assert "security" not in document, "security is per operation, so that /health stays open"
    for route in API_ROUTES:
        operation = document["paths"][openapi.public_path(route)][route.method.lower()]
        if route.authenticated:
            assert operation["security"] == [{openapi.BEARER: []}, {openapi.API_KEY: []}], route.name
            assert "401" in operation["responses"], route.name
        else:
            assert "security" not in operation, route.name
    assert "security" not in document["paths"]["/health"]["get"]


def test_errors_are_the_openai_envelope(document: dict[str, Any]) -> None:
    envelope = document["components"]["schemas"][openapi.ERROR_SCHEMA]
    assert envelope["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    text = json.dumps(document)
    # Powertools' own 422 validation models are not what the gateway answers (it sends a 400).
    assert '"422"' not in text and "HTTPValidationError" not in text
    for response in document["components"]["responses"].values():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{openapi.ERROR_SCHEMA}"}
