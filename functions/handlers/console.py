"""GET /console and /console/{asset}: the web console's page and its static files.

No authentication and no data: the page asks the person for a key, keeps it in the tab's
session storage and calls the public API with it. Every file is read once, at init, from
functions/gateway/console/ (a flat directory), and answered with a strict Content-Security-Policy.
The page is /console itself (its links are relative to it: console/app.js, whatever the stage
prefix), so index.html is not one of the assets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from gateway.errors import error_envelope
from gateway.observability.instrument import instrumented

ASSETS_DIR = Path(__file__).resolve().parent.parent / "gateway" / "console"
INDEX = "index.html"
# Scripts, styles and the API from this origin only; no inline script or style, no frames,
# no forms posting anywhere, no <base> rewriting, no third-party origin of any kind.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change with each deployment: the browser asks again (a 200 is a few KiB).
    "Cache-Control": "no-cache",
}


def _load(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in CONTENT_TYPES and _ASSET_NAME.match(path.name)
    }


ASSETS = _load(ASSETS_DIR)


def _response(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}


def _not_found(path: str) -> dict[str, Any]:
    body = json.dumps(
        error_envelope(f"Unknown request URL: GET {path}.", "invalid_request_error", None, "unknown_url")
    )
    return _response(404, {"Content-Type": "application/json", **SECURITY_HEADERS}, body)


@instrumented(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = str(event.get("path") or "")
    asset = (event.get("pathParameters") or {}).get("asset")
    name = INDEX if asset is None else str(asset)
    content = ASSETS.get(name)
    if content is None or (asset is not None and name == INDEX):
        return _not_found(path)
    content_type = CONTENT_TYPES[Path(name).suffix]
    return _response(200, {"Content-Type": content_type, **SECURITY_HEADERS}, content.decode("utf-8"))
