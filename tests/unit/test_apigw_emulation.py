"""The API Gateway emulation (devserver.apigw + the HTTP front end) with fake handlers."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.routes import (
    API_GATEWAY_MAX_REQUEST_BYTES,
    LAMBDA_MAX_RESPONSE_BYTES,
    ROUTES,
    Route,
    route,
)

from devserver.apigw import ApiGateway, HttpResponse, Router, invoke
from devserver.events import is_binary_media_type, multipart_body, proxy_event
from devserver.server import HttpFrontEnd, serve_http


class FakeFunctions:
    """A handler_resolver: every route answers with `behaviour`, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], Any]] = []
        self.results: dict[str, Any] = {}
        self.errors: dict[str, Exception] = {}
        self.missing: set[str] = set()

    def __call__(self, name: str) -> Any:
        if name in self.missing:
            return None

        def handler(event: dict[str, Any], context: Any) -> Any:
            self.calls.append((name, event, context))
            if name in self.errors:
                raise self.errors[name]
            if name in self.results:
                return self.results[name]
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"route": name}),
            }

        return handler

    @property
    def last_event(self) -> dict[str, Any]:
        return self.calls[-1][1]


@pytest.fixture
def fakes() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
def api(fakes: FakeFunctions) -> ApiGateway:
    return ApiGateway(handler_resolver=fakes)


@pytest.fixture
def front(api: ApiGateway) -> Iterator[HttpFrontEnd]:
    with serve_http(api) as server:
        yield server


def envelope(response: HttpResponse) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


# -- route matching ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name", "resource", "params"),
    [
        ("GET", "/files", "files_list", "/files", None),
        ("GET", "/v1/files", "files_list", "/v1/files", None),
        ("POST", "/v1/files", "files_create", "/v1/files", None),
        ("GET", "/openai/v1/files", "files_list", "/{provider}/v1/files", {"provider": "openai"}),
        ("GET", "/v1/files/file-1", "files_retrieve", "/v1/files/{file_id}", {"file_id": "file-1"}),
        (
            "GET",
            "/azure/v1/files/file-1/content",
            "files_content",
            "/{provider}/v1/files/{file_id}/content",
            {"provider": "azure", "file_id": "file-1"},
        ),
        ("POST", "/batches/b1/cancel", "batches_cancel", "/batches/{batch_id}/cancel", {"batch_id": "b1"}),
        # Azure's two path forms under a deployment
        ("POST", "/azure/openai/files", "files_create", "/{provider}/openai/files", {"provider": "azure"}),
        (
            "POST",
            "/azure/openai/batches/b1/cancel",
            "batches_cancel",
            "/{provider}/openai/batches/{batch_id}/cancel",
            {"provider": "azure", "batch_id": "b1"},
        ),
        (
            "GET",
            "/azure/openai/v1/files/file-1/content",
            "files_content",
            "/{provider}/openai/v1/files/{file_id}/content",
            {"provider": "azure", "file_id": "file-1"},
        ),
        # a provider literally named "openai" has Azure's form too (its functions refuse it)
        (
            "GET",
            "/openai/openai/v1/batches",
            "batches_list",
            "/{provider}/openai/v1/batches",
            {"provider": "openai"},
        ),
        # a provider literally named "v1" is still reachable through the prefix
        ("GET", "/v1/v1/files", "files_list", "/{provider}/v1/files", {"provider": "v1"}),
        ("GET", "/health", "health", "/health", None),
        ("POST", "/key/generate", "keys_generate", "/key/generate", None),
    ],
)
def test_routes_match_like_api_gateway(
    method: str, path: str, name: str, resource: str, params: dict[str, str] | None
) -> None:
    match = Router(ROUTES).match(method, path)
    assert match is not None
    assert (match.route.name, match.resource, match.path_parameters) == (name, resource, params)


@pytest.mark.parametrize("path", ["/v1/health", "/openai/v1/key/generate", "/v1/files/", "/v2/files", "/x"])
def test_unprefixed_and_unknown_paths_do_not_match(path: str) -> None:
    router = Router(ROUTES)
    assert router.match("GET", path) is None
    assert router.match("POST", path) is None


def test_static_segment_beats_path_parameter() -> None:
    routes = [
        Route("by_id", "GET", "/things/{thing_id}", prefixed=False),
        Route("special", "GET", "/things/special", prefixed=False),
        Route("first_param", "GET", "/{a}/files", prefixed=False),
        Route("first_static", "GET", "/v1/{b}", prefixed=False),
    ]
    router = Router(routes)
    assert router.match("GET", "/things/special").route.name == "special"  # type: ignore[union-attr]
    assert router.match("GET", "/things/other").route.name == "by_id"  # type: ignore[union-attr]
    # the leftmost static segment decides, whatever the declaration order
    assert router.match("GET", "/v1/files").route.name == "first_static"  # type: ignore[union-attr]
    assert router.match("GET", "/v2/files").route.name == "first_param"  # type: ignore[union-attr]


def test_v1_files_is_never_a_provider(api: ApiGateway, fakes: FakeFunctions) -> None:
    response = api.handle("GET", "/v1/files/file-abc")
    assert response.status == 200
    assert fakes.last_event["pathParameters"] == {"file_id": "file-abc"}
    assert fakes.last_event["resource"] == "/v1/files/{file_id}"


# -- the proxy event ---------------------------------------------------------------------


def test_json_request_event_shape(api: ApiGateway, fakes: FakeFunctions) -> None:
    body = json.dumps({"input_file_id": "file-1", "note": "héllo"}).encode()
    headers = [
        ("Host", "127.0.0.1:4000"),
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer sk-1234"),
        ("X-Custom", "one"),
        ("X-Custom", "two"),
        ("User-Agent", "pytest"),
    ]
    response = api.handle(
        "POST", "/openai/v1/batches?a=1&a=2&b=x%20y&empty=", headers, body, source_ip="10.1.2.3"
    )
    assert response.status == 200
    event = fakes.last_event
    assert event["resource"] == "/{provider}/v1/batches"
    assert event["path"] == "/openai/v1/batches"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"provider": "openai"}
    assert event["stageVariables"] is None
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"input_file_id": "file-1", "note": "héllo"}
    # header names keep the client's casing; single view = last value
    assert event["headers"]["Authorization"] == "Bearer sk-1234"
    assert event["headers"]["X-Custom"] == "two"
    assert event["multiValueHeaders"]["X-Custom"] == ["one", "two"]
    assert "authorization" not in event["headers"]
    assert event["queryStringParameters"] == {"a": "2", "b": "x y", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"], "empty": [""]}
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/{provider}/v1/batches"
    assert ctx["httpMethod"] == "POST"
    assert ctx["path"] == "/prod/openai/v1/batches"
    assert ctx["stage"] == "prod"
    assert ctx["identity"]["sourceIp"] == "10.1.2.3"
    assert ctx["identity"]["userAgent"] == "pytest"
    assert ctx["domainName"] == "127.0.0.1:4000"
    assert isinstance(ctx["requestTimeEpoch"], int)
    for key in ("extendedRequestId", "requestTime", "accountId", "apiId", "protocol"):
        assert ctx[key]
    assert response.header("x-request-id") == ctx["requestId"]
    json.dumps(event)  # what Lambda receives is JSON


def test_request_ids_are_fresh(api: ApiGateway) -> None:
    ids = {api.handle("GET", "/v1/files").header("x-request-id") for _ in range(3)}
    assert len(ids) == 3


def test_empty_request_has_none_fields(api: ApiGateway, fakes: FakeFunctions) -> None:
    api.handle("GET", "/v1/files", [], b"")
    event = fakes.last_event
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["headers"] is None and event["multiValueHeaders"] is None


def test_multipart_body_is_base64(api: ApiGateway, fakes: FakeFunctions) -> None:
    content = b'{"custom_id": "1"}\n\xff\x00binary'
    body, content_type = multipart_body(
        {"purpose": "batch"}, {"file": ("in.jsonl", content, "application/jsonl")}
    )
    api.handle("POST", "/v1/files", [("Content-Type", content_type)], body)
    event = fakes.last_event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [
        ("application/octet-stream", True),
        ("Application/JSONL; charset=utf-8", True),
        ("multipart/form-data; boundary=abc", True),
        ("application/binary", True),
        ("application/json", False),
        ("text/plain; charset=utf-8", False),
        (None, False),
    ],
)
def test_binary_media_types(
    api: ApiGateway, fakes: FakeFunctions, content_type: str | None, binary: bool
) -> None:
    assert is_binary_media_type(content_type) is binary
    headers = [("Content-Type", content_type)] if content_type else []
    api.handle("POST", "/v1/uploads/up-1/parts", headers, b"abc\n")
    event = fakes.last_event
    assert event["isBase64Encoded"] is binary
    assert event["body"] == (base64.b64encode(b"abc\n").decode() if binary else "abc\n")


def test_lambda_context(api: ApiGateway, fakes: FakeFunctions) -> None:
    api.handle("POST", "/v1/files", [("Content-Type", "application/json")], b"{}")
    _, _, context = fakes.calls[-1]
    files_create = route("files_create")
    assert context.function_name == "files_create"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb == files_create.memory_mb
    assert context.invoked_function_arn.endswith(":function:files_create")
    assert context.log_group_name == "/aws/lambda/files_create"
    assert context.log_stream_name
    assert context.aws_request_id
    remaining = context.get_remaining_time_in_millis()
    assert 0 < remaining <= files_create.timeout_seconds * 1000


def test_proxy_event_builder_for_tests() -> None:
    event = proxy_event(
        "post",
        "/v1/batches?limit=2",
        resource="/v1/batches",
        headers={"Authorization": "Bearer k"},
        json={"a": 1},
        query={"after": ["x", "y"]},
    )
    assert event["httpMethod"] == "POST"
    assert event["headers"] == {"Authorization": "Bearer k", "Content-Type": "application/json"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["2"], "after": ["x", "y"]}
    assert json.loads(event["body"]) == {"a": 1}
    assert event["requestContext"]["path"] == "/prod/v1/batches"


# -- responses ---------------------------------------------------------------------------


def test_response_headers_are_merged_and_request_id_not_duplicated(
    api: ApiGateway, fakes: FakeFunctions
) -> None:
    fakes.results["files_list"] = {
        "statusCode": 201,
        "headers": {"X-Request-Id": "from-handler", "X-One": "1", "Set-Cookie": "ignored"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": "hello",
    }
    response = api.handle("GET", "/v1/files")
    assert response.status == 201
    assert response.header_values("x-request-id") == ["from-handler"]
    assert response.header_values("set-cookie") == ["a=1", "b=2"]
    assert response.header("x-one") == "1"
    assert response.header("content-type") == "application/json"  # API Gateway's default
    assert response.body == b"hello"


def test_base64_response_is_decoded(api: ApiGateway, fakes: FakeFunctions) -> None:
    payload = bytes(range(256))
    fakes.results["files_content"] = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }
    response = api.handle("GET", "/v1/files/file-1/content")
    assert response.status == 200
    assert response.body == payload


# -- errors answered by API Gateway itself -----------------------------------------------


def test_unknown_url_404(api: ApiGateway, fakes: FakeFunctions) -> None:
    response = api.handle("GET", "/x?y=1")
    assert response.status == 404
    assert envelope(response) == {
        "message": "Unknown request URL: GET /x.",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
    assert response.header("x-request-id")
    assert fakes.calls == []


def test_wrong_method_405(api: ApiGateway, fakes: FakeFunctions) -> None:
    response = api.handle("DELETE", "/openai/v1/batches")
    assert response.status == 405
    assert envelope(response)["code"] == "method_not_allowed"
    assert response.header("allow") == "GET, POST"
    assert response.header("x-request-id")
    assert fakes.calls == []


def test_body_over_api_gateway_limit_413(api: ApiGateway, fakes: FakeFunctions) -> None:
    body = b"x" * (API_GATEWAY_MAX_REQUEST_BYTES + 1)
    response = api.handle(
        "POST", "/v1/uploads/up-1/parts", [("Content-Type", "application/octet-stream")], body
    )
    assert response.status == 413
    assert envelope(response)["code"] == "request_too_large"
    assert response.header("x-request-id")
    assert fakes.calls == []


def test_the_api_gateway_limit_applies_even_where_the_lambda_limit_would_pass(
    fakes: FakeFunctions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two separate limits: a body API Gateway refuses never becomes an event, whatever the
    # Lambda limit (here one far above it) would say of that event.
    api = ApiGateway(handler_resolver=fakes, max_request_bytes=100, max_event_bytes=10**9)
    over = api.handle("POST", "/v1/files", [("Content-Type", "text/plain")], b"a" * 101)
    assert over.status == 413 and envelope(over)["code"] == "request_too_large"
    assert fakes.calls == []
    at_limit = api.handle("POST", "/v1/files", [("Content-Type", "text/plain")], b"a" * 100)
    assert at_limit.status == 200 and len(fakes.calls) == 1

    # At the real limits: over 10 MB is refused before any event is built or measured.
    def no_event(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the event of a body over 10 MB was built")

    monkeypatch.setattr("devserver.apigw.serialized_size", no_event)
    body = b"a" * (API_GATEWAY_MAX_REQUEST_BYTES + 1)
    response = ApiGateway(handler_resolver=fakes).handle(
        "POST", "/v1/uploads/up-1/parts", [("Content-Type", "text/plain")], body
    )
    assert response.status == 413 and envelope(response)["code"] == "request_too_large"


def test_event_over_lambda_limit_413(api: ApiGateway, fakes: FakeFunctions) -> None:
    # 5 MB is fine for API Gateway, but base64 makes the Lambda event 6.7 MB
    body = b"\x00" * (5 * 1024 * 1024)
    response = api.handle(
        "POST", "/v1/uploads/up-1/parts", [("Content-Type", "application/octet-stream")], body
    )
    assert response.status == 413
    assert envelope(response)["code"] == "request_too_large"
    assert fakes.calls == []
    # the same size as text stays under the limit and reaches the function
    ok = api.handle(
        "POST", "/v1/uploads/up-1/parts", [("Content-Type", "text/plain")], b"a" * (5 * 1024 * 1024)
    )
    assert ok.status == 200
    assert len(fakes.calls) == 1


def test_response_over_lambda_limit_502(api: ApiGateway, fakes: FakeFunctions) -> None:
    fakes.results["files_content"] = {"statusCode": 200, "body": "x" * LAMBDA_MAX_RESPONSE_BYTES}
    response = api.handle("GET", "/v1/files/file-1/content")
    assert response.status == 502
    assert envelope(response)["code"] == "response_too_large"
    assert response.header("x-request-id")
    fakes.results["files_content"] = {"statusCode": 200, "body": "x" * (LAMBDA_MAX_RESPONSE_BYTES - 1000)}
    assert api.handle("GET", "/v1/files/file-1/content").status == 200


def test_content_at_the_inline_limit_fits_and_a_redirect_passes(
    api: ApiGateway, front: HttpFrontEnd, fakes: FakeFunctions
) -> None:
    from gateway.service.content_delivery import MAX_INLINE_CONTENT_BYTES

    payload = b"\xff" * MAX_INLINE_CONTENT_BYTES
    fakes.results["files_content"] = {
        "statusCode": 200,
        "multiValueHeaders": {
            "Content-Type": ["application/octet-stream"],
            "Content-Disposition": ['attachment; filename="' + "n" * 200 + '.jsonl"'],
        },
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }
    response = api.handle("GET", "/v1/files/file-1/content")
    assert response.status == 200 and response.body == payload

    location = "http://127.0.0.1:9/bucket/file-content/file-1?X-Amz-Signature=abc"
    fakes.results["files_content"] = {
        "statusCode": 302,
        "multiValueHeaders": {"Location": [location], "Cache-Control": ["no-store"]},
        "body": "",
        "isBase64Encoded": False,
    }
    response = api.handle("GET", "/v1/files/file-1/content")
    assert response.status == 302 and response.body == b""
    assert response.header("location") == location
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        status, headers, data = _request(conn, "GET", "/v1/files/file-1/content")
        assert status == 302 and data == b"" and headers["location"] == location
    finally:
        conn.close()


def test_handler_exception_502_without_traceback(
    api: ApiGateway, fakes: FakeFunctions, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.errors["batches_create"] = RuntimeError("secret detail sk-live-123")
    with caplog.at_level(logging.ERROR, logger="devserver.apigw"):
        response = api.handle("POST", "/v1/batches", [("Content-Type", "application/json")], b"{}")
    assert response.status == 502
    error = envelope(response)
    assert error["message"] == "Internal server error"
    assert error["code"] == "lambda_error"
    assert b"Traceback" not in response.body and b"secret detail" not in response.body
    assert response.header("x-request-id")
    assert "RuntimeError: secret detail" in caplog.text  # the traceback is logged instead


@pytest.mark.parametrize(
    "result",
    [
        {"body": "no status"},
        None,
        "a string",
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": object()}},
    ],
)
def test_malformed_proxy_result_502(api: ApiGateway, fakes: FakeFunctions, result: Any) -> None:
    fakes.results["files_list"] = result
    response = api.handle("GET", "/v1/files")
    assert response.status == 502
    assert response.header("x-request-id")


def test_missing_handler_501(api: ApiGateway, fakes: FakeFunctions) -> None:
    fakes.missing.add("batches_list")
    response = api.handle("GET", "/v1/batches")
    assert response.status == 501
    error = envelope(response)
    assert error["code"] == "not_implemented"
    assert "functions/handlers/batches_list.py" in error["message"]
    assert response.header("x-request-id")
    fakes.missing.clear()  # written meanwhile: no restart needed
    assert api.handle("GET", "/v1/batches").status == 200


def test_handlers_are_resolved_once() -> None:
    resolved: list[str] = []

    def resolver(name: str) -> Any:
        resolved.append(name)
        return lambda event, context: {"statusCode": 204}

    api = ApiGateway(handler_resolver=resolver)
    for _ in range(3):
        assert api.handle("GET", "/v1/files").status == 204
    assert resolved == ["files_list"]


def test_a_function_handles_one_event_at_a_time_while_other_functions_run() -> None:
    """As a Lambda execution environment: the handlers keep the request's caller in their
    resolver, so two requests of one function at once would read each other's caller."""
    order: list[str] = []
    first_inside, release_first = threading.Event(), threading.Event()

    def resolver(name: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> Any:
            call = f"{name}:{event['queryStringParameters']['n']}"
            order.append(call + " start")
            if call == "files_list:1":
                first_inside.set()
                assert release_first.wait(30)
            order.append(call + " end")
            return {"statusCode": 200, "body": ""}

        return handler

    api = ApiGateway(handler_resolver=resolver)
    first = threading.Thread(target=api.handle, args=("GET", "/v1/files?n=1"))
    first.start()
    assert first_inside.wait(30)
    assert api.handle("GET", "/v1/batches?n=1").status == 200  # another function, while files_list runs
    second = threading.Thread(target=api.handle, args=("GET", "/v1/files?n=2"))
    second.start()
    try:
        second.join(0.5)  # an unguarded second event would have run and ended by now
        assert second.is_alive()
    finally:
        release_first.set()
    first.join(30)
    second.join(30)
    assert order == [
        "files_list:1 start",
        "batches_list:1 start",
        "batches_list:1 end",
        "files_list:1 end",
        "files_list:2 start",
        "files_list:2 end",
    ]


def test_direct_invoke(api: ApiGateway, fakes: FakeFunctions) -> None:
    event = proxy_event("GET", "/v1/files", resource="/v1/files")
    result = api.invoke("files_list", event)
    assert result["statusCode"] == 200
    assert fakes.calls[-1][2].function_name == "files_list"
    with pytest.raises(LookupError):
        invoke("no_such_route", event)


# -- over HTTP ---------------------------------------------------------------------------


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    headers = headers or {}
    chunked = headers.get("Transfer-Encoding") == "chunked"
    conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
    response = conn.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_http_front_end_keep_alive_and_errors(front: HttpFrontEnd, fakes: FakeFunctions) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        status, headers, data = _request(conn, "GET", "/openai/v1/files?limit=1")
        assert status == 200 and json.loads(data) == {"route": "files_list"}
        assert headers["content-length"] == str(len(data))
        assert headers["x-request-id"] == fakes.last_event["requestContext"]["requestId"]
        sock = conn.sock

        status, headers, data = _request(conn, "GET", "/nowhere")
        assert status == 404 and headers["x-request-id"]
        status, headers, data = _request(conn, "PUT", "/v1/files")
        assert status == 405 and headers["x-request-id"]

        # over 10 MB: 413 without invoking, and the connection stays usable
        calls = len(fakes.calls)
        big = b"\x00" * (API_GATEWAY_MAX_REQUEST_BYTES + 1)
        status, headers, data = _request(
            conn, "POST", "/v1/uploads/u/parts", big, {"Content-Type": "application/octet-stream"}
        )
        assert status == 413 and json.loads(data)["error"]["code"] == "request_too_large"
        assert headers["x-request-id"]
        assert len(fakes.calls) == calls
        status, _, _ = _request(conn, "GET", "/v1/files")
        assert status == 200
        assert conn.sock is sock  # one TCP connection throughout (HTTP/1.1 keep-alive)
    finally:
        conn.close()


def test_http_front_end_chunked_body(front: HttpFrontEnd, fakes: FakeFunctions) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        chunks = iter([b'{"purpose":', b' "batch"}'])
        status, _, _ = _request(
            conn,
            "POST",
            "/v1/files",
            chunks,
            {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        assert status == 200
        assert fakes.last_event["body"] == '{"purpose": "batch"}'

        calls = len(fakes.calls)
        too_big = iter([b"\x00" * (1024 * 1024)] * 11)
        status, headers, _ = _request(
            conn,
            "POST",
            "/v1/uploads/u/parts",
            too_big,
            {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        )
        assert status == 413 and headers["x-request-id"]
        assert len(fakes.calls) == calls
    finally:
        conn.close()


def test_http_front_end_handler_error(front: HttpFrontEnd, fakes: FakeFunctions) -> None:
    fakes.errors["files_list"] = ValueError("boom")
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
    try:
        status, headers, data = _request(conn, "GET", "/v1/files")
        assert status == 502
        assert b"Traceback" not in data and b"boom" not in data
        assert headers["x-request-id"]
    finally:
        conn.close()


def test_serialized_size_counts_base64_bodies_exactly() -> None:
    import base64
    import json as jsonlib

    from devserver.apigw import serialized_size

    for payload in (
        {"body": base64.b64encode(b"\x00\xff" * 1000).decode(), "isBase64Encoded": True, "h": {"a": "é"}},
        {"body": '{"x": "\\u00e9 \\"q\\""}', "isBase64Encoded": False},
        {"statusCode": 200, "body": None},
    ):
        assert serialized_size(payload) == len(jsonlib.dumps(payload, ensure_ascii=False).encode())


# -- bounded reading and ambiguous requests (raw sockets, a short read timeout) ------------

READ_TIMEOUT = 0.5  # the front end's; the test's own socket timeout is a few of these


@pytest.fixture
def strict_front(api: ApiGateway) -> Iterator[HttpFrontEnd]:
    with serve_http(api, read_timeout_seconds=READ_TIMEOUT) as server:
        yield server


def _connect(front: HttpFrontEnd) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=READ_TIMEOUT * 6)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _status_and_error(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return status, error


def test_an_http_09_request_line_is_answered_400_at_once(
    strict_front: HttpFrontEnd, fakes: FakeFunctions
) -> None:
    with _connect(strict_front) as sock:
        sock.sendall(b"GET /v1/files\r\n")  # no version, and no headers will follow
        started = time.monotonic()
        status, error = _status_and_error(_answer(sock))
    assert status == 400 and "HTTP/0.9" in error["message"]
    assert time.monotonic() - started < READ_TIMEOUT  # not after a timeout: at once
    assert fakes.calls == []


def test_a_body_shorter_than_its_content_length_is_answered_408_after_the_read_timeout(
    strict_front: HttpFrontEnd, fakes: FakeFunctions
) -> None:
    with _connect(strict_front) as sock:
        sock.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"purpose":'
        )
        status, error = _status_and_error(_answer(sock))
    assert status == 408 and error["code"] == "request_timeout"
    assert fakes.calls == []


def test_twenty_slow_clients_are_closed_after_the_read_timeout_while_others_are_served(
    strict_front: HttpFrontEnd,
) -> None:
    slow = [_connect(strict_front) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"GET /v1/fi")  # a request line that never ends
        conn = http.client.HTTPConnection("127.0.0.1", strict_front.port, timeout=READ_TIMEOUT * 6)
        try:
            assert _request(conn, "GET", "/v1/files")[0] == 200
        finally:
            conn.close()
        started = time.monotonic()
        assert [_answer(sock) for sock in slow] == [b""] * 20  # closed, each of them
        assert time.monotonic() - started < READ_TIMEOUT * 4
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5", b"", b"5 5", b"1" * 17])
def test_a_malformed_chunk_size_is_answered_400(
    strict_front: HttpFrontEnd, fakes: FakeFunctions, size: bytes
) -> None:
    with _connect(strict_front) as sock:
        sock.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
        )
        status, error = _status_and_error(_answer(sock))
    assert status == 400 and "chunk" in error["message"]
    assert fakes.calls == []


AMBIGUOUS_HEADS = {
    "two Authorization headers": b"Authorization: Bearer sk-one\r\nAuthorization: Bearer sk-two\r\n",
    "two different Content-Lengths": b"Content-Length: 2\r\nContent-Length: 3\r\n",
    "Content-Length and Transfer-Encoding": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    "a header line without a colon": b"X-Before: 1\r\nno colon here\r\nAuthorization: Bearer sk-one\r\n",
    "a NUL in a header value": b"Authorization: Bearer sk-\x00one\r\n",
    "a NUL in a header name": b"X-\x00Name: 1\r\n",
    "a folded header line": b"Authorization: Bearer sk-one\r\n  folded\r\n",
    "two Content-Types": b"Content-Type: application/json\r\nContent-Type: text/plain\r\n",
}


@pytest.mark.parametrize("head", AMBIGUOUS_HEADS.values(), ids=AMBIGUOUS_HEADS.keys())
def test_an_ambiguous_request_head_is_refused_not_guessed(
    strict_front: HttpFrontEnd, fakes: FakeFunctions, head: bytes
) -> None:
    with _connect(strict_front) as sock:
        sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}")
        status, error = _status_and_error(_answer(sock))
    assert status == 400 and error["type"] == "invalid_request_error"
    assert fakes.calls == []


def test_the_same_content_length_twice_is_not_ambiguous(
    strict_front: HttpFrontEnd, fakes: FakeFunctions
) -> None:
    with _connect(strict_front) as sock:
        sock.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert _answer(sock).startswith(b"HTTP/1.1 200 ")
    assert fakes.last_event["body"] == "{}"


def test_two_file_parts_in_one_upload_are_refused() -> None:
    from gateway.errors import InvalidRequestError
    from gateway.http import multipart

    body, content_type = multipart_body(
        fields={"purpose": "batch"},
        files={
            "file": ("a.jsonl", b"{}\n", "application/jsonl"),
            "file2": ("b.jsonl", b"{}\n", "application/jsonl"),
        },
    )
    with pytest.raises(InvalidRequestError, match="2 file parts") as refused:
        multipart.parse(body, multipart.boundary_of(content_type))
    assert refused.value.param == "file2"
    one_file, content_type = multipart_body(
        fields={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}\n", "application/jsonl")}
    )
    assert [part.name for part in multipart.parse(one_file, multipart.boundary_of(content_type))] == [
        "purpose",
        "file",
    ]


# -- each request's own log keys under concurrency -----------------------------------------


def test_concurrent_requests_log_their_own_function_name_and_correlation_id() -> None:
    from aws_lambda_powertools.logging import correlation_paths
    from gateway.observability import logger

    both_started = threading.Barrier(2, timeout=10)

    def function(name: str) -> Any:
        @logger.inject_lambda_context(
            correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
        )
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            both_started.wait()  # each request's keys are set before either logs
            logger.warning("failed")
            return {"statusCode": 200, "body": "{}"}

        return handler

    api = ApiGateway(handler_resolver=function)
    lines: list[dict[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    capture = Capture()
    capture.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(capture)
    answers: dict[str, HttpResponse] = {}
    try:
        requests = [
            threading.Thread(
                target=lambda: answers.__setitem__("keys_update", api.handle("POST", "/key/update"))
            ),
            threading.Thread(
                target=lambda: answers.__setitem__("keys_delete", api.handle("POST", "/key/delete"))
            ),
        ]
        for request in requests:
            request.start()
        for request in requests:
            request.join(10)
    finally:
        logger._logger.removeHandler(capture)
    assert len(lines) == 2
    logged = {line["function_name"]: line["correlation_id"] for line in lines}
    assert logged == {name: answer.header("x-request-id") for name, answer in answers.items()}


def test_a_multipart_request_passes_the_head_checks(strict_front: HttpFrontEnd, fakes: FakeFunctions) -> None:
    body, content_type = multipart_body(
        fields={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}\n", "application/jsonl")}
    )
    conn = http.client.HTTPConnection("127.0.0.1", strict_front.port, timeout=READ_TIMEOUT * 6)
    try:
        status, _, _ = _request(conn, "POST", "/v1/files", body, {"Content-Type": content_type})
    finally:
        conn.close()
    assert status == 200 and fakes.calls[-1][0] == "files_create"


def test_a_head_sent_a_byte_at_a_time_is_cut_off_after_the_read_timeout(strict_front: HttpFrontEnd) -> None:
    closed = threading.Event()
    with _connect(strict_front) as sock:
        sock.sendall(b"GET /v1/files HTTP/1.1\r\nHost: x\r\n")

        def trickle() -> None:  # a byte well within each read timeout, never the end of the head
            while not closed.wait(READ_TIMEOUT / 5):
                try:
                    sock.sendall(b"X")
                except OSError:
                    return

        sender = threading.Thread(target=trickle)
        started = time.monotonic()
        sender.start()
        try:
            answer = _answer(sock)
        except ConnectionResetError:
            answer = b""
        finally:
            closed.set()
            sender.join()
    assert answer == b""
    assert time.monotonic() - started < READ_TIMEOUT * 4


def test_an_idle_keep_alive_connection_outlives_the_read_timeout(strict_front: HttpFrontEnd) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", strict_front.port, timeout=READ_TIMEOUT * 6)
    try:
        assert _request(conn, "GET", "/v1/files")[0] == 200
        sock = conn.sock
        time.sleep(READ_TIMEOUT * 2)  # idle, between two requests: not a request that stalls
        assert _request(conn, "GET", "/v1/files")[0] == 200
        assert conn.sock is sock
    finally:
        conn.close()
