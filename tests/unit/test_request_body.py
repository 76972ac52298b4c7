"""The strict multipart reader and the JSON body reader, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from gateway.errors import InvalidRequestError, UnsupportedMediaTypeError
from gateway.http import multipart, request_body, upstream_ids


def body(*parts: bytes, boundary: bytes = b"B", close: bool = True) -> bytes:
    raw = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return raw + (b"--" + boundary + b"--\r\n" if close else b"")


def part(disposition: str, content: bytes = b"x", content_type: str | None = None) -> bytes:
    head = f"Content-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + content


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('form-data; name="file"; filename="a\\"b.jsonl"', 'a"b.jsonl'),
        ('form-data; name="file"; filename="a\\\\b.jsonl"', "a\\b.jsonl"),
        ('form-data; name="file"; filename="a;b.jsonl"', "a;b.jsonl"),
        ('form-data; filename="first.jsonl"; name="file"', "first.jsonl"),
        ("form-data; name=file; filename=plain.jsonl", "plain.jsonl"),
        ("form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.jsonl", "été.jsonl"),
        ('form-data; name="file"; filename=""', ""),
    ],
)
def test_filenames_are_read_with_their_escapes(disposition: str, filename: str) -> None:
    (only,) = multipart.parse(body(part(disposition, b"data")), "B")
    assert (only.name, only.filename, only.content) == ("file", filename, b"data")


def test_parts_keep_their_bytes_and_order() -> None:
    content = b"line 1\r\n--Bx not a boundary\r\n\x00\xff"
    parts = multipart.parse(
        body(
            part('form-data; name="purpose"', b"batch"), part('form-data; name="file"; filename="f"', content)
        ),
        "B",
    )
    assert [(p.name, p.content) for p in parts] == [("purpose", b"batch"), ("file", content)]


def test_a_preamble_and_epilogue_are_ignored() -> None:
    raw = b"preamble\r\n" + body(part('form-data; name="a"', b"1")) + b"epilogue"
    assert [p.content for p in multipart.parse(raw, "B")] == [b"1"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (body(part('form-data; name="f"; filename="f"', b"abc"), close=False), "closing boundary"),
        (body(part('form-data; name="f"; filename="f"', b"abc"))[:-12], "closing boundary"),
        (b"--B\r\nContent-Disposition: form-da", "truncated"),
        (b"no boundary at all", "does not contain"),
        (body(b"X-Other: 1\r\n\r\nx"), "Content-Disposition"),
        (body(part('attachment; name="f"')), "named form-data"),
        (body(part("form-data")), "named form-data"),
        (body(b'Content-Disposition: form-data; name="\xff"\r\n\r\nx'), "UTF-8"),
        (body(part('form-data; name="f"; filename="unterminated')), "Unterminated"),
        (body(b"Content-Disposition form-data\r\n\r\nx"), "Malformed header"),
        (body(part("form-data; name=\"f\"; filename*=latin-1''a.jsonl")), "charset"),
    ],
)
def test_malformed_bodies_are_refused(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        multipart.parse(raw, "B")
    assert words in raised.value.message
    assert raised.value.code == "invalid_multipart"


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('Multipart/Form-Data; BOUNDARY="a b;c"', "a b;c"),
        ("multipart/form-data; charset=utf-8; boundary=x", "x"),
    ],
)
def test_boundary_parameter(content_type: str, boundary: str) -> None:
    assert multipart.boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "x; boundary=" + "b" * 71]
)
def test_a_missing_or_overlong_boundary_is_refused(content_type: str) -> None:
    with pytest.raises(InvalidRequestError):
        multipart.boundary_of(content_type)


def event(content_type: str | None, raw: bytes, *, encoded: bool = False) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    text = base64.b64encode(raw).decode() if encoded else raw.decode("utf-8", errors="replace")
    return {"headers": headers, "body": text, "isBase64Encoded": encoded}


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "APPLICATION/JSON; charset=utf-8", "application/x-www-form-urlencoded"],
)
def test_a_json_object_is_read(content_type: str | None) -> None:
    assert request_body.read(event(content_type, b'{"a": [1, {"b": 2}]}'), "json") == {"a": [1, {"b": 2}]}


@pytest.mark.parametrize(
    ("content_type", "raw", "error", "code"),
    [
        ("text/plain", b"{}", UnsupportedMediaTypeError, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", b"a=b", UnsupportedMediaTypeError, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", b"[1]", UnsupportedMediaTypeError, "unsupported_media_type"),
        ("application/json", b"", InvalidRequestError, "empty_body"),
        ("application/json", b"  \n", InvalidRequestError, "empty_body"),
        ("application/json", b"[1]", InvalidRequestError, "invalid_body"),
        ("application/json", b"{", InvalidRequestError, "invalid_json"),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, InvalidRequestError, "invalid_body"),
        ("application/json", b'{"a": ' + b"[" * 33 + b"]" * 33 + b"}", InvalidRequestError, "invalid_body"),
    ],
)
def test_json_bodies_that_are_refused(
    content_type: str, raw: bytes, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as raised:
        request_body.read(event(content_type, raw), "json")
    assert raised.value.code == code  # type: ignore[attr-defined]


def test_a_json_body_of_32_levels_passes() -> None:
    value: Any = 1
    for _ in range(31):
        value = [value]
    assert request_body.read(event("application/json", json.dumps({"a": value}).encode()), "json")


def test_invalid_base64_is_refused() -> None:
    broken = {
        "headers": {"content-type": "multipart/form-data; boundary=B"},
        "body": "!!",
        "isBase64Encoded": True,
    }
    with pytest.raises(InvalidRequestError) as raised:
        request_body.read(broken, "multipart")
    assert "base64" in raised.value.message


def test_multipart_fields_and_files() -> None:
    raw = body(
        part('form-data; name="purpose"', b"batch"),
        part('form-data; name="file"; filename="in.jsonl"', b"{}\n", "application/jsonl"),
        part('form-data; name="tag"', b"1"),
        part('form-data; name="tag"', b"2"),
    )
    fields = request_body.read(event("multipart/form-data; boundary=B", raw, encoded=True), "multipart")
    assert fields["purpose"] == "batch" and fields["tag"] == ["1", "2"]
    assert (fields["file"].filename, fields["file"].content, fields["file"].content_type) == (
        "in.jsonl",
        b"{}\n",
        "application/jsonl",
    )


def test_upstream_ids_become_gateway_ids() -> None:
    upstream_ids.start_request()
    upstream_ids.remember("file-abc", "file-GATEWAY1")
    upstream_ids.remember("file-abcdef", "file-GATEWAY2")
    upstream_ids.remember(None, "file-none")
    text = upstream_ids.to_gateway_ids("No such File object: file-abcdef (nor file-abc)")
    assert text == "No such File object: file-GATEWAY2 (nor file-GATEWAY1)"
    upstream_ids.start_request()
    assert upstream_ids.to_gateway_ids("file-abc") == "file-abc"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"no carriage return at all " * 100,
        b"\r" * 500,  # more CRs than are probed one by one
        b"line\r\n" * 300 + b"\r\n--B not a delimiter\r\n" + b"x",
        b"\r\n--Bx\r\n--B-\r\n--",  # the boundary text followed by anything else is content
        b"\r\n" * 70 + b"x",
    ],
)
def test_the_next_delimiter_is_found_as_a_plain_search_finds_it(content: bytes) -> None:
    raw = b"--B\r\n" + b'Content-Disposition: form-data; name="f"; filename="f"\r\n\r\n' + content
    raw += b"\r\n--B\r\n" + b'Content-Disposition: form-data; name="g"\r\n\r\ng\r\n--B--\r\n'
    separator = b"\r\n--B"
    for start in range(0, len(raw), 7):
        assert multipart._find_separator(raw, separator, start) == raw.find(separator, start)
    parts = multipart.parse(raw, "B")
    assert [part.content for part in parts] == [content, b"g"]
