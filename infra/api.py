"""The REST API, generated from the route table.

Every path of every route (bare, `/v1/...`, `/{provider}/v1/...` and Azure's
`/{provider}/openai/...` and `/{provider}/openai/v1/...`) gets a proxy integration to the
route's function. Errors produced by API Gateway itself (unknown URL,
method not allowed, body too large, throttling, ...) use the OpenAI error envelope.

The API itself, its stage and the prefixes' own resources (`/v1`, `/{provider}`, ...) are in
the API stack; the paths under each prefix, with their methods, in a nested stack per prefix
(`ApiPaths`): CloudFormation counts at most 500 resources per template, and a route adds a
resource and two methods under every prefix (tests/infra/test_resource_budget.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from gateway import routes

from infra.config import GatewayConfig

STAGE_NAME = "prod"
REQUEST_ID_HEADER = "x-request-id"
JSON = "application/json"
# Content types the 405 mock answers with its template; others get 415 (DEFAULT_4XX).
MOCK_CONTENT_TYPES = (JSON, "text/plain", "application/x-www-form-urlencoded", *routes.BINARY_MEDIA_TYPES)

_ENVELOPE = '{{"error":{{"message":{message},"type":"{type}","param":null,"code":{code}}}}}'


def envelope(message: str, error_type: str, code: str | None, *, message_is_json: bool = False) -> str:
    """An OpenAI error body as a VTL template; `message` may hold $context variables."""
    return _ENVELOPE.format(
        message=message if message_is_json else json.dumps(message),
        type=error_type,
        code=json.dumps(code),
    )


UNKNOWN_URL = envelope(
    "Unknown request URL: $context.httpMethod $context.path.", "invalid_request_error", "unknown_url"
)
METHOD_NOT_ALLOWED = envelope(
    "Method $context.httpMethod is not allowed on $context.path.",
    "invalid_request_error",
    "method_not_allowed",
)
# (response type, status, body): API Gateway's own errors in the OpenAI envelope.
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str, str], ...] = (
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", UNKNOWN_URL),
    (
        apigw.ResponseType.REQUEST_TOO_LARGE,
        "413",
        # Also what a client gets when Lambda refuses an event over its 6 MB invoke limit
        # (API Gateway answers that 413 with this response type, not a 5xx).
        envelope(routes.REQUEST_TOO_LARGE_MESSAGE, "invalid_request_error", "request_too_large"),
    ),
    (
        apigw.ResponseType.THROTTLED,
        "429",
        envelope(
            "Rate limit reached for the gateway. Please retry after a short wait.",
            "requests",
            "rate_limit_exceeded",
        ),
    ),
    (
        apigw.ResponseType.DEFAULT_4_XX,
        "",  # keep API Gateway's status code
        envelope("$context.error.messageString", "invalid_request_error", None, message_is_json=True),
    ),
    (
        apigw.ResponseType.DEFAULT_5_XX,
        "",
        envelope("$context.error.messageString", "server_error", None, message_is_json=True),
    ),
)

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "path": "$context.path",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
    "xrayTraceId": "$context.xrayTraceId",
}


def paths_by_prefix(
    table: Iterable[routes.Route] = routes.ROUTES,
) -> dict[str, list[tuple[routes.Route, str]]]:
    """prefix -> (route, full path) of every path served under it; unprefixed routes under ""."""
    groups: dict[str, list[tuple[routes.Route, str]]] = {}
    for route in table:
        if route.prefixed:
            for prefix in route.prefixes:
                groups.setdefault(prefix, []).append((route, prefix + route.path))
        else:  # route.paths: its also_at paths too (the console's page beside its files)
            groups.setdefault("", []).extend((route, path) for path in route.paths)
    return groups


def prefix_construct_id(prefix: str) -> str:
    """ "" -> PathsBare, "/{provider}/openai/v1" -> PathsProviderOpenaiV1."""
    words = [re.sub(r"[^A-Za-z0-9]", "", part).capitalize() for part in _segments(prefix)]
    return "Paths" + ("".join(words) or "Bare")


def _segments(path: str) -> list[str]:
    return [part for part in path.strip("/").split("/") if part]


class ApiPaths(cdk.NestedStack):
    """The resources and methods of the paths under one prefix."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(
            scope, construct_id, description=f"openai-gateway: the API's paths under {prefix or '/'}"
        )
        self.prefix = prefix


class GatewayApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        config: GatewayConfig,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name="openai-gateway",
            description="OpenAI-compatible Files and Batches API gateway",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(routes.BINARY_MEDIA_TYPES),
            cloud_watch_role=False,
            deploy=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )
        # One integration per function, shared by all its paths; with scope_permission_to_method
        # off it adds a single lambda:InvokeFunction permission per function (source: this API).
        integrations = {
            name: apigw.LambdaIntegration(function, proxy=True, scope_permission_to_method=False)
            for name, function in functions.items()
        }
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        self.path_stacks: dict[str, ApiPaths] = {}
        allowed: dict[str, list[str]] = {}
        resources: dict[str, apigw.IResource] = {}
        for prefix, entries in paths_by_prefix().items():
            stack = ApiPaths(self, prefix_construct_id(prefix), prefix=prefix)
            self.path_stacks[prefix] = stack
            for route, path in entries:
                resource = self.resource(path, prefix=prefix, paths=stack)
                resources[path] = resource
                self.methods[(route.method, path)] = resource.add_method(
                    route.method, integrations[route.name], authorization_type=apigw.AuthorizationType.NONE
                )
                allowed.setdefault(path, []).append(route.method)
        for path, methods in allowed.items():
            self._method_not_allowed(resources[path], methods)
        for response_type, status, body in GATEWAY_RESPONSES:
            self.api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status or None,
                templates={JSON: body},
                response_headers={REQUEST_ID_HEADER: "context.requestId"},
            )

    def resource(self, path: str, *, prefix: str, paths: ApiPaths) -> apigw.IResource:
        """The resource of `path`: the prefix's own segments in this stack (shared by prefixes),
        the segments below it in the prefix's nested stack."""
        resource: apigw.IResource = self.api.root
        prefix_depth = len(_segments(prefix))
        for depth, part in enumerate(_segments(path)):
            child = resource.get_resource(part)
            if child is None:
                if depth < prefix_depth or cdk.Stack.of(resource) is paths:
                    child = resource.add_resource(part)
                else:  # the first segment below the prefix: its construct in the nested stack
                    child = apigw.Resource(paths, part, parent=resource, path_part=part)
            resource = child
        return resource

    def _method_not_allowed(self, resource: apigw.IResource, methods: list[str]) -> None:
        """ANY -> 405 in the OpenAI envelope; API Gateway prefers the resource's specific methods."""
        allow = ", ".join(sorted(set(methods)))
        resource.add_method(
            "ANY",
            apigw.MockIntegration(
                request_templates={
                    content_type: '{"statusCode": 405}' for content_type in MOCK_CONTENT_TYPES
                },
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                content_handling=apigw.ContentHandling.CONVERT_TO_TEXT,
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="405",
                        response_templates={JSON: METHOD_NOT_ALLOWED},
                        response_parameters={
                            f"method.response.header.{REQUEST_ID_HEADER}": "context.requestId",
                            "method.response.header.Allow": f"'{allow}'",
                        },
                    )
                ],
            ),
            authorization_type=apigw.AuthorizationType.NONE,
            method_responses=[
                apigw.MethodResponse(
                    status_code="405",
                    response_parameters={
                        f"method.response.header.{REQUEST_ID_HEADER}": True,
                        "method.response.header.Allow": True,
                    },
                )
            ],
        )
