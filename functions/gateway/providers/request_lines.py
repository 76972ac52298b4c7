"""The request lines of an OpenAI batch input file, as the adapters that translate each line
into a provider's own records read them (Amazon Bedrock's, Vertex AI's)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.errors import InvalidRequestError


def line_endpoint(url: Any) -> str | None:
    """A line's url as the upload check reads it (`/chat/completions` is `/v1/chat/completions`,
    as in Azure's examples), None when it is not a string."""
    if not isinstance(url, str):
        return None
    return url if url.startswith("/v1/") else "/v1" + (url if url.startswith("/") else "/" + url)


def request_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, Any, dict[str, Any], str]]:
    """(line number, url, body, custom_id) of each line of an OpenAI batch input file, blank
    lines skipped; a line that is not a request line (or whose body is not an object) is a 400
    naming it."""
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            url = line.get("url")
            body = line["body"]
            custom_id = str(line["custom_id"])
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise line_error(number, "is not a batch request line (custom_id, method, url, body)") from None
        yield number, url, body, custom_id


def line_error(number: int, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Line {number}: {message}", param="input_file_id", code="invalid_batch_line")
