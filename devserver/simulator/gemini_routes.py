"""The HTTP routes of the simulated Gemini API (under ``/gemini``): each request to `GeminiApi`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .gemini import GeminiApi
from .gemini_records import GeminiError, invalid

_MODEL_ACTION = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchGenerateContent$")
_BATCH_PATH = re.compile(r"^/v1beta/batches/(?P<id>[^/:]+)(?::(?P<verb>cancel))?$")
_FILE_PATH = re.compile(r"^/v1beta/files/(?P<id>[^/:]+)$")
_DOWNLOAD_PATH = re.compile(r"^/download/v1beta/files/(?P<id>[^/:]+):download$")


@dataclass
class Answer:
    status: int = 200
    json: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def handle(
    api: GeminiApi,
    method: str,
    path: str,
    query: dict[str, str],
    headers: Any,
    read_json: Callable[[], Any],
    read: Callable[[], bytes],
    base_url: str,
) -> Answer:
    """One request under the Gemini prefix (`path` without it)."""
    api.check_key(headers.get("x-goog-api-key") or query.get("key"))
    if path == "/upload/v1beta/files" and method == "POST":
        if "upload_id" in query:
            return Answer(
                json=api.upload_bytes(query["upload_id"], headers, read, base_url),
                headers={"X-Goog-Upload-Status": "final"},
            )
        if (headers.get("X-Goog-Upload-Protocol") or "").lower() == "multipart":
            return Answer(json=api.multipart_upload(headers, read, base_url))
        upload_headers, body = api.start_upload(headers, read_json(), base_url)
        return Answer(json=body, headers=upload_headers)
    if path == "/v1beta/files" and method == "GET":
        return Answer(json=api.list_files(query, base_url))
    if match := _FILE_PATH.match(path):
        name = "files/" + match["id"]
        if method == "GET":
            return Answer(json=api.get_file(name, base_url))
        if method == "DELETE":
            return Answer(json=api.delete_file(name))
    if (match := _DOWNLOAD_PATH.match(path)) and method == "GET":
        if query.get("alt") != "media":
            raise invalid("Downloads need alt=media.")
        return Answer(raw=api.download("files/" + match["id"]))
    if (match := _MODEL_ACTION.match(path)) and method == "POST":
        return Answer(json=api.create_batch(match["model"], read_json()))
    if path == "/v1beta/batches" and method == "GET":
        return Answer(json=api.list_batches(query))
    if match := _BATCH_PATH.match(path):
        if match["verb"] == "cancel" and method == "POST":
            return Answer(json=api.cancel_batch(match["id"]))
        if match["verb"] is None and method == "GET":
            return Answer(json=api.get_batch(match["id"]))
        if match["verb"] is None and method == "DELETE":
            return Answer(json=api.delete_batch(match["id"]))
    raise GeminiError(404, f"The requested URL {path} was not found on this server ({method}).")
