"""The REST API: every (method, path) of the route table, 405/404 handling, stage settings."""

from __future__ import annotations

import json

from gateway import routes

from tests.infra.conftest import Synth
from tests.infra.template_tools import api_methods, api_paths, functions_by_handler, render_vtl, resources_of

ROUTE_METHODS = {(route.method, path): route for route in routes.ROUTES for path in route.paths}


def test_route_table_paths_are_all_distinct() -> None:
    assert len(ROUTE_METHODS) == sum(len(route.paths) for route in routes.ROUTES)


def test_every_route_path_is_a_method_wired_to_its_function(synth: Synth) -> None:
    methods = api_methods(synth.api_json)
    functions = functions_by_handler(synth.api_json)
    for (method, path), route in ROUTE_METHODS.items():
        properties = methods.get((method, path))
        assert properties is not None, f"{method} {path} missing"
        integration = properties["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        function_id, _ = functions[route.handler]
        uri_parts = integration["Uri"]["Fn::Join"][1]
        assert {"Fn::GetAtt": [function_id, "Arn"]} in uri_parts, f"{method} {path} -> {route.name}"
        assert properties["AuthorizationType"] == "NONE"


def test_no_methods_beyond_the_route_table_and_the_405_catch_alls(synth: Synth) -> None:
    methods = api_methods(synth.api_json)
    specific = {key for key in methods if key[0] != "ANY"}
    assert specific == set(ROUTE_METHODS)
    assert {path for method, path in methods if method == "ANY"} == {path for _, path in ROUTE_METHODS}


def test_provider_path_parameter_is_a_sibling_of_the_static_segments(synth: Synth) -> None:
    top_level = {path for path in api_paths(synth.api_json).values() if path.count("/") == 1}
    assert top_level == {
        "/{provider}",
        "/v1",
        "/files",
        "/batches",
        "/uploads",
        "/key",
        "/health",
        "/console",
        "/spend",
        "/webhook_endpoints",
        "/webhook_event_types",
    }
    assert ("GET", "/{provider}/v1/files/{file_id}/content") in api_methods(synth.api_json)


def test_other_methods_get_405_in_the_openai_envelope(synth: Synth) -> None:
    methods = api_methods(synth.api_json)
    for path in {path for _, path in ROUTE_METHODS}:
        properties = methods[("ANY", path)]
        integration = properties["Integration"]
        assert integration["Type"] == "MOCK"
        for template in integration["RequestTemplates"].values():
            assert json.loads(template) == {"statusCode": 405}
        (response,) = integration["IntegrationResponses"]
        assert response["StatusCode"] == "405"
        body = render_vtl(response["ResponseTemplates"]["application/json"])
        assert body["error"]["code"] == "method_not_allowed"
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] is None
        assert response["ResponseParameters"]["method.response.header.x-request-id"] == "context.requestId"
        allowed = {method for method, p in ROUTE_METHODS if p == path}
        assert (
            response["ResponseParameters"]["method.response.header.Allow"]
            == f"'{', '.join(sorted(allowed))}'"
        )
        assert [r["StatusCode"] for r in properties["MethodResponses"]] == ["405"]


def test_binary_media_types_come_from_the_route_table(synth: Synth) -> None:
    (api,) = resources_of(synth.api_json, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["BinaryMediaTypes"] == list(routes.BINARY_MEDIA_TYPES)
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert "MinimumCompressionSize" not in api["Properties"]


def test_gateway_responses_use_the_openai_envelope(synth: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources_of(synth.api_json, "AWS::ApiGateway::GatewayResponse").values()
    }
    expected_status = {
        "MISSING_AUTHENTICATION_TOKEN": "404",
        "REQUEST_TOO_LARGE": "413",
        "THROTTLED": "429",
        "DEFAULT_4XX": None,
        "DEFAULT_5XX": None,
    }
    assert set(responses) == set(expected_status)
    for response_type, status in expected_status.items():
        properties = responses[response_type]
        assert properties.get("StatusCode") == status, response_type
        assert properties["ResponseParameters"] == {
            "gatewayresponse.header.x-request-id": "context.requestId"
        }
        body = render_vtl(properties["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    unknown = responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"]
    assert json.loads(unknown) == {
        "error": {
            "message": "Unknown request URL: $context.httpMethod $context.path.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_url",
        }
    }
    assert render_vtl(responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"])["error"][
        "code"
    ] == ("request_too_large")
    assert render_vtl(responses["THROTTLED"]["ResponseTemplates"]["application/json"])["error"]["code"] == (
        "rate_limit_exceeded"
    )
    assert render_vtl(responses["DEFAULT_5XX"]["ResponseTemplates"]["application/json"])["error"]["type"] == (
        "server_error"
    )


def test_stage_prod_with_throttling_tracing_and_json_access_logs(synth: Synth) -> None:
    (stage,) = resources_of(synth.api_json, "AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]
    assert properties["StageName"] == "prod"
    assert properties["TracingEnabled"] is True
    (settings,) = properties["MethodSettings"]
    assert settings["HttpMethod"] == "*" and settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == synth.context["throttle_rate_limit"]
    assert settings["ThrottlingBurstLimit"] == synth.context["throttle_burst_limit"]
    access_log = properties["AccessLogSetting"]
    fields = json.loads(access_log["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    (group,) = [
        part
        for part in access_log["DestinationArn"]["Fn::Join"][1]
        if "Ref" in part and "::" not in part["Ref"]
    ]
    assert synth.api_json["Resources"][group["Ref"]]["Type"] == "AWS::Logs::LogGroup"


def test_api_url_output(synth: Synth) -> None:
    outputs = synth.api_json["Outputs"]
    (stage_id,) = resources_of(synth.api_json, "AWS::ApiGateway::Stage")
    assert {"Ref": stage_id} in outputs["ApiUrl"]["Value"]["Fn::Join"][1]
