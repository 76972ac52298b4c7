"""One OpenAPI document for the whole gateway, generated from the handlers.

Each handler module builds its own Powertools resolver (`app = GatewayApp(...)`, the resolver
is `app.resolver`). Powertools' `OpenAPIMerge.discover()` looks for a module-level
`<name> = APIGatewayRestResolver(...)` in the source, which our handlers do not have, so this
module imports every handler of the route table itself, takes `app.resolver.get_openapi_schema()`
and hands the schemas to `OpenAPIMerge.add_schema()`. Around that it adds what the handlers do
not declare: the `/v1` path form, the security schemes, the OpenAI error envelope and the
error responses each route can give.

    python -m infra.openapi                 # writes docs/openapi.json
    python -m infra.openapi --check         # exit 1 when docs/openapi.json is stale
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
from gateway import routes

from infra import REPO_ROOT

OUTPUT = REPO_ROOT / "docs" / "openapi.json"
TITLE = "OpenAI Batches & Files gateway"
ERROR_SCHEMA = "ErrorResponse"
BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY: []}]
REQUEST_ID_HEADER = "RequestId"

DESCRIPTION = (
    "An OpenAI-compatible Batches and Files API in front of OpenAI and Azure OpenAI.\n\n"
    "Every `/v1/...` path below is also served bare (`/files`, ...) and under "
    "`/{provider}/v1/...` (`/openai/v1`, `/azure/v1` or a configured deployment name), which "
    "picks the provider of new objects. `/health` and `/key/*` are served only as written.\n\n"
    "Authenticate with `Authorization: Bearer <key>` or `api-key: <key>` (the master key or a "
    "virtual key). Every error is an OpenAI error envelope, and every response carries "
    "`x-request-id`."
)

# Responses a handler cannot declare through its signature.
_RESPONSE_OVERRIDES: dict[str, dict[str, Any]] = {
    "files_content": {
        "200": {
            "description": "The file's bytes, when they fit a Lambda response.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
        },
        "302": {
            "description": "Content too large for a Lambda response: a 5-minute presigned S3 URL.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
    },
}

# The error responses, each documented once in components.responses: status -> (name, text).
_ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Invalid request (the envelope's `param` names the field)."),
    "401": ("Unauthorized", "Missing or invalid API key."),
    "403": ("Forbidden", "The key may not use this provider, or the route needs the master key."),
    "404": ("NotFound", "Unknown id, key or provider."),
    "409": ("Conflict", "The object's state does not allow this (e.g. its file is still in transfer)."),
    "413": ("PayloadTooLarge", "Request body too large for API Gateway or for one Lambda event."),
    "415": ("UnsupportedMediaType", "The body's Content-Type is not the one the route takes."),
    "429": ("RateLimited", "The provider's rate limit, passed through with `Retry-After`."),
    "502": ("BadGateway", "The provider failed."),
    "503": ("ServiceUnavailable", "An AWS service the gateway stores its data in is unavailable; retry."),
    "504": ("GatewayTimeout", "The provider did not answer in time."),
    "default": ("Error", "An error (any status above, 405, or 500): an OpenAI error envelope."),
}

# Schemas Powertools adds for its own 422 validation response; the gateway answers 400 instead.
_POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _error_schema() -> dict[str, Any]:
    nullable_string: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    return {
        "title": ERROR_SCHEMA,
        "description": "The OpenAI error envelope every error response uses.",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {
                        "type": "string",
                        "description": "invalid_request_error, rate_limit_error, api_error or server_error",
                    },
                    "param": nullable_string,
                    "code": nullable_string,
                },
            }
        },
    }


def _request_id_header() -> dict[str, Any]:
    return {"x-request-id": {"$ref": f"#/components/headers/{REQUEST_ID_HEADER}"}}


def _error_responses() -> dict[str, Any]:
    return {
        name: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
            "headers": _request_id_header(),
        }
        for name, description in _ERROR_RESPONSES.values()
    }


def _security_schemes() -> dict[str, Any]:
    return {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`: the master key or a virtual key.",
        },
        API_KEY: {
            "type": "apiKey",
            "in": "header",
            "name": "api-key",
            "description": "`api-key: <key>` (the Azure OpenAI spelling), same keys.",
        },
    }


def _project_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _error_statuses(route: routes.Route, takes_body: bool) -> list[str]:
    statuses = ["default"]
    if route.authenticated:
        statuses += ["400", "401", "403", "404", "503"]
    if routes.SECRET_PROVIDER_KEYS in route.grants:  # a provider call: its errors pass through
        statuses += ["409", "429", "502", "504"]
    if route.method == "POST":
        statuses.append("413")
    if takes_body:
        statuses.append("415")
    return statuses


def public_path(route: routes.Route) -> str:
    """The path the document lists for a route: the `/v1/...` form of a prefixed route."""
    return "/v1" + route.path if route.prefixed else route.path


def _route_schema(route: routes.Route) -> dict[str, Any]:
    """The route's handler schema, rewritten to the public path and the gateway's conventions."""
    module = importlib.import_module(f"handlers.{route.name}")
    schema: dict[str, Any] = module.app.resolver.get_openapi_schema().model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    paths = schema.get("paths", {})
    if set(paths) != {route.path} or set(paths[route.path]) != {route.method.lower()}:
        raise RuntimeError(f"handlers.{route.name} serves {paths!r}, not {route.method} {route.path}")
    operation: dict[str, Any] = paths[route.path][route.method.lower()]

    doc = (module.__doc__ or "").strip()
    first_line = doc.splitlines()[0] if doc else ""
    summary = first_line.split(": ", 1)[1] if ": " in first_line else first_line
    operation["operationId"] = route.name
    operation["summary"] = (summary[:1].upper() + summary[1:]).rstrip(".") or route.name
    if doc:
        operation["description"] = doc
    operation["tags"] = [route.path.split("/")[1]]

    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    responses.update(copy.deepcopy(_RESPONSE_OVERRIDES.get(route.name, {})))
    for response in responses.values():
        response.setdefault("headers", {}).update(_request_id_header())
    for status in _error_statuses(route, module.app.body_kind is not None):
        responses[status] = {"$ref": f"#/components/responses/{_ERROR_RESPONSES[status][0]}"}
    if route.authenticated:
        operation["security"] = copy.deepcopy(SECURITY)

    schema["paths"] = {public_path(route): {route.method.lower(): operation}}
    return schema


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _prune_schemas(document: dict[str, Any]) -> None:
    """Drop the component schemas no path refers to (Powertools' unused 422 models)."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    prefix = "#/components/schemas/"
    used: set[str] = set()
    roots = [document["paths"], document["components"].get("responses", {})]
    pending = [ref for ref in _refs(roots) if ref.startswith(prefix)]
    while pending:
        name = pending.pop().removeprefix(prefix)
        if name not in used:
            used.add(name)
            pending.extend(ref for ref in _refs(schemas[name]) if ref.startswith(prefix))
    for name in sorted(set(schemas) - used):
        del schemas[name]


def _form_fields_not_null(document: dict[str, Any]) -> None:
    """A form field has no null: an optional one is left out. Powertools types `str | None`
    fields as string-or-null, which a client would send as the text 'null'."""
    prefix = "#/components/schemas/"
    schemas: dict[str, Any] = document["components"]["schemas"]
    for operations in document["paths"].values():
        for operation in operations.values():
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            ref = (form or {}).get("schema", {}).get("$ref", "")
            if not ref.startswith(prefix):
                continue
            for field in schemas[ref.removeprefix(prefix)].get("properties", {}).values():
                choices = [c for c in field.get("anyOf", ()) if c != {"type": "null"}]
                if "anyOf" in field and len(choices) == 1:
                    del field["anyOf"]
                    field.update(choices[0])


def build_openapi() -> dict[str, Any]:
    """The merged document, as plain JSON data."""
    merge = OpenAPIMerge(
        title=TITLE,
        version=_project_version(),
        description=DESCRIPTION,
        on_conflict="error",
    )
    components: dict[str, Any] = {}
    for route in routes.ROUTES:
        if not route.api:
            continue
        schema = _route_schema(route)
        # OpenAPIMerge keeps the last of two same-named components: make sure they agree.
        for name, value in schema.get("components", {}).get("schemas", {}).items():
            if name in _POWERTOOLS_VALIDATION_SCHEMAS:
                continue
            if components.setdefault(name, value) != value:
                raise RuntimeError(f"Two handlers declare different schemas named {name!r}")
        merge.add_schema(schema)
    document: dict[str, Any] = copy.deepcopy(merge.get_openapi_schema())

    document["components"]["schemas"][ERROR_SCHEMA] = _error_schema()
    document["components"]["responses"] = _error_responses()
    document["components"]["securitySchemes"] = _security_schemes()
    document["components"]["headers"] = {
        REQUEST_ID_HEADER: {
            "description": "The API Gateway request id (the Lambda request id locally).",
            "schema": {"type": "string"},
        }
    }
    _prune_schemas(document)
    _form_fields_not_null(document)
    document.pop("tags", None)
    document["tags"] = [
        {"name": name} for name in sorted({route.path.split("/")[1] for route in routes.ROUTES if route.api})
    ]
    OpenAPI.model_validate(document)  # Powertools' own OpenAPI 3 model: fail here, not in a client
    result: dict[str, Any] = json.loads(render(document))  # plain data, keys sorted
    return result


def render(document: dict[str, Any]) -> str:
    """The committed text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: docs/openapi.json")
    parser.add_argument("--check", action="store_true", help="fail when the file is not up to date")
    args = parser.parse_args(argv)
    text = render(build_openapi())
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run `make openapi`.", file=sys.stderr)
            return 1
        print(f"{output} is up to date.")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
