"""Builders for what a Lambda function behind API Gateway receives.

`proxy_event()` builds an API Gateway REST API (payload format 1.0) Lambda proxy event,
the same shape API Gateway sends, and `lambda_context()` a Lambda context object with
everything Powertools' `inject_lambda_context` reads. The local server (devserver.apigw)
and the tests share them, so a handler sees identical input in both.
"""

from __future__ import annotations

import base64
import json as jsonlib
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import pybase64
from gateway.routes import BINARY_MEDIA_TYPES

STAGE = "prod"
ACCOUNT_ID = "123456789012"
API_ID = "local"
DEFAULT_REGION = "us-east-1"

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]
QueryInput = str | Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]

__all__ = [
    "ACCOUNT_ID",
    "API_ID",
    "STAGE",
    "LambdaContext",
    "is_binary_media_type",
    "lambda_context",
    "media_type",
    "multipart_body",
    "proxy_event",
]


def media_type(content_type: str | None) -> str:
    """'multipart/form-data; boundary=x' -> 'multipart/form-data' (lower case)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_binary_media_type(
    content_type: str | None, binary_media_types: Iterable[str] = BINARY_MEDIA_TYPES
) -> bool:
    """Whether API Gateway base64-encodes a body of this Content-Type for Lambda."""
    kind = media_type(content_type)
    return bool(kind) and kind in binary_media_types


def _header_pairs(headers: HeaderInput | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(name), str(value)) for name, value in headers.items()]
    return [(str(name), str(value)) for name, value in headers]


def _query_pairs(query: QueryInput | None) -> list[tuple[str, str]]:
    if query is None:
        return []
    if isinstance(query, str):
        return parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if isinstance(query, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in query.items():
            if isinstance(value, str):
                pairs.append((name, value))
            else:
                pairs.extend((name, item) for item in value)
        return pairs
    return [(str(name), str(value)) for name, value in query]


def _single_and_multi(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway's two views: the last value per name, and every value per name."""
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _request_time(epoch: float) -> str:
    # API Gateway's format: "27/Nov/2025:03:20:00 +0000"
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def proxy_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: QueryInput | None = None,
    headers: HeaderInput | None = None,
    body: bytes | str | None = None,
    json: Any = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    stage: str = STAGE,
    domain_name: str | None = None,
    binary_media_types: Iterable[str] = BINARY_MEDIA_TYPES,
) -> dict[str, Any]:
    """An API Gateway REST API Lambda proxy event (payload format 1.0).

    `path` may carry a query string ("/v1/files?limit=2"); `query` adds to it. `resource`
    is the matched resource template (default: `path` itself). `headers` keep the
    caller's name casing; `json` serializes a body and sets Content-Type unless given.
    A body whose Content-Type is one of `binary_media_types` is base64-encoded, like
    API Gateway does; any other body is passed as text.
    """
    method = method.upper()
    path, _, raw_query = path.partition("?")
    query_pairs = _query_pairs(raw_query) + _query_pairs(query)
    header_pairs = _header_pairs(headers)

    if json is not None:
        if body is not None:
            raise ValueError("pass body or json, not both")
        body = jsonlib.dumps(json)
        if not any(name.lower() == "content-type" for name, _ in header_pairs):
            header_pairs.append(("Content-Type", "application/json"))

    content_type = None
    host = None
    user_agent = None
    for name, value in header_pairs:
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif lower == "host":
            host = value
        elif lower == "user-agent":
            user_agent = value

    event_body: str | None
    if body is None or len(body) == 0:
        event_body, encoded = None, False
    elif is_binary_media_type(content_type, binary_media_types):
        raw = body.encode() if isinstance(body, str) else body
        # SIMD base64 (pybase64, as the handlers decode it): API Gateway's own encoding costs
        # the local server's CPU, not a Lambda's, so it should not weigh on an upload's speed
        event_body, encoded = pybase64.b64encode_as_string(raw), True
    else:
        event_body = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
        encoded = False

    single_headers, multi_headers = _single_and_multi(header_pairs)
    single_query, multi_query = _single_and_multi(query_pairs)
    resource = resource or path
    request_id = request_id or str(uuid.uuid4())
    now = time.time()
    domain = domain_name or host or "localhost"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("="),
            "requestTime": _request_time(now),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain.split(".", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": domain,
            "apiId": API_ID,
        },
        "body": event_body,
        "isBase64Encoded": encoded,
    }


class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_mb: int = 512,
        timeout_seconds: float = 29,
        request_id: str | None = None,
        region: str | None = None,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        region = region or DEFAULT_REGION
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def lambda_context(
    function_name: str,
    *,
    memory_mb: int = 512,
    timeout_seconds: float = 29,
    request_id: str | None = None,
) -> LambdaContext:
    """A fresh Lambda context for one invocation of `function_name`."""
    return LambdaContext(
        function_name, memory_mb=memory_mb, timeout_seconds=timeout_seconds, request_id=request_id
    )


def multipart_body(
    fields: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
    *,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type header value.

    `files` maps a field name to (filename, content, content type).
    """
    boundary = boundary or uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, content, content_type) in (files or {}).items():
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
