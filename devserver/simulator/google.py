"""The Google Cloud forms behind one front: OAuth token endpoint, Cloud Storage, Vertex AI.

Prefixes on the simulator: ``/google/token`` (a service account's `token_uri`), ``/gcs``
(Cloud Storage's JSON API: the deployment's `gcs_api_base`), ``/vertex`` (Vertex AI's REST API:
the deployment's `api_base`). Every Storage and Vertex request needs a bearer token the token
endpoint issued (401 UNAUTHENTICATED otherwise).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .gcs import FakeGcs, GcsError
from .google_auth import GoogleAuthError, GoogleTokens
from .limits import FirstAttempts, SimulatorLimits
from .vertex import VertexError, VertexJobs

TOKEN_PATH = "/google/token"
GCS_PREFIX = "/gcs"
VERTEX_PREFIX = "/vertex"
PREFIXES = (TOKEN_PATH, GCS_PREFIX + "/", VERTEX_PREFIX + "/")
SIM_PROJECT = "sim-project"
SIM_LOCATION = "us-central1"
SIM_BUCKET = "sim-vertex-batches"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024
ERRORS = (GcsError, VertexError, GoogleAuthError)


@dataclass
class Answer:
    status: int
    body: Any  # JSON, or bytes sent as they are
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


class GoogleForms:
    def __init__(
        self,
        phase: Callable[[], float],
        clock: Callable[[], float] = time.time,
        limits: Callable[[], SimulatorLimits] = SimulatorLimits,
        first_attempts: FirstAttempts | None = None,
    ) -> None:
        self.tokens = GoogleTokens()
        self.gcs = FakeGcs((SIM_BUCKET,))
        self.vertex = VertexJobs(self.gcs, phase, clock=clock, limits=limits, first_attempts=first_attempts)

    def reset(self) -> None:
        self.gcs.reset()
        self.vertex.reset()

    def service_account_key(self, base_url: str) -> dict[str, Any]:
        return self.tokens.service_account_key(base_url + TOKEN_PATH, SIM_PROJECT)

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        read_body: Callable[[int], bytes],
        base_url: str,
    ) -> Answer:
        if path == TOKEN_PATH:
            if method != "POST":
                raise GoogleAuthError(405, {"error": "invalid_request", "error_description": "POST only"})
            return Answer(200, self.tokens.exchange(read_body(1024 * 1024)))
        self.tokens.check(headers.get("Authorization"))
        if path.startswith(GCS_PREFIX + "/"):
            return self._storage(method, path[len(GCS_PREFIX) :], query, headers, read_body, base_url)
        return self._vertex(method, path[len(VERTEX_PREFIX) :], query, read_body)

    def _storage(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        read_body: Callable[[int], bytes],
        base_url: str,
    ) -> Answer:
        seg = path.split("/")[1:]
        upload_path = len(seg) == 6 and seg[:4] == ["upload", "storage", "v1", "b"] and seg[5] == "o"
        if method == "PUT" and upload_path and query.get("upload_id"):
            data = read_body(MAX_UPLOAD_BYTES)
            done = self.gcs.put_part(query["upload_id"], headers.get("Content-Range") or "", data)
            if isinstance(done, int):
                held = {"Range": f"bytes=0-{done - 1}"} if done else {}
                return Answer(308, b"", "text/plain", held)
            return Answer(200, done)
        if method == "POST" and upload_path and query.get("uploadType") == "resumable":
            name = query.get("name")
            if not name:
                raise GcsError(400, "Required parameter: name", "required")
            read_body(1024 * 1024)
            content_type = headers.get("X-Upload-Content-Type") or "application/octet-stream"
            upload_id = self.gcs.start_upload(seg[4], name, content_type)
            location = f"{base_url}{GCS_PREFIX}{path}?uploadType=resumable&upload_id={upload_id}"
            return Answer(200, b"", "text/plain", {"Location": location})
        if method == "POST" and upload_path:
            if query.get("uploadType") != "media":
                raise GcsError(400, "Only uploadType=media and resumable are simulated.", "invalid")
            name = query.get("name")
            if not name:
                raise GcsError(400, "Required parameter: name", "required")
            data = read_body(MAX_UPLOAD_BYTES + 1)
            match = query.get("ifGenerationMatch")
            resource = self.gcs.insert(
                seg[4],
                name,
                data,
                content_type=headers.get("Content-Type") or "application/octet-stream",
                if_generation_match=int(match) if match is not None and match.isdigit() else None,
            )
            return Answer(200, resource)
        if seg[:3] == ["storage", "v1", "b"] and len(seg) >= 5 and seg[4] == "o":
            bucket = seg[3]
            if len(seg) == 5 and method == "GET":
                return Answer(200, self.gcs.list(bucket, query))
            name = unquote("/".join(seg[5:]))
            if method == "GET":
                stored = self.gcs.get(bucket, name)
                if query.get("alt") == "media":
                    return Answer(200, stored.data, stored.content_type)
                return Answer(200, stored.resource())
            if method == "DELETE":
                self.gcs.delete(bucket, name)
                return Answer(204, b"")
        raise GcsError(404, f"Not Found: {method} {path}", "notFound")

    def _vertex(
        self, method: str, path: str, query: dict[str, str], read_body: Callable[[int], bytes]
    ) -> Answer:
        seg = [unquote(part) for part in path.split("/") if part]
        if (
            len(seg) < 6
            or seg[0] != "v1"
            or seg[1] != "projects"
            or seg[3] != "locations"
            or seg[5] != "batchPredictionJobs"
        ):
            raise VertexError(404, f"Not Found: {method} {path}", "NOT_FOUND")
        project, location, jobs = seg[2], seg[4], self.vertex
        if len(seg) == 6 and method == "POST":
            try:
                body = json.loads(read_body(16 * 1024 * 1024) or b"{}")
            except ValueError:
                raise VertexError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT") from None
            return Answer(200, jobs.create(project, location, body))
        if len(seg) == 6 and method == "GET":
            return Answer(200, jobs.list(project, location, query))
        if len(seg) == 7:
            job_id, _, verb = seg[6].partition(":")
            if verb == "cancel" and method == "POST":
                read_body(1024 * 1024)
                return Answer(200, jobs.cancel(project, location, job_id))
            if not verb and method == "GET":
                return Answer(200, jobs.get(project, location, job_id))
            if not verb and method == "DELETE":
                return Answer(200, jobs.delete(project, location, job_id))
        raise VertexError(404, f"Not Found: {method} {path}", "NOT_FOUND")


def error_answer(error: Exception) -> Answer:
    if isinstance(error, GoogleAuthError):
        return Answer(error.status, error.body)
    if isinstance(error, GcsError | VertexError):
        status = error.status if isinstance(error, GcsError) else error.code
        return Answer(status, error.body())
    raise error
