"""API Gateway (REST API, Lambda proxy integration) emulation over the shared route table.

`ApiGateway.handle()` takes one HTTP request and returns the HTTP response API Gateway
would send: it matches the request against `gateway.routes.ROUTES` (static segments beat
path parameters), enforces API Gateway's and Lambda's size limits, builds the proxy event
(devserver.events), invokes the route's handler with a Lambda context, and turns the
proxy result into a response. It does no socket I/O; devserver.server is the HTTP front
end. Handlers are imported lazily on the first request of their route (a cold start).

A Lambda execution environment serves one event at a time, and the handlers are written for
that: a route's resolver keeps the request's caller and event in its own attributes. The front
end serves requests in threads, so each function here is one environment: its requests take
turns, while different functions run at once.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from gateway.errors import error_envelope
from gateway.routes import (
    API_GATEWAY_MAX_REQUEST_BYTES,
    BINARY_MEDIA_TYPES,
    LAMBDA_MAX_REQUEST_BYTES,
    LAMBDA_MAX_RESPONSE_BYTES,
    REQUEST_TOO_LARGE_MESSAGE,
    ROUTES,
    Route,
)

from devserver.events import STAGE, HeaderInput, lambda_context, proxy_event
from devserver.function_logs import keys_per_thread

logger = logging.getLogger("devserver.apigw")

Handler = Callable[[dict[str, Any], Any], Any]
# Maps a function name to its handler; None means "not written yet" (answered with 501).
HandlerResolver = Callable[[str], Handler | None]

REQUEST_ID_HEADER = "x-request-id"
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

__all__ = [
    "ApiGateway",
    "Handler",
    "HandlerResolver",
    "HttpResponse",
    "RouteMatch",
    "Router",
    "import_handler",
    "invoke",
]


# Function name -> the lock of its one execution environment. Per process, as the handler
# modules are: every ApiGateway of the process calls the same module-level resolvers.
_ENVIRONMENTS: dict[str, threading.Lock] = {}
_ENVIRONMENTS_LOCK = threading.Lock()


def environment(function_name: str) -> threading.Lock:
    """Held while the function handles an event: its next event waits until this one has ended."""
    with _ENVIRONMENTS_LOCK:
        return _ENVIRONMENTS.setdefault(function_name, threading.Lock())


class HandlerImportError(Exception):
    """The handler module exists but failed to import (a Lambda init error)."""


def import_handler(function_name: str) -> Handler | None:
    """`handlers.<function_name>.handler`, or None when that module does not exist yet."""
    module_name = f"handlers.{function_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, "handlers"):
            return None
        raise HandlerImportError(f"{module_name} failed to import: {exc}") from exc
    except Exception as exc:
        raise HandlerImportError(f"{module_name} failed to import: {exc}") from exc
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise HandlerImportError(f"{module_name} has no callable 'handler'")
    return handler  # type: ignore[no-any-return]


def invoke(
    route_name: str, event: dict[str, Any], context: Any = None, *, routes: Sequence[Route] = ROUTES
) -> dict[str, Any]:
    """Invoke the real handler of `route_name` with `event`, like Lambda would.

    Returns the proxy result as the handler produced it. Raises LookupError for an unknown
    route or a handler that does not exist yet.
    """
    route = next((r for r in routes if r.name == route_name), None)
    if route is None:
        raise LookupError(f"unknown route {route_name!r}")
    handler = import_handler(route_name)
    if handler is None:
        raise LookupError(f"handlers.{route_name} does not exist yet")
    if context is None:
        context = lambda_context(route_name, memory_mb=route.memory_mb, timeout_seconds=route.timeout_seconds)
    with environment(route_name):
        result: dict[str, Any] = handler(event, context)
    return result


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)

    def header_values(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    resource: str  # the matched template, e.g. "/{provider}/v1/files/{file_id}"
    path_parameters: dict[str, str] | None


@dataclass(frozen=True)
class _Resource:
    template: str
    segments: tuple[str | None, ...]  # static text, or None for a {param} segment
    params: tuple[tuple[int, str], ...]  # (segment index, param name)
    methods: dict[str, Route]


def _split(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else path.split("/")


class Router:
    """Resource matching like API Gateway: a static segment beats a path parameter.

    Resources with the same number of segments are tried in order of specificity (static
    before {param}, left to right), so "/v1/files" is the static resource and never the
    provider "v1"; all-static resources are a single dict lookup.
    """

    def __init__(self, routes: Iterable[Route] = ROUTES) -> None:
        methods_by_template: dict[str, dict[str, Route]] = {}
        for route in routes:
            for template in route.paths:
                methods = methods_by_template.setdefault(template, {})
                if route.method in methods:
                    raise ValueError(f"two routes for {route.method} {template}")
                methods[route.method] = route
        self._static: dict[str, _Resource] = {}
        by_length: dict[int, list[_Resource]] = {}
        for template, methods in methods_by_template.items():
            raw = _split(template)
            segments = tuple(None if s.startswith("{") and s.endswith("}") else s for s in raw)
            params = tuple((i, s[1:-1]) for i, s in enumerate(raw) if segments[i] is None)
            resource = _Resource(template, segments, params, methods)
            if not params:
                self._static[template] = resource
            else:
                by_length.setdefault(len(segments), []).append(resource)
        self._dynamic = {
            length: sorted(resources, key=lambda r: tuple(s is None for s in r.segments))
            for length, resources in by_length.items()
        }
        self.templates = tuple(methods_by_template)

    def resolve(self, path: str) -> tuple[_Resource, dict[str, str] | None] | None:
        static = self._static.get(path)
        if static is not None:
            return static, None
        parts = _split(path)
        for resource in self._dynamic.get(len(parts), ()):
            for part, segment in zip(parts, resource.segments, strict=True):
                if segment is None:
                    if not part:
                        break
                elif part != segment:
                    break
            else:
                return resource, {name: unquote(parts[i]) for i, name in resource.params}
        return None

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route serving `method path`, or None (see allowed_methods for 404 vs 405)."""
        found = self.resolve(path)
        if found is None:
            return None
        resource, params = found
        route = resource.methods.get(method.upper())
        if route is None:
            return None
        return RouteMatch(route, resource.template, params)

    def allowed_methods(self, path: str) -> tuple[str, ...]:
        found = self.resolve(path)
        return tuple(sorted(found[0].methods)) if found else ()


class ApiGateway:
    """One REST API stage in front of one Lambda function per route."""

    def __init__(
        self,
        routes: Sequence[Route] = ROUTES,
        *,
        handler_resolver: HandlerResolver | None = None,
        stage: str = STAGE,
        binary_media_types: Sequence[str] = BINARY_MEDIA_TYPES,
        max_request_bytes: int = API_GATEWAY_MAX_REQUEST_BYTES,
        max_event_bytes: int = LAMBDA_MAX_REQUEST_BYTES,
        max_response_bytes: int = LAMBDA_MAX_RESPONSE_BYTES,
    ) -> None:
        self.routes = tuple(routes)
        self.router = Router(self.routes)
        self.stage = stage
        self.binary_media_types = tuple(binary_media_types)
        self.max_request_bytes = max_request_bytes
        self.max_event_bytes = max_event_bytes
        self.max_response_bytes = max_response_bytes
        self._resolver: HandlerResolver = handler_resolver or import_handler
        self._handlers: dict[str, Handler] = {}
        self._routes_by_name = {route.name: route for route in self.routes}
        self._lock = threading.Lock()
        keys_per_thread()  # concurrent requests, one process: each request's own log keys

    # -- handlers ---------------------------------------------------------------------

    def handler_for(self, route_name: str) -> Handler | None:
        """The route's handler, imported on first use; None while it does not exist."""
        handler = self._handlers.get(route_name)
        if handler is None:
            with self._lock:  # one cold start per function, even under concurrent requests
                handler = self._handlers.get(route_name)
                if handler is None:
                    handler = self._resolver(route_name)
                    if handler is None:
                        return None  # not cached: the module may be written later
                    self._handlers[route_name] = handler
        return handler

    def _run(self, route_name: str, handler: Handler, event: dict[str, Any], context: Any) -> Any:
        with environment(route_name):
            return handler(event, context)

    def preload(self) -> list[str]:
        """Import every handler now (no cold starts later); returns the missing routes."""
        return [route.name for route in self.routes if self.handler_for(route.name) is None]

    def invoke(self, route_name: str, event: dict[str, Any], context: Any = None) -> Any:
        """Call the route's handler directly with `event` (no limits, no conversion)."""
        route = self._routes_by_name[route_name]
        handler = self.handler_for(route_name)
        if handler is None:
            raise LookupError(f"handlers.{route_name} does not exist yet")
        if context is None:
            context = lambda_context(
                route.name, memory_mb=route.memory_mb, timeout_seconds=route.timeout_seconds
            )
        return self._run(route_name, handler, event, context)

    # -- requests ---------------------------------------------------------------------

    def event_for(
        self,
        method: str,
        target: str,
        *,
        headers: HeaderInput | None = None,
        body: bytes | str | None = None,
        source_ip: str = "127.0.0.1",
        request_id: str | None = None,
    ) -> tuple[RouteMatch, dict[str, Any]]:
        """The route and proxy event API Gateway would produce for `method target`.

        Raises LookupError when no route serves the request.
        """
        path, _, query = target.partition("?")
        match = self.router.match(method, path)
        if match is None:
            raise LookupError(f"no route for {method} {path}")
        event = self._event(match, method, path, query, headers, body, source_ip, request_id)
        return match, event

    def _event(
        self,
        match: RouteMatch,
        method: str,
        path: str,
        query: str,
        headers: HeaderInput | None,
        body: bytes | str | None,
        source_ip: str,
        request_id: str | None,
    ) -> dict[str, Any]:
        return proxy_event(
            method,
            path,
            resource=match.resource,
            path_parameters=match.path_parameters,
            query=query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            stage=self.stage,
            binary_media_types=self.binary_media_types,
        )

    def handle(
        self,
        method: str,
        target: str,
        headers: HeaderInput | None = None,
        body: bytes = b"",
        *,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        """Serve one request: `target` is the request target, path plus optional query."""
        method = method.upper()
        request_id = str(uuid.uuid4())
        path, _, query = target.partition("?")
        match = self.router.match(method, path)
        if match is None:
            allowed = self.router.allowed_methods(path)
            if not allowed:
                return self.error_response(
                    404, f"Unknown request URL: {method} {path}.", "unknown_url", request_id
                )
            return self.error_response(
                405,
                f"Method {method} is not allowed for {path}. Allowed: {', '.join(allowed)}.",
                "method_not_allowed",
                request_id,
                extra_headers=[("Allow", ", ".join(allowed))],
            )
        if len(body) > self.max_request_bytes:
            return self.request_too_large(len(body), request_id)

        route = match.route
        event = self._event(match, method, path, query, headers, body, source_ip, request_id)
        # Below 1/8 of the limit the event cannot reach it (even text escaping all of it
        # as \uXXXX stays under 6x), so only large bodies pay for serializing the event.
        if len(body) > self.max_event_bytes // 8:
            event_size = serialized_size(event)
            if event_size > self.max_event_bytes:
                # Lambda refuses the invoke; API Gateway answers with its REQUEST_TOO_LARGE
                # gateway response, which the stack customizes to this same envelope.
                logger.info("%s: event of %d bytes over the Lambda limit", route.name, event_size)
                return self.request_too_large(len(body), request_id)

        try:
            handler = self.handler_for(route.name)
        except Exception:
            logger.exception("%s: handler init failed (request %s)", route.name, request_id)
            return self.error_response(502, "Internal server error", "lambda_error", request_id)
        if handler is None:
            return self.error_response(
                501,
                f"The handler for {route.method} {route.path} (functions/handlers/{route.name}.py) "
                "is not implemented yet.",
                "not_implemented",
                request_id,
            )

        context = lambda_context(route.name, memory_mb=route.memory_mb, timeout_seconds=route.timeout_seconds)
        try:
            result = self._run(route.name, handler, event, context)
        except Exception:
            logger.exception("%s: handler raised (request %s)", route.name, request_id)
            return self.error_response(502, "Internal server error", "lambda_error", request_id)
        return self.proxy_response(route.name, result, request_id)

    def proxy_response(self, function_name: str, result: Any, request_id: str) -> HttpResponse:
        """Turn a Lambda proxy result into the HTTP response API Gateway would send."""
        try:
            # what the Lambda runtime serializes (json.dumps, ASCII) and returns
            size = serialized_size(result, ensure_ascii=True)
        except (TypeError, ValueError) as exc:
            logger.error("%s: result is not JSON serializable (%s)", function_name, exc)
            return self.error_response(502, "Internal server error", "lambda_error", request_id)
        if size > self.max_response_bytes:
            logger.error(
                "%s: response payload of %d bytes exceeds the Lambda limit of %d",
                function_name,
                size,
                self.max_response_bytes,
            )
            return self.error_response(
                502,
                f"The response of {size} bytes exceeds the {self.max_response_bytes}-byte "
                "Lambda response payload limit.",
                "response_too_large",
                request_id,
            )
        try:
            status, headers, body = _parse_proxy_result(result)
        except ValueError as exc:
            logger.error("%s: malformed Lambda proxy response: %s", function_name, exc)
            return self.error_response(502, "Internal server error", "malformed_lambda_response", request_id)

        names = {name.lower() for name, _ in headers}
        if "content-type" not in names and body:
            headers.append(("Content-Type", "application/json"))
        if REQUEST_ID_HEADER not in names:
            headers.append((REQUEST_ID_HEADER, request_id))
        headers.append(("x-amzn-RequestId", request_id))
        return HttpResponse(status, headers, body)

    def request_too_large(self, size: int | None, request_id: str | None = None) -> HttpResponse:
        """413 for a body over API Gateway's or Lambda's payload limit (`size` None: unknown,
        chunked): the message is the stack's REQUEST_TOO_LARGE gateway response, which names the
        Uploads API and the largest part size."""
        logger.debug("request body of %s bytes refused", size)
        return self.error_response(
            413,
            REQUEST_TOO_LARGE_MESSAGE,
            "request_too_large",
            request_id or str(uuid.uuid4()),
            error_type="invalid_request_error",
        )

    def error_response(
        self,
        status: int,
        message: str,
        code: str,
        request_id: str | None = None,
        *,
        error_type: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> HttpResponse:
        """An OpenAI error envelope answered by the gateway itself (no handler ran)."""
        if error_type is None:
            error_type = "invalid_request_error" if status < 500 else "server_error"
        request_id = request_id or str(uuid.uuid4())
        body = json.dumps(error_envelope(message, error_type, None, code)).encode()
        headers = [
            ("Content-Type", "application/json"),
            *extra_headers,
            (REQUEST_ID_HEADER, request_id),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", HTTPStatus(status).phrase.replace(" ", "") + "Exception"),
        ]
        return HttpResponse(status, headers, body)


def _parse_proxy_result(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    if not isinstance(result, dict):
        raise ValueError(f"result is a {type(result).__name__}, not an object")
    raw_status = result.get("statusCode")
    if isinstance(raw_status, bool) or raw_status is None:
        raise ValueError("no statusCode")
    try:
        status = int(raw_status)
    except (TypeError, ValueError):
        raise ValueError(f"statusCode {raw_status!r} is not an integer") from None
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} out of range")

    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise ValueError("headers and multiValueHeaders must be objects")
    headers: list[tuple[str, str]] = []
    in_multi: set[str] = set()
    # API Gateway merges both; a name given in multiValueHeaders takes its values from there.
    for name, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{name!r}] is not a list")
        if name.lower() in _HOP_BY_HOP:
            continue
        in_multi.add(name.lower())
        headers.extend((name, _header_value(value)) for value in values)
    for name, value in single.items():
        if name.lower() in _HOP_BY_HOP or name.lower() in in_multi:
            continue
        headers.append((name, _header_value(value)))

    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        raise ValueError(f"body is a {type(raw_body).__name__}, not a string")
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("isBase64Encoded but the body is not valid base64") from None
    else:
        body = raw_body.encode()
    return status, headers, body


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ValueError("header value contains a line break")
    return text


def serialized_size(payload: Any, *, ensure_ascii: bool = False) -> int:
    """Bytes of `payload` as JSON (what Lambda counts against its limits).

    A base64 body needs no escaping, so its length is added to the size of the payload
    without it: a multi-megabyte upload part is not serialized just to be measured.
    """
    body = payload.get("body") if isinstance(payload, dict) else None
    if isinstance(body, str) and payload.get("isBase64Encoded"):
        return len(json.dumps({**payload, "body": ""}, ensure_ascii=ensure_ascii).encode()) + len(body)
    return len(json.dumps(payload, ensure_ascii=ensure_ascii).encode())
