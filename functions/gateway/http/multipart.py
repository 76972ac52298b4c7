"""A strict multipart/form-data reader (RFC 7578).

Strict where a lenient reader would store something other than what the client sent: a body
with no closing boundary (cut short, perhaps inside the file) is refused rather than stored
truncated, part headers and field values must be UTF-8, and quoted parameters are read with
their backslash escapes (`filename="a\\"b.jsonl"` is `a"b.jsonl`), as is RFC 5987's
`filename*=UTF-8''...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from gateway.errors import InvalidRequestError

_CRLF = b"\r\n"
_HEADER_END = b"\r\n\r\n"
MAX_BOUNDARY_LENGTH = 70  # RFC 2046


@dataclass(frozen=True)
class Part:
    name: str
    content: bytes
    filename: str | None = None
    content_type: str | None = None


def _invalid(message: str, param: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_multipart")


def header_parameters(value: str) -> tuple[str, dict[str, str]]:
    """'form-data; name="a"; filename="b\\"c"' -> ('form-data', {'name': 'a', 'filename': 'b"c'}).

    Parameter names are lower-cased; quoted values lose their quotes and escapes.
    """
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        start = i
        while i < n and rest[i] not in "=;":
            i += 1
        key = rest[start:i].strip().lower()
        if i >= n or rest[i] == ";":
            if key:
                params[key] = ""
            continue
        i += 1  # '='
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise _invalid(f"Unterminated quoted value for '{key}' in a multipart part header.")
            i += 1  # closing quote
            params[key] = "".join(chars)
        else:
            start = i
            while i < n and rest[i] != ";":
                i += 1
            params[key] = rest[start:i].strip()
    return head.strip().lower(), params


def boundary_of(content_type: str) -> str:
    _, params = header_parameters(content_type)
    boundary = params.get("boundary", "")
    if not boundary:
        raise _invalid(
            "A multipart/form-data body needs a boundary: send Content-Type "
            "'multipart/form-data; boundary=...' (HTTP clients set it when they build the form)."
        )
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise _invalid(f"The multipart boundary is longer than {MAX_BOUNDARY_LENGTH} characters.")
    return boundary


def _filename(params: dict[str, str]) -> str | None:
    extended = params.get("filename*")
    if extended is not None:
        charset, _, encoded = extended.partition("'")
        _, _, encoded = encoded.partition("'")
        if charset.lower() not in ("utf-8", "us-ascii"):
            raise _invalid(f"Unsupported filename* charset '{charset}': use UTF-8.")
        try:
            return unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            raise _invalid("The filename* of a multipart part is not valid UTF-8.") from None
    return params.get("filename")


def _part(body: bytes, start: int, end: int, index: int) -> Part:
    """The part in body[start:end] (its content sliced once: an upload part is megabytes)."""
    header_end = body.find(_HEADER_END, start, end)
    if header_end == -1:
        # A part with no header block at all (or a body cut inside its headers).
        raise _invalid(f"Multipart part {index} has no complete header section.")
    try:
        header_text = body[start:header_end].decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(f"The headers of multipart part {index} are not valid UTF-8.") from None
    headers: dict[str, str] = {}
    for line in header_text.split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise _invalid(f"Malformed header line in multipart part {index}: {line[:100]!r}.")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise _invalid(f"Multipart part {index} has no Content-Disposition header.")
    kind, params = header_parameters(disposition)
    name = params.get("name", "")
    if kind != "form-data" or not name:
        raise _invalid(f"Multipart part {index} is not a named form-data field.")
    return Part(
        name=name,
        content=body[header_end + len(_HEADER_END) : end],
        filename=_filename(params),
        content_type=headers.get("content-type"),
    )


def _next_delimiter(body: bytes, separator: bytes, start: int) -> int:
    """Where the next CRLF--boundary line starts: the boundary text followed by `--` or by
    optional whitespace and CRLF (content may hold the boundary followed by anything else)."""
    position = _find_separator(body, separator, start)
    while position != -1:
        # a bounded look: transport padding is a few spaces, the body may be megabytes
        rest = body[position + len(separator) : position + len(separator) + 1024]
        if rest.startswith(b"--") or rest.lstrip(b" \t").startswith(_CRLF):
            return position
        position = _find_separator(body, separator, position + 1)
    return -1


_CR = 13
_CR_PROBES = 64  # CRs looked at one by one before the content is searched for the separator


def _find_separator(body: bytes, separator: bytes, start: int) -> int:
    """body.find(separator, start), faster on an upload part: a search for one byte (memchr,
    several times faster than a search for the separator) finds each CR, where a separator
    can start. Content with many CRs (CRLF lines) is searched for the separator past a few."""
    position = body.find(_CR, start)
    for _ in range(_CR_PROBES):
        if position == -1 or body.startswith(separator, position):
            return position
        position = body.find(_CR, position + 1)
    return body.find(separator, position) if position != -1 else -1


def parse(body: bytes, boundary: str) -> list[Part]:
    """Every part of a complete multipart body, in order."""
    delimiter = b"--" + boundary.encode("latin-1")
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(_CRLF + delimiter)
        if position == -1:
            raise _invalid("The multipart body does not contain its boundary.")
        position += len(_CRLF)
    separator = _CRLF + delimiter
    parts: list[Part] = []
    while True:
        after = position + len(delimiter)
        if body[after : after + 2] == b"--":
            return _one_file_at_most(parts)  # the closing delimiter; anything after it is the epilogue
        line_end = body.find(_CRLF, after)
        if line_end == -1 or body[after:line_end].strip(b" \t"):
            raise _invalid("The multipart body is truncated or malformed after a boundary.")
        following = _next_delimiter(body, separator, line_end)
        if following == -1:
            raise _invalid(
                "The multipart body is truncated: it has no closing boundary "
                f"('--{boundary}--'), so a part may be cut short."
            )
        parts.append(_part(body, line_end + len(_CRLF), following, len(parts) + 1))
        position = following + len(_CRLF)


def _one_file_at_most(parts: list[Part]) -> list[Part]:
    """Every route takes one file: with two, which one the client meant is a guess."""
    files = [part.name for part in parts if part.filename is not None]
    if len(files) > 1:
        named = ", ".join(repr(name) for name in files)
        raise _invalid(
            f"The form has {len(files)} file parts ({named}); send one file per request.", files[1]
        )
    return parts
