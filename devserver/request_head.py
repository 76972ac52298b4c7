"""What the front end refuses in a request head rather than guess, as API Gateway does.

http.server's header parser keeps the last of two `Authorization` headers, ends the headers
silently at a line without a colon (the headers after it are dropped) and passes a NUL or a
folded line through; each of these is a request two readers may understand differently, so it
is answered 400 instead.
"""

from __future__ import annotations

import re
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message

# Headers a request carries once: a second value would make one of them win silently.
SINGLE_VALUED = (
    "authorization",
    "api-key",
    "x-api-key",
    "content-type",
    "host",
    "idempotency-key",
    "transfer-encoding",
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed

__all__ = ["SINGLE_VALUED", "head_problem"]


def head_problem(headers: Message) -> str | None:
    """Why the request head is ambiguous or malformed, or None when it is neither."""
    # The parser treats the head as a MIME message: a line without a colon ends its headers
    # (the rest becomes a "payload"); a multipart Content-Type adds defects of its own, harmless.
    stray = headers.get_payload()
    if any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in headers.defects) or (
        isinstance(stray, str) and stray
    ):
        return "A request header line is malformed: every header line needs a name and a colon."
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        if not _TOKEN.match(name):
            return f"Invalid request header name {name[:40]!r}."
        if _CONTROL.search(value):
            return f"The {name} header contains a control character (NUL, CR, LF or another)."
        values.setdefault(name.lower(), []).append(value)
    for name in SINGLE_VALUED:
        given = values.get(name, [])
        if len(given) > 1:
            return f"The {name} header is given {len(given)} times; send it once."
    lengths = {value.strip() for value in values.get("content-length", [])}
    if len(lengths) > 1:
        return "The request has Content-Length headers with different values."
    if lengths and "transfer-encoding" in values:
        return "The request has both Content-Length and Transfer-Encoding; send one."
    return None
