"""The console's static files (functions/gateway/console/) and the function that serves them:
content types, the security headers, nothing outside the directory, and what the files may hold
(no inline script or style, no HTML built from strings, no third-party origin)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from gateway.routes import ROUTES
from handlers import console

from devserver.apigw import Router
from devserver.events import proxy_event
from tests.unit.conftest import FakeContext

SCRIPTS = sorted(name for name in console.ASSETS if name.endswith(".js"))
# Ways of turning a string into markup or code: the console builds every node itself.
UNSAFE_SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\("
    r"|setAttribute\(\s*['\"]style"
)


def get(path: str) -> dict[str, Any]:
    match = Router(ROUTES).match("GET", path)
    assert match is not None and match.route.name == "console", path
    event = proxy_event(
        method="GET", path=path, resource=match.resource, path_parameters=match.path_parameters
    )
    return console.handler(event, FakeContext())


def header(response: dict[str, Any], name: str) -> str:
    return str(response["headers"][name])


def test_the_page_is_served_at_console_with_a_strict_policy() -> None:
    page = get("/console")
    assert page["statusCode"] == 200
    assert header(page, "Content-Type") == "text/html; charset=utf-8"
    policy = header(page, "Content-Security-Policy")
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy and "http" not in policy
    assert header(page, "X-Content-Type-Options") == "nosniff"
    assert header(page, "X-Frame-Options") == "DENY"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_each_file_with_its_type(name: str, content_type: str) -> None:
    response = get(f"/console/{name}")
    assert response["statusCode"] == 200 and header(response, "Content-Type") == content_type
    assert response["body"].encode() == (console.ASSETS_DIR / name).read_bytes()
    assert "Content-Security-Policy" in response["headers"]


@pytest.mark.parametrize(
    "name", ["index.html", "nothing.js", "..%2Fhandlers%2Fconsole.py", "..", "APP.JS", ".hidden.js"]
)
def test_anything_else_is_an_unknown_url(name: str) -> None:
    response = get(f"/console/{name}")
    assert response["statusCode"] == 404
    assert '"code": "unknown_url"' in response["body"]


def test_every_file_the_page_names_is_served() -> None:
    page = console.ASSETS["index.html"].decode()
    named = set(re.findall(r'(?:href|src)="console/([^"]+)"', page))
    for script in SCRIPTS:
        named |= set(re.findall(r'from "\./([^"]+)"', console.ASSETS[script].decode()))
    assert named and named <= set(console.ASSETS) - {"index.html"}, named - set(console.ASSETS)
    assert set(SCRIPTS) <= named, "a script no page loads"


def test_no_inline_script_or_style_in_the_page() -> None:
    page = console.ASSETS["index.html"].decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page and " style=" not in page
    assert re.findall(r"\son[a-z]+=", page) == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_script_builds_markup_from_strings(script: str) -> None:
    assert UNSAFE_SINKS.findall(console.ASSETS[script].decode()) == []


@pytest.mark.parametrize("name", sorted(console.ASSETS))
def test_no_third_party_origin(name: str) -> None:
    text = console.ASSETS[name].decode()
    origins = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
    assert origins == set()


def test_the_key_is_kept_in_session_storage_and_sent_as_authorization_only() -> None:
    api = console.ASSETS["api.js"].decode()
    assert "sessionStorage" in api and "localStorage" not in api
    assert "Authorization: `Bearer ${key}`" in api
    texts = {script: console.ASSETS[script].decode() for script in SCRIPTS}
    assert [script for script, text in texts.items() if "sessionStorage" in text] == ["api.js"]
    # the key is read where requests are sent, and by the shell to know whether one is kept
    assert sorted(script for script, text in texts.items() if "currentKey" in text) == ["api.js", "app.js"]
    assert not [
        script for script, text in texts.items() if "localStorage" in text or "document.cookie" in text
    ]
