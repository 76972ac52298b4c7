"""The two Google Cloud REST APIs a Vertex AI deployment calls, with the service account's token.

- Cloud Storage's JSON API (https://cloud.google.com/storage/docs/json_api/v1/objects): upload
  an object (`upload/storage/v1/b/{bucket}/o?uploadType=media` when it fits one part, else a
  resumable upload in parts: https://cloud.google.com/storage/docs/performing-resumable-uploads),
  read one (`?alt=media`), list a prefix, delete one.
- Vertex AI's `batchPredictionJobs`
  (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs):
  create, get, list, cancel, delete, under `v1/projects/{project}/locations/{location}`.

Google's errors are `{"error": {"code", "message", "status"}}`
(https://cloud.google.com/apis/design/errors): they become the gateway's typed errors here. A
401 fetches a new token once and sends again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from gateway.errors import (
    ConflictError,
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
)
from gateway.observability import logger
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused
from gateway.providers.http_send import send_measured
from gateway.providers.vertex.google_token import KeySource, ServiceAccountTokens
from gateway.storage.content_cache import fixed_size_parts

_CONNECT_TIMEOUT_SECONDS = 5.0
LIST_PAGE_SIZE = 100
# A resumable upload's parts are multiples of 256 KiB, the last excepted.
UPLOAD_PART_BYTES = 8 * 1024 * 1024
_RESUME_INCOMPLETE = 308


class GoogleCloud:
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.name = deployment.name
        self.bucket = str(deployment.gcs_bucket)
        self._storage = deployment.gcs_api_base.rstrip("/")
        self._jobs = f"{deployment.api_base}/v1/projects/{deployment.project}/locations/{deployment.location}"
        self._api = deployment.api_base
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT_SECONDS))
        self._tokens = ServiceAccountTokens(deployment.name, key_source, self._http)

    def close(self) -> None:
        self._http.close()

    # Cloud Storage -----------------------------------------------------------------------------
    def upload(self, name: str, content: bytes) -> None:
        """One media upload."""
        headers = {"Content-Type": "application/jsonl"}
        self._call(
            "POST",
            f"{self._storage}/upload/storage/v1/b/{self.bucket}/o",
            "gcs objects.insert",
            params={"uploadType": "media", "name": name},
            content=content,
            headers=headers,
        )

    def upload_parts(self, name: str, content: Iterable[bytes]) -> None:
        """Writes `content` as it comes, one part in memory at a time: one media upload when it
        fits one part, else a resumable upload whose last part commits the object (content that
        fails before its end leaves an upload never committed)."""
        parts = fixed_size_parts(content, UPLOAD_PART_BYTES)
        part = next(parts, b"")
        following = next(parts, None)
        if following is None:
            self.upload(name, part)
            return
        session = self._resumable_session(name)
        offset = 0
        while following is not None:
            self._put_part(session, part, offset, total=None)
            offset += len(part)
            part, following = following, next(parts, None)
        self._put_part(session, part, offset, total=offset + len(part))

    def _resumable_session(self, name: str) -> str:
        operation = "gcs objects.insert resumable"
        response = self._send(
            "POST",
            f"{self._storage}/upload/storage/v1/b/{self.bucket}/o",
            operation,
            params={"uploadType": "resumable", "name": name},
            headers={"X-Upload-Content-Type": "application/jsonl"},
        )
        if response.status_code >= 400:
            raise _error(response, self.name, operation)
        session = response.headers.get("location")
        if not session:
            raise UpstreamError(f"provider '{self.name}' started an upload without a session URI")
        return session

    def _put_part(self, session: str, part: bytes, offset: int, *, total: int | None) -> None:
        """One part (`Content-Range: bytes a-b/*`, the last `bytes a-b/<total>`): 308 until the
        last, which answers the object."""
        span = f"bytes {offset}-{offset + len(part) - 1}/{'*' if total is None else total}"
        operation = "gcs objects.insert part"
        response = self._send("PUT", session, operation, content=part, headers={"Content-Range": span})
        if response.status_code in ((_RESUME_INCOMPLETE,) if total is None else (200, 201)):
            return
        if response.status_code >= 400:
            raise _error(response, self.name, operation)
        raise UpstreamError(
            f"provider '{self.name}' answered an upload part with HTTP {response.status_code}"
        )

    @contextmanager
    def download(self, name: str) -> Iterator[httpx.Response]:
        """The object's bytes, unread: iterate `iter_lines()` or `iter_bytes()`."""
        response = self._send(
            "GET",
            f"{self._storage}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}",
            "gcs objects.get",
            params={"alt": "media"},
            stream=True,
        )
        try:
            if response.status_code >= 400:
                response.read()
                raise _error(response, self.name, "gcs objects.get")
            yield response
        finally:
            response.close()

    def list_names(self, prefix: str) -> list[str]:
        names: list[str] = []
        params: dict[str, Any] = {"prefix": prefix}
        while True:
            page = self._call(
                "GET", f"{self._storage}/storage/v1/b/{self.bucket}/o", "gcs objects.list", params=params
            )
            names.extend(str(item["name"]) for item in page.get("items") or ())
            if not page.get("nextPageToken"):
                return names
            params["pageToken"] = page["nextPageToken"]

    def delete(self, name: str) -> None:
        """Deletes the object; one already gone is fine."""
        try:
            self._call(
                "DELETE",
                f"{self._storage}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}",
                "gcs objects.delete",
            )
        except UpstreamRequestError as exc:
            if exc.status_code != 404:
                raise

    # Vertex AI batch prediction jobs ----------------------------------------------------------
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "POST", f"{self._jobs}/batchPredictionJobs", "vertex batchPredictionJobs.create", json=body
        )

    def get_job(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"{self._api}/v1/{name}", "vertex batchPredictionJobs.get")

    def list_jobs(self, *, filter: str, page_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"filter": filter, "pageSize": LIST_PAGE_SIZE}
        if page_token:
            params["pageToken"] = page_token
        return self._call(
            "GET", f"{self._jobs}/batchPredictionJobs", "vertex batchPredictionJobs.list", params=params
        )

    def cancel_job(self, name: str) -> None:
        self._call("POST", f"{self._api}/v1/{name}:cancel", "vertex batchPredictionJobs.cancel", json={})

    def job_name(self, job_id: str) -> str:
        """The full resource name of a job id (`projects/…/batchPredictionJobs/<id>`)."""
        return self._jobs.removeprefix(f"{self._api}/v1/") + f"/batchPredictionJobs/{job_id}"

    # HTTP ----------------------------------------------------------------------------------------
    def _call(self, method: str, url: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, url, operation, **kwargs)
        if response.status_code >= 400:
            raise _error(response, self.name, operation)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            raise UpstreamError(f"provider '{self.name}' answered with a body that is not JSON") from None
        return answer if isinstance(answer, dict) else {}

    def _send(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Sends with the current token; a 401 (a token revoked or expired early) once more with
        a new one (bodies are bytes: sent again as they are)."""
        response = self._send_once(method, url, operation, headers, stream, refresh=False, **kwargs)
        if response.status_code != 401:
            return response
        response.close()
        return self._send_once(method, url, operation, headers, stream, refresh=True, **kwargs)

    def _send_once(
        self,
        method: str,
        url: str,
        operation: str,
        headers: dict[str, str] | None,
        stream: bool,
        *,
        refresh: bool,
        **kwargs: Any,
    ) -> httpx.Response:
        token = self._tokens.token(refresh=refresh)
        request = self._http.build_request(
            method, url, headers={**(headers or {}), "Authorization": f"Bearer {token}"}, **kwargs
        )
        return send_measured(self._http, request, provider=self.name, operation=operation, stream=stream)


def _error(response: httpx.Response, provider: str, operation: str) -> GatewayError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or f"HTTP {response.status_code}")
    status_name = str(error.get("status") or "")
    status = response.status_code
    logger.warning("provider error", extra={"provider": provider, "status": status, "code": status_name})
    if status == 429 or status_name == "RESOURCE_EXHAUSTED":
        if operation.endswith(".create"):  # the job was not made: the plan waits and submits again
            return QuotaRefused(429, message, error_type="rate_limit_error", code="rate_limit_exceeded")
        return RateLimitError(f"provider '{provider}' throttled the request: {message}")
    if status in (401, 403):
        return UpstreamError(
            f"provider '{provider}' denied the request: {message}", code="provider_access_denied"
        )
    if status == 404:
        return UpstreamRequestError(404, message, error_type="invalid_request_error", code="not_found")
    if status == 409:
        return ConflictError(message, code="conflict")
    if status >= 500:
        return UpstreamError(f"provider '{provider}' failed: {message}")
    return UpstreamRequestError(status, message, error_type="invalid_request_error", code=status_name or None)
