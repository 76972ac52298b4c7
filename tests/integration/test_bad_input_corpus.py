"""Bad input, as a careless or hostile client sends it, through the local server to the real
handlers: every answer is a 4xx OpenAI envelope with the expected status (and code and param
where the gateway defines them), never a 5xx, never a stack trace.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from devserver.apigw import invoke
from devserver.events import proxy_event
from devserver.server import LocalGateway
from tests.integration.helpers import client, upload_batch_file

JSON = {"Content-Type": "application/json"}
BOUNDARY = "corpus-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
LONG = "a" * 3000  # longer than any id; DynamoDB refuses keys over 2,048 bytes
DEEP = ("[" * 1000 + "]" * 1000).encode()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def form(*parts: bytes, close: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def field_part(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file_part(name: str = "file", filename: bytes = b"in.jsonl", content: bytes = b'{"a": 1}\n') -> bytes:
    return (
        b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: application/jsonl\r\n\r\n" + content
    )


PURPOSE = field_part("purpose", b"batch")
GOOD_FILE_FORM = form(PURPOSE, file_part())


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    param: str | None = None
    check_param: bool = False  # param asserted even when None


def J(value: Any) -> bytes:
    return json.dumps(value).encode()


JSON_ROUTES = {
    "batches_create": (
        "/v1/batches",
        {"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    ),
    "uploads_create": (
        "/v1/uploads",
        {"bytes": 10, "filename": "a.jsonl", "mime_type": "application/jsonl", "purpose": "batch"},
    ),
    "uploads_complete": ("/v1/uploads/{upload_id}/complete", {"part_ids": []}),
    "keys_generate": ("/key/generate", {"key_alias": None}),
    "keys_update": ("/key/update", {"key": "key_doesnotexist"}),
    "keys_delete": ("/key/delete", {"keys": ["key_doesnotexist"]}),
}
MULTIPART_ROUTES = {"files_create": "/v1/files", "uploads_add_part": "/v1/uploads/{upload_id}/parts"}


def _json_route_cases() -> Iterator[Case]:
    for route, (path, good) in JSON_ROUTES.items():
        media = "unsupported_media_type"
        yield Case(
            f"{route}-text-plain",
            "POST",
            path,
            415,
            J(good),
            {"Content-Type": "text/plain"},
            media,
            "Content-Type",
        )
        yield Case(
            f"{route}-xml",
            "POST",
            path,
            415,
            b"<a/>",
            {"Content-Type": "application/xml"},
            media,
            "Content-Type",
        )
        yield Case(
            f"{route}-real-form",
            "POST",
            path,
            415,
            b"a=b&c=d",
            {"Content-Type": "application/x-www-form-urlencoded"},
            media,
            "Content-Type",
        )
        yield Case(
            f"{route}-octet-stream",
            "POST",
            path,
            415,
            J(good),
            {"Content-Type": "application/octet-stream"},
            media,
        )
        yield Case(f"{route}-empty", "POST", path, 400, b"", JSON, "empty_body", check_param=True)
        yield Case(f"{route}-array", "POST", path, 400, b"[]", JSON, "invalid_body")
        yield Case(f"{route}-null", "POST", path, 400, b"null", JSON, "invalid_body")
        yield Case(f"{route}-string", "POST", path, 400, b'"x"', JSON, "invalid_body")
        yield Case(f"{route}-broken", "POST", path, 400, b'{"a": ', JSON, "invalid_json")
        yield Case(f"{route}-1000-deep", "POST", path, 400, DEEP, JSON, "invalid_body")
        yield Case(f"{route}-deep-object", "POST", path, 400, J(nested(40)), JSON, "invalid_body")
        yield Case(f"{route}-not-utf8", "POST", path, 400, b'\xff\xfe{"a": 1}', JSON, "invalid_json")


def _multipart_route_cases() -> Iterator[Case]:
    bad = "invalid_multipart"
    for route, path in MULTIPART_ROUTES.items():
        name = "file" if route == "files_create" else "data"
        good = form(PURPOSE, file_part(name))
        media = "unsupported_media_type"
        yield Case(f"{route}-json", "POST", path, 415, b"{}", JSON, media, "Content-Type")
        yield Case(f"{route}-text-plain", "POST", path, 415, good, {"Content-Type": "text/plain"}, media)
        yield Case(
            f"{route}-no-boundary", "POST", path, 400, good, {"Content-Type": "multipart/form-data"}, bad
        )
        yield Case(
            f"{route}-no-closing-boundary",
            "POST",
            path,
            400,
            form(PURPOSE, file_part(name), close=False),
            MULTIPART,
            bad,
        )
        yield Case(f"{route}-cut-in-file", "POST", path, 400, good[: good.index(b'{"a"') + 3], MULTIPART, bad)
        yield Case(
            f"{route}-cut-in-headers", "POST", path, 400, good[: good.index(b"filename") + 4], MULTIPART, bad
        )
        yield Case(
            f"{route}-header-not-utf8",
            "POST",
            path,
            400,
            form(PURPOSE, file_part(name, b"a\xff.jsonl")),
            MULTIPART,
            bad,
        )
        yield Case(
            f"{route}-other-boundary",
            "POST",
            path,
            400,
            good.replace(BOUNDARY.encode(), b"other"),
            MULTIPART,
            bad,
        )
        yield Case(f"{route}-no-disposition", "POST", path, 400, form(b"X-Thing: 1\r\n\r\nx"), MULTIPART, bad)
        yield Case(f"{route}-empty", "POST", path, 400, b"", MULTIPART, bad)
        yield Case(
            f"{route}-unterminated-quote",
            "POST",
            path,
            400,
            form(b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="a\r\n\r\nx'),
            MULTIPART,
            bad,
        )
        yield Case(f"{route}-missing-file", "POST", path, 400, form(PURPOSE), MULTIPART, param=name)


def _field_cases() -> Iterator[Case]:
    yield Case(
        "files-purpose-not-utf8",
        "POST",
        "/v1/files",
        400,
        form(field_part("purpose", b"ba\xfftch"), file_part()),
        MULTIPART,
        "invalid_multipart",
        "purpose",
    )
    yield Case(
        "files-purpose-unknown",
        "POST",
        "/v1/files",
        400,
        form(field_part("purpose", b"nonsense"), file_part()),
        MULTIPART,
        param="purpose",
    )
    yield Case("files-no-purpose", "POST", "/v1/files", 400, form(file_part()), MULTIPART, param="purpose")
    yield Case(
        "files-seconds-text",
        "POST",
        "/v1/files",
        400,
        form(PURPOSE, field_part("expires_after[seconds]", b"soon"), file_part()),
        MULTIPART,
        param="expires_after[seconds]",
    )
    yield Case(
        "files-seconds-short",
        "POST",
        "/v1/files",
        400,
        form(PURPOSE, field_part("expires_after[seconds]", b"10"), file_part()),
        MULTIPART,
        param="expires_after[seconds]",
    )
    yield Case(
        "files-anchor-unknown",
        "POST",
        "/v1/files",
        400,
        form(
            PURPOSE,
            field_part("expires_after[anchor]", b"now"),
            field_part("expires_after[seconds]", b"3600"),
            file_part(),
        ),
        MULTIPART,
        param="expires_after[anchor]",
    )
    yield Case(
        "files-anchor-alone",
        "POST",
        "/v1/files",
        400,
        form(PURPOSE, field_part("expires_after[anchor]", b"created_at"), file_part()),
        MULTIPART,
        param="expires_after.seconds",
    )
    yield Case(
        "files-empty-provider",
        "POST",
        "/v1/files",
        400,
        form(PURPOSE, field_part("custom_llm_provider", b""), file_part()),
        MULTIPART,
        param="custom_llm_provider",
    )
    yield Case(
        "files-unknown-provider",
        "POST",
        "/v1/files",
        400,
        form(PURPOSE, field_part("custom_llm_provider", b"no-such-provider"), file_part()),
        MULTIPART,
        "unknown_provider",
        "custom_llm_provider",
    )
    # Batches
    batch = {"input_file_id": "{file_id}", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    yield Case(
        "batch-endpoint",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "endpoint": "/v1/images"}),
        JSON,
        param="endpoint",
    )
    yield Case(
        "batch-window",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "completion_window": "48h"}),
        JSON,
        param="completion_window",
    )
    yield Case(
        "batch-no-input",
        "POST",
        "/v1/batches",
        400,
        J({"endpoint": "/v1/chat/completions", "completion_window": "24h"}),
        JSON,
        param="input_file_id",
    )
    yield Case(
        "batch-empty-input",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "input_file_id": ""}),
        JSON,
        param="input_file_id",
    )
    yield Case(
        "batch-long-input",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "input_file_id": "file-" + LONG}),
        JSON,
        param="input_file_id",
    )
    yield Case(
        "batch-input-is-a-batch",
        "POST",
        "/v1/batches",
        404,
        J({**batch, "input_file_id": "{batch_id}"}),
        JSON,
        "not_found",
        "input_file_id",
    )
    yield Case(
        "batch-empty-provider",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "custom_llm_provider": ""}),
        JSON,
        param="custom_llm_provider",
    )
    yield Case(
        "batch-17-metadata",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "metadata": {str(i): "v" for i in range(17)}}),
        JSON,
        param="metadata",
    )
    yield Case(
        "batch-metadata-not-string",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "metadata": {"a": {"b": "c"}}}),
        JSON,
        param="metadata.a",
    )
    yield Case(
        "batch-metadata-long-value",
        "POST",
        "/v1/batches",
        400,
        J({**batch, "metadata": {"a": "v" * 513}}),
        JSON,
        param="metadata",
    )
    # Uploads
    upload = {"bytes": 10, "filename": "a.jsonl", "mime_type": "application/jsonl", "purpose": "batch"}
    yield Case(
        "upload-purpose", "POST", "/v1/uploads", 400, J({**upload, "purpose": "nope"}), JSON, param="purpose"
    )
    yield Case(
        "upload-negative-bytes", "POST", "/v1/uploads", 400, J({**upload, "bytes": -1}), JSON, param="bytes"
    )
    yield Case(
        "upload-empty-filename",
        "POST",
        "/v1/uploads",
        400,
        J({**upload, "filename": ""}),
        JSON,
        param="filename",
    )
    yield Case(
        "upload-empty-provider",
        "POST",
        "/v1/uploads",
        400,
        J({**upload, "custom_llm_provider": ""}),
        JSON,
        param="custom_llm_provider",
    )
    yield Case(
        "upload-complete-bad-md5",
        "POST",
        "/v1/uploads/{upload_id}/complete",
        400,
        J({"part_ids": [], "md5": "xyz"}),
        JSON,
        param="md5",
    )
    yield Case(
        "upload-complete-no-parts",
        "POST",
        "/v1/uploads/{upload_id}/complete",
        400,
        J({}),
        JSON,
        param="part_ids",
    )
    # Keys
    yield Case(
        "key-deep-metadata", "POST", "/key/generate", 400, J({"metadata": nested(20)}), JSON, param="metadata"
    )
    yield Case(
        "key-metadata-too-large",
        "POST",
        "/key/generate",
        400,
        J({"metadata": {"blob": "x" * 20000}}),
        JSON,
        param="metadata",
    )
    yield Case(
        "key-update-deep-metadata",
        "POST",
        "/key/update",
        400,
        J({"key": "key_x", "metadata": nested(20)}),
        JSON,
        param="metadata",
    )
    yield Case(
        "key-duration-zero", "POST", "/key/generate", 400, J({"duration": "0d"}), JSON, param="duration"
    )
    yield Case(
        "key-duration-unit", "POST", "/key/generate", 400, J({"duration": "10y"}), JSON, param="duration"
    )
    yield Case(
        "key-duration-huge",
        "POST",
        "/key/generate",
        400,
        J({"duration": "999999999999d"}),
        JSON,
        param="duration",
    )
    yield Case(
        "key-providers-empty", "POST", "/key/generate", 400, J({"providers": []}), JSON, param="providers"
    )
    yield Case(
        "key-providers-blank", "POST", "/key/generate", 400, J({"providers": [""]}), JSON, param="providers.0"
    )
    yield Case("key-alias-empty", "POST", "/key/generate", 400, J({"key_alias": ""}), JSON, param="key_alias")
    yield Case("key-delete-nothing", "POST", "/key/delete", 400, J({}), JSON)
    yield Case("key-delete-empty-lists", "POST", "/key/delete", 400, J({"keys": [], "key_aliases": []}), JSON)
    yield Case("key-update-no-key", "POST", "/key/update", 400, J({"key_alias": "x"}), JSON, param="key")


def _id_and_cursor_cases() -> Iterator[Case]:
    yield Case("files-after-batch-id", "GET", "/v1/files?after={batch_id}", 400, param="after")
    yield Case("files-after-garbage", "GET", "/v1/files?after=%C3%96%40oo", 400, param="after")
    yield Case(
        "files-after-unknown",
        "GET",
        "/v1/files?after=file-doesnotexist",
        404,
        code="not_found",
        param="after",
    )
    yield Case("files-after-long", "GET", f"/v1/files?after=file-{LONG}", 400, param="after")
    yield Case("batches-after-file-id", "GET", "/v1/batches?after={file_id}", 400, param="after")
    yield Case(
        "batches-after-unknown",
        "GET",
        "/v1/batches?after=batch_doesnotexist",
        404,
        code="not_found",
        param="after",
    )
    yield Case("files-limit-zero", "GET", "/v1/files?limit=0", 400, param="limit")
    yield Case("files-limit-text", "GET", "/v1/files?limit=many", 400, param="limit")
    yield Case("files-order", "GET", "/v1/files?order=sideways", 400, param="order")
    yield Case("file-long-id", "GET", f"/v1/files/file-{LONG}", 404, code="not_found")
    yield Case("file-long-id-delete", "DELETE", f"/v1/files/file-{LONG}", 404, code="not_found")
    yield Case("file-long-id-content", "GET", f"/v1/files/file-{LONG}/content", 404, code="not_found")
    yield Case("batch-long-id", "GET", f"/v1/batches/batch_{LONG}", 404, code="not_found")
    yield Case("batch-long-id-cancel", "POST", f"/v1/batches/batch_{LONG}/cancel", 404, code="not_found")
    yield Case("upload-long-id-cancel", "POST", f"/v1/uploads/upload_{LONG}/cancel", 404, code="not_found")
    yield Case("file-id-is-a-batch", "GET", "/v1/files/{batch_id}", 404, code="not_found")
    yield Case("file-id-unicode", "GET", "/v1/files/%F0%9F%92%A5", 404, code="not_found")
    yield Case("key-info-long", "GET", f"/key/info?key=key_{LONG}", 404)


def _front_end_cases() -> Iterator[Case]:
    yield Case("trace", "TRACE", "/v1/files", 405, code="method_not_allowed")
    yield Case("query", "QUERY", "/v1/files", 405, code="method_not_allowed")
    yield Case("propfind", "PROPFIND", "/v1/batches", 405, code="method_not_allowed")
    yield Case("trace-unknown-path", "TRACE", "/nowhere", 404, code="unknown_url")
    yield Case("put-files", "PUT", "/v1/files", 405, code="method_not_allowed")
    yield Case(
        "headers-over-10k",
        "GET",
        "/v1/files",
        431,
        headers={"X-Big": "a" * 11000},
        code="request_header_fields_too_large",
    )
    yield Case(
        "header-line-over-64k",
        "GET",
        "/v1/files",
        431,
        headers={"X-Huge": "a" * 70000},
        code="request_header_fields_too_large",
    )


CASES = [
    *_json_route_cases(),
    *_multipart_route_cases(),
    *_field_cases(),
    *_id_and_cursor_cases(),
    *_front_end_cases(),
]


@pytest.fixture(scope="module")
def ids(local_gateway: LocalGateway) -> dict[str, str]:
    sdk = client(local_gateway)
    file_id = upload_batch_file(sdk).id
    batch = sdk.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    upload = sdk.uploads.create(bytes=10, filename="a.jsonl", mime_type="application/jsonl", purpose="batch")
    return {"file_id": file_id, "batch_id": batch.id, "upload_id": upload.id}


def assert_envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:2000]
    assert response.headers.get("x-request-id"), response.headers
    text = response.text
    assert "Traceback" not in text and 'File "/' not in text, text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"], body
    assert error["type"] == "invalid_request_error", body
    return dict(error)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_a_4xx_envelope(local_gateway: LocalGateway, ids: dict[str, str], case: Case) -> None:
    path = case.path.replace("{file_id}", ids["file_id"]).replace("{batch_id}", ids["batch_id"])
    path = path.replace("{upload_id}", ids["upload_id"])
    body = case.body.replace(b"{file_id}", ids["file_id"].encode()).replace(
        b"{batch_id}", ids["batch_id"].encode()
    )
    headers = {"Authorization": f"Bearer {local_gateway.master_key}", **case.headers}
    response = httpx.request(case.method, local_gateway.url + path, headers=headers, content=body, timeout=30)
    error = assert_envelope(response, case.status)
    if case.code is not None:
        assert error["code"] == case.code, error
    if case.param is not None or case.check_param:
        assert error["param"] == case.param, error


@pytest.mark.parametrize("route", sorted(JSON_ROUTES))
@pytest.mark.parametrize(
    "content_type", ["Application/JSON; charset=UTF-8", "application/x-www-form-urlencoded", None]
)
def test_a_json_object_is_read_however_labelled(
    local_gateway: LocalGateway, ids: dict[str, str], route: str, content_type: str | None
) -> None:
    """`Application/JSON`, `curl -d` without a header (form-urlencoded) or no Content-Type: a
    JSON object body is read as JSON on every JSON route (what follows is the route's own answer)."""
    path, good = JSON_ROUTES[route]
    headers = {"Authorization": f"Bearer {local_gateway.master_key}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = httpx.post(
        local_gateway.url + path.replace("{upload_id}", ids["upload_id"]), headers=headers, content=J(good)
    )
    expected = {
        "batches_create": 404,  # file-x is unknown: the body was read
        "uploads_create": 200,
        "uploads_complete": 400,  # no parts for 10 bytes: the body was read
        "keys_generate": 200,
        "keys_update": 404,
        "keys_delete": 404,
    }[route]
    assert response.status_code == expected, response.text


def test_an_escaped_quote_in_a_filename_is_not_cut(local_gateway: LocalGateway) -> None:
    line = b'{"custom_id": "r", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\n'
    body = form(PURPOSE, file_part(filename=b'a\\"b.jsonl', content=line))
    response = httpx.post(
        f"{local_gateway.api_base}/files",
        headers={"Authorization": f"Bearer {local_gateway.master_key}", **MULTIPART},
        content=body,
    )
    assert response.status_code == 200, response.text
    # The gateway reads a"b.jsonl; httpx, sending it on to the provider, writes the quote as
    # %22 (the WHATWG form encoding), which is what the provider then stores.
    assert response.json()["filename"] in ('a"b.jsonl', "a%22b.jsonl")


def test_a_truncated_upload_stores_nothing(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    before = {f.id for f in sdk.files.list()}
    cut = GOOD_FILE_FORM[: GOOD_FILE_FORM.index(b'{"a"') + 4]
    response = httpx.post(
        f"{local_gateway.api_base}/files",
        headers={"Authorization": f"Bearer {local_gateway.master_key}", **MULTIPART},
        content=cut,
    )
    assert_envelope(response, 400)
    assert {f.id for f in sdk.files.list()} == before


@pytest.mark.parametrize(
    ("route", "path", "content_type"),
    [
        ("files_create", "/v1/files", f"multipart/form-data; boundary={BOUNDARY}"),
        ("uploads_add_part", "/v1/uploads/upload_x/parts", f"multipart/form-data; boundary={BOUNDARY}"),
        ("batches_create", "/v1/batches", "application/json"),
    ],
)
def test_invalid_base64_body_is_a_400(
    local_gateway: LocalGateway, route: str, path: str, content_type: str
) -> None:
    """API Gateway base64-encodes binary bodies; a broken encoding (only a direct invoke can
    send one) is refused before anything reads it."""
    event = proxy_event(
        "POST",
        path,
        headers={"Authorization": f"Bearer {local_gateway.master_key}", "Content-Type": content_type},
        body=GOOD_FILE_FORM,
    )
    event["body"], event["isBase64Encoded"] = "not base64!!", True
    if route == "uploads_add_part":
        event["pathParameters"] = {"upload_id": "upload_x"}
    result = invoke(route, event)
    assert result["statusCode"] == 400, result
    error = json.loads(result["body"])["error"]
    assert error["code"] == "invalid_body" and "base64" in error["message"]


def test_provider_errors_name_gateway_ids(local_gateway: LocalGateway) -> None:
    """A file deleted at the provider behind the gateway's back: the provider's 404 names its
    own id, the client sees the gateway's."""
    simulator = local_gateway.simulator
    assert simulator is not None
    sdk = client(local_gateway)
    gateway_file = upload_batch_file(sdk, name="vanishing.jsonl")
    upstream_name = f"{gateway_file.id}.vanishing.jsonl"  # uploaded under the gateway's file id
    upstream_ids = [fid for fid, f in simulator.state.files.items() if f.filename == upstream_name]
    assert len(upstream_ids) == 1
    upstream_id = upstream_ids[0]
    assert upstream_id != gateway_file.id
    sim_base = simulator.url
    deleted = httpx.delete(
        f"{sim_base}/v1/files/{upstream_id}", headers={"Authorization": "Bearer sim-openai-key"}
    )
    assert deleted.status_code == 200, deleted.text
    response = httpx.get(
        f"{local_gateway.api_base}/files/{gateway_file.id}",
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
    )
    error = assert_envelope(response, 404)
    assert gateway_file.id in error["message"] and upstream_id not in error["message"], error


def test_a_request_line_over_64k_is_a_414_envelope(local_gateway: LocalGateway) -> None:
    """httpx refuses to send such a URL; a raw socket does."""
    host, port = local_gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /v1/files?x=" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), head
    assert b"x-request-id" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_uri_too_long" and error["message"]
