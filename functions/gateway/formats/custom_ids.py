"""The `custom_id` of a batch line (a request, or an OpenAI output or error line), fast.

A plan reads every line of a batch's input and of its results only for this one field, and
`json.loads` of a whole line costs several times the rest of a split. The fast path reads it
where OpenAI's lines put it (a request's first key; an output or error line's first, or
second after a plain `"id"`), when the line names `"custom_id"` exactly once and the value
has no escape: on a valid JSON line that is exactly what `json.loads` would find (the quoted
key cannot occur inside a string, where quotes are escaped). Anything else is parsed.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii

_KEY = b'"custom_id"'
_LEADING = re.compile(rb'\A\s*\{\s*(?:"id"\s*:\s*"[^"\\]*"\s*,\s*)?"custom_id"\s*:\s*"([^"\\]*)"')


def custom_id_of(line: bytes) -> str | None:
    """The line's top-level `custom_id` when it is a non-empty string; None otherwise (a line
    that is no JSON object, or has none)."""
    if line.count(_KEY) == 1 and (match := _LEADING.match(line)) is not None:
        return match.group(1).decode() or None
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        return None
    custom_id = parsed.get("custom_id") if isinstance(parsed, dict) else None
    return custom_id if isinstance(custom_id, str) and custom_id else None


def id_key(custom_id: str) -> bytes:
    """A custom_id as a plan's indexes hold it: its UTF-8 bytes, which are what a line holds
    between the quotes when the value needs no escape, so the fast paths look up those bytes
    without decoding them (`surrogatepass`: a lone surrogate, escaped in JSON, has a key too)."""
    return custom_id.encode("utf-8", "surrogatepass")


def id_of_key(key: bytes) -> str:
    """The custom_id of an `id_key`."""
    return key.decode("utf-8", "surrogatepass")


def quoted(custom_id: str) -> bytes:
    """`custom_id` as a JSON string (ASCII, so any byte of it is safe in a tab-separated line)."""
    return encode_basestring_ascii(custom_id).encode()


def unquoted(text: bytes) -> str:
    """The custom_id `quoted` wrote."""
    if b"\\" not in text and len(text) >= 2 and text[:1] == text[-1:] == b'"':
        return text[1:-1].decode()
    value = json.loads(text)
    if not isinstance(value, str):
        raise ValueError(f"not a quoted custom_id: {text[:80]!r}")
    return value
