"""The resolver every handler uses: prefixes, auth, errors and request ids in one place."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import File, Form
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from gateway import routes
from gateway.errors import (
    GatewayError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
    error_envelope,
)
from gateway.http import request_body, upstream_ids
from gateway.http.request_body import BodyKind
from gateway.observability import logger, metric_names, tracing
from gateway.observability.instrument import instrumented
from gateway.observability.metrics import emit
from gateway.runtime.snapstart import register_hooks

if TYPE_CHECKING:
    from gateway.http.auth import Caller

F = TypeVar("F", bound=Callable[..., Any])

REQUEST_ID_HEADER = "x-request-id"


def _prefix_pattern() -> re.Pattern[str]:
    """Every prefix of the route table (/v1, /{provider}/v1, /{provider}/openai, ...), longest
    first: each is served by the same code as the bare path."""
    forms = sorted((prefix for prefix in routes.PREFIXES if prefix), key=len, reverse=True)
    any_segment = re.escape("{" + routes.PROVIDER_PATH_PARAM + "}")
    alternatives = "|".join(re.escape(form).replace(any_segment, "[^/]+") for form in forms)
    return re.compile(f"^(?:{alternatives})(?=/)")


_STRIP_PREFIXES: list[str | re.Pattern[str]] = [_prefix_pattern()]


def error_response(error: GatewayError) -> Response:
    return Response(
        status_code=error.status_code,
        content_type="application/json",
        body=json.dumps(error.envelope()),
        headers=error.response_headers() or None,
    )


def _validation_error(exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if isinstance(part, str | int)]
    # loc is like ("body", "metadata") or ("query", "limit"); the param is what follows.
    param_parts = (
        location[1:] if location and location[0] in {"body", "query", "path", "form", "header"} else location
    )
    param = ".".join(param_parts) or None
    kind, message = first.get("type", ""), first.get("msg", "Invalid request.")
    message = message.removeprefix("Value error, ")
    if kind == "missing":
        text = f"Missing required parameter: '{param}'."
    elif kind == "json_invalid":
        text = "The request body is not valid JSON."
        param = None
    else:
        text = f"Invalid value for '{param}': {message}." if param else f"{message}."
    # a model's own check may name the error's code (PydanticCustomError's context)
    code = (first.get("ctx") or {}).get("code")
    return error_response(InvalidRequestError(text, param=param, code=str(code) if code else None))


_BODY_CONTEXT_KEY = "request_body"


class _ReadBody(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, fed the body gateway.http.request_body read before it ran
    (its own reader takes media types case-sensitively and multipart bodies leniently)."""

    def _get_body(self, app: Any) -> dict[str, Any]:
        body: dict[str, Any] = app.context.get(_BODY_CONTEXT_KEY) or {}
        return body


def _body_kind(func: Callable[..., Any]) -> BodyKind | None:
    """What the endpoint's signature takes: a pydantic model (JSON) or File/Form fields."""
    kind: BodyKind | None = None
    hints = get_type_hints(func, include_extras=True)
    hints.pop("return", None)
    for hint in hints.values():
        if get_origin(hint) is Annotated and any(isinstance(a, File | Form) for a in get_args(hint)[1:]):
            return "multipart"
        if inspect.isclass(hint) and issubclass(hint, BaseModel):
            kind = "json"
    return kind


class GatewayApp:
    """One route's resolver. Handlers register one function with `@app.endpoint`."""

    def __init__(self, route_name: str) -> None:
        self.route = routes.route(route_name)
        if self.route.authenticated:
            # Here rather than at the top: authentication (Secrets Manager and DynamoDB, so
            # boto3) and provider choice (the settings) are what an unauthenticated route such
            # as /health must not pay for at its cold start. Every other function imports them
            # with its handler module, as before.
            from gateway.http import auth, provider_choice  # noqa: F401
        if routes.SECRET_PROVIDER_KEYS in self.route.grants:
            # The provider client (httpx) with the handler, in the init phase, for the functions
            # that call a provider on their first request; the others never load httpx.
            from gateway.providers.openai import client  # noqa: F401
        self.resolver = APIGatewayRestResolver(enable_validation=True, strip_prefixes=_STRIP_PREFIXES)
        self.resolver._request_validation_middleware = _ReadBody()
        self.body_kind: BodyKind | None = None
        self.resolver.exception_handler(GatewayError)(error_response)
        self.resolver.exception_handler(RequestValidationError)(_validation_error)
        self.resolver.exception_handler(Exception)(self._unexpected)
        self.resolver.not_found(self._not_found)
        self.lambda_handler = instrumented(
            self._handle, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
        )
        register_hooks(self.route)  # with SnapStart only: prime before the snapshot

    def endpoint(self, func: F) -> F:
        path = re.sub(r"\{(\w+)\}", r"<\1>", self.route.path)
        self.body_kind = _body_kind(func)
        self.resolver.route(path, self.route.method)(func)
        return func

    # What the endpoint function reads -----------------------------------------------------
    @property
    def caller(self) -> Caller:
        caller: Caller = self.resolver.context["caller"]
        return caller

    def provider_hint(self, body_field: str | None = None) -> str | None:
        from gateway.http.provider_choice import requested_provider

        event = self.resolver.current_event
        return requested_provider(
            path_parameters=event.path_parameters,
            headers=event.headers,
            query=event.query_string_parameters,
            body_field=body_field,
        )

    # Lambda entry point -------------------------------------------------------------------
    def _handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
        upstream_ids.start_request()
        tracing.annotate_request(request_id, _path_gateway_id(event))
        azure_signed = False
        try:
            if self.route.authenticated:
                from gateway.http import provider_choice  # loaded by __init__: a dict lookup
                from gateway.http.auth import authenticate

                caller = authenticate(event.get("headers") or {})
                logger.append_keys(key_id=caller.key_id)  # on every line of this request; never the key
                azure_signed = provider_choice.check_azure_signs(event)
                _check_addressed_provider(caller, event)
                self.resolver.append_context(caller=caller)
            if self.body_kind is not None:
                self.resolver.append_context(**{_BODY_CONTEXT_KEY: request_body.read(event, self.body_kind)})
            result = self.resolver.resolve(event, context)
            if self.route.creates and result.get("statusCode") == 200 and _azure_dated(event):
                result["statusCode"] = 201  # what Azure's dated API answers a create with (v1: 200)
        except GatewayError as exc:
            result = _plain(exc)
        except Exception as exc:  # authentication reads Secrets Manager and DynamoDB
            result = _plain(_unexpected_error(exc))
        finally:
            if azure_signed:
                provider_choice.forget_azure_signs()
        # One line per request; the correlation id on it is the request id of x-request-id.
        status = int(result.get("statusCode") or 500)
        logger.info("request", extra={"route": self.route.name, "status": status})
        emit(metric_names.REQUESTS, route=self.route.name, status_class=f"{status // 100}xx")
        if self.route.creates and status < 300 and tracing.enabled():
            tracing.about(_created_id(result))
        return _with_request_id(result, request_id)

    def _unexpected(self, exc: Exception) -> Response:
        return error_response(_unexpected_error(exc))

    def _not_found(self, exc: Exception) -> Response:
        event = self.resolver.current_event
        return error_response(
            NotFoundError(f"Unknown request URL: {event.http_method} {event.path}.", code="unknown_url")
        )


def _unexpected_error(exc: Exception) -> GatewayError:
    """An exception no layer turned into a GatewayError. A failing AWS call (throttled, or a
    service unavailable) is a 503 the client may retry; anything else is the gateway's bug."""
    if _aws_error_code(exc) == "ValidationException":
        # DynamoDB refused a value taken from the request (a key too long, a map nested too
        # deep): retrying cannot help, so not a 503.
        logger.exception("AWS refused a value of the request")
        return InvalidRequestError("The request holds a value the gateway cannot store or look up.")
    if type(exc).__module__.split(".")[0] in ("botocore", "boto3"):
        logger.exception("AWS service call failed")
        return ServiceUnavailableError(
            "A service the gateway stores its data in is unavailable; retry the request."
        )
    logger.exception("unhandled error")
    return InternalError("The gateway failed to process the request.")


def _aws_error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return str(error.get("Code")) if isinstance(error, dict) else None


def _check_addressed_provider(caller: Caller, event: dict[str, Any]) -> None:
    """A key limited to some providers gets 403 whenever the request names another one
    (path prefix, header or query), on every route, before any id is looked up."""
    if caller.providers is None:
        return
    from gateway.http.provider_choice import requested_provider

    provider = requested_provider(
        path_parameters=event.get("pathParameters"),
        headers=event.get("headers"),
        query=event.get("queryStringParameters"),
    )
    if provider is not None:
        caller.require_provider(provider)


def _path_gateway_id(event: dict[str, Any]) -> str | None:
    """The gateway id a path names (file_id, batch_id, ...), when it is one."""
    for name, value in (event.get("pathParameters") or {}).items():
        if name.endswith("_id") and tracing.is_gateway_id(value):
            return str(value)
    return None


def _created_id(result: dict[str, Any]) -> str | None:
    try:
        body = json.loads(result.get("body") or "")
    except (TypeError, ValueError):
        return None
    return body.get("id") if isinstance(body, dict) else None


def _azure_dated(event: dict[str, Any]) -> bool:
    return routes.azure_form(event.get("resource")) == routes.AZURE_DATED_PREFIX


def _plain(error: GatewayError) -> dict[str, Any]:
    """A proxy result for errors raised before the resolver runs (authentication)."""
    headers = {"Content-Type": "application/json", **error.response_headers()}
    return {
        "statusCode": error.status_code,
        "body": json.dumps(error.envelope()),
        "isBase64Encoded": False,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
    }


def _with_request_id(result: dict[str, Any], request_id: str) -> dict[str, Any]:
    multi = result.get("multiValueHeaders")
    if multi is not None:
        multi[REQUEST_ID_HEADER] = [request_id]
    else:
        result.setdefault("headers", {})[REQUEST_ID_HEADER] = request_id
    return result


__all__ = ["GatewayApp", "error_envelope", "error_response"]
