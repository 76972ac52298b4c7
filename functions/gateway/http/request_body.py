"""Read a request body the way the route takes it, or refuse it with a 4xx naming the problem.

Every route with a body takes either JSON or multipart/form-data. Media types compare
case-insensitively and may carry parameters (`Application/JSON; charset=utf-8`). A body with
no Content-Type, or sent as `application/x-www-form-urlencoded` (what `curl -d` sends unless
told otherwise), is read as JSON when it parses as a JSON object, as many API gateways do;
any other form body or media type gets a 415 naming the Content-Type to send.
"""

from __future__ import annotations

import binascii
import json
from typing import Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import UploadFile

from gateway.errors import InvalidRequestError, UnsupportedMediaTypeError
from gateway.http import multipart

BodyKind = Literal["json", "multipart"]

JSON = "application/json"
FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# Deeper than any request the gateway takes (key metadata is bounded well below this), and
# shallow enough that no validator or DynamoDB marshaller recurses into trouble.
MAX_JSON_DEPTH = 32


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _content_type(event: dict[str, Any]) -> str:
    headers = event.get("headers") or {}
    return next((str(v) for k, v in headers.items() if k.lower() == "content-type" and v), "")


def _raw_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import pybase64  # only the routes taking files meet a base64 body

        try:
            # base64.b64decode(validate=True)'s rules, with SIMD: a 4 MiB upload part is 5.6 MB of
            # base64, about 12 ms of CPU in CPython's decoder and 1 ms in pybase64's
            return pybase64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("The request body is not valid base64.", code="invalid_body") from None
    return str(body).encode("utf-8", errors="surrogateescape")


def read(event: dict[str, Any], kind: BodyKind) -> dict[str, Any]:
    """The body as the fields the route's validation reads."""
    content_type = _content_type(event)
    if kind == "json":
        return _json_object(content_type, _raw_bytes(event))
    return _multipart_fields(content_type, _raw_bytes(event))


def _unsupported(content_type: str, expected: str) -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError(
        f"Unsupported Content-Type '{content_type[:100]}': send the body as 'Content-Type: {expected}'.",
        param="Content-Type",
    )


def _json_object(content_type: str, raw: bytes) -> dict[str, Any]:
    kind = media_type(content_type)
    lenient = kind in ("", FORM_URLENCODED)
    if not lenient and kind != JSON and not kind.endswith("+json"):
        raise _unsupported(content_type, JSON)
    if not raw.strip():
        raise InvalidRequestError("The request body is empty: send a JSON object.", code="empty_body")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if lenient and kind:
            raise _unsupported(content_type, JSON) from None
        raise InvalidRequestError("The request body is not valid JSON.", code="invalid_json") from None
    except RecursionError:  # nested past the interpreter's limit
        raise _too_deep() from None
    if not isinstance(value, dict):
        if lenient and kind:
            raise _unsupported(content_type, JSON)
        raise InvalidRequestError(
            f"The request body must be a JSON object, not {_json_kind(value)}.", code="invalid_body"
        )
    if _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(
        f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.", code="invalid_body"
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _multipart_fields(content_type: str, raw: bytes) -> dict[str, Any]:
    if media_type(content_type) != MULTIPART:
        raise _unsupported(content_type, MULTIPART)
    parts = multipart.parse(raw, multipart.boundary_of(content_type))
    fields: dict[str, Any] = {}
    for part in parts:
        value: Any
        if part.filename is not None:
            value = UploadFile(content=part.content, filename=part.filename, content_type=part.content_type)
        else:
            try:
                value = part.content.decode("utf-8")
            except UnicodeDecodeError:
                message = f"The form field '{part.name}' is not valid UTF-8."
                raise InvalidRequestError(message, param=part.name, code="invalid_multipart") from None
        existing = fields.get(part.name)
        if existing is None:
            fields[part.name] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            fields[part.name] = [existing, value]
    return fields
