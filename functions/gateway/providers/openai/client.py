"""One HTTP client per provider deployment: the only code that talks to providers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import httpx

from gateway.errors import RateLimitError, UpstreamError
from gateway.observability import logger
from gateway.providers.caps import BatchCaps, caps_for, failed_for_quota
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused, upstream_error
from gateway.providers.http_send import (
    KeySource,
    close_failed,
    http_client,
    operation_name,
    request_timeout,
    send_measured,
)
from gateway.providers.kept_files import KeptFiles, is_kept
from gateway.providers.openai.dialects import dialect_for

if TYPE_CHECKING:
    from gateway.providers.api import ContentStream

FileContent = bytes | IO[bytes]


class ProviderClient:
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self._dialect = dialect_for(deployment)
        self._key_source = key_source
        self._kept_files: KeptFiles | None = None
        self._http = http_client(timeout)

    @property
    def _kept(self) -> KeptFiles:
        """The gateway's own files of this deployment: a planned batch's merged files
        (service.plan.merged_files), never uploaded here; their ids cannot be the provider's."""
        if self._kept_files is None:
            self._kept_files = KeptFiles(self.name)
        return self._kept_files

    # Files -------------------------------------------------------------------------------
    def create_file(
        self,
        *,
        filename: str,
        content: FileContent,
        purpose: str,
        expires_after: dict[str, Any] | None = None,
        content_type: str = "application/octet-stream",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        data: dict[str, str] = {"purpose": purpose}
        if expires_after:
            data["expires_after[anchor]"] = str(expires_after.get("anchor", "created_at"))
            data["expires_after[seconds]"] = str(expires_after["seconds"])
        files = {"file": (filename, content, content_type)}
        return self._json("POST", "/files", data=data, files=files, **request_timeout(timeout))

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        if is_kept(file_id):
            return self._kept.retrieve_file(file_id)
        return self._json("GET", f"/files/{file_id}")

    def list_files(self, **query: Any) -> dict[str, Any]:
        return self._json("GET", "/files", params=_drop_none(query))

    def delete_file(self, file_id: str) -> dict[str, Any]:
        if is_kept(file_id):
            return self._kept.delete_file(file_id)
        return self._json("DELETE", f"/files/{file_id}")

    def file_content(self, file_id: str) -> bytes:
        if is_kept(file_id):
            return self._kept.file_content(file_id)
        return self._send("GET", f"/files/{file_id}/content").content

    @contextmanager
    def stream_file_content(self, file_id: str) -> Iterator[ContentStream]:
        """The content response, unread: iterate `iter_bytes()` for bounded memory."""
        if is_kept(file_id):
            with self._kept.stream_file_content(file_id) as kept:
                yield kept
            return
        response = self._send("GET", f"/files/{file_id}/content", stream=True)
        try:
            yield response
        finally:
            response.close()

    # Uploads (the provider's own API for large files) ------------------------------------
    def create_upload(self, *, filename: str, purpose: str, size: int, mime_type: str) -> dict[str, Any]:
        body = {"filename": filename, "purpose": purpose, "bytes": size, "mime_type": mime_type}
        return self._json("POST", "/uploads", json=body)

    def add_upload_part(self, upload_id: str, data: FileContent) -> dict[str, Any]:
        files = {"data": ("part", data, "application/octet-stream")}
        return self._json("POST", f"/uploads/{upload_id}/parts", files=files)

    def complete_upload(self, upload_id: str, part_ids: list[str], md5: str | None = None) -> dict[str, Any]:
        return self._json(
            "POST", f"/uploads/{upload_id}/complete", json=_drop_none({"part_ids": part_ids, "md5": md5})
        )

    def cancel_upload(self, upload_id: str) -> dict[str, Any]:
        return self._json("POST", f"/uploads/{upload_id}/cancel")

    # Batches -----------------------------------------------------------------------------
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        # the gateway's tag in `metadata` (service.adoption) is how OpenAI and Azure batches are found
        try:
            return self._json("POST", "/batches", json=body, **request_timeout(timeout))
        except RateLimitError as exc:  # nothing made: the enqueued quota or the request rate
            raise QuotaRefused.of(exc) from exc

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """`timeout`: this call's own (seconds), e.g. what is left of a list's deadline."""
        return self._json("GET", f"/batches/{batch_id}", **request_timeout(timeout))

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        return self._json("GET", "/batches", params=_drop_none(query), **request_timeout(timeout))

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._json("POST", f"/batches/{batch_id}/cancel")

    # Transport ---------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            payload = response.json()
        except ValueError as exc:
            raise UpstreamError(f"provider '{self.name}' answered with a body that is not JSON") from exc
        if not isinstance(payload, dict):
            raise UpstreamError(f"provider '{self.name}' answered with an unexpected JSON shape")
        return payload

    def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = self._attempt(method, path, refresh_key=False, stream=stream, **kwargs)
        if response.status_code == 401:
            # The key may have been rotated: read it again once before giving up.
            logger.warning("provider rejected the key; reading it again", extra={"provider": self.name})
            response.close()
            _rewind(kwargs)
            response = self._attempt(method, path, refresh_key=True, stream=stream, **kwargs)
        if response.status_code >= 400:
            close_failed(response, provider=self.name, path=path, stream=stream)
            raise upstream_error(response, self.name)
        return response

    def _attempt(
        self, method: str, path: str, *, refresh_key: bool, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        key = self._key_source(refresh_key)
        if not key:
            raise UpstreamError(
                f"provider '{self.name}' has no API key configured", code="provider_not_configured"
            )
        request = self._http.build_request(
            method,
            self._dialect.url(path),
            params={**kwargs.pop("params", {}), **self._dialect.params()},
            headers=self._dialect.auth_headers(key),
            **kwargs,
        )
        return send_measured(
            self._http, request, provider=self.name, operation=operation_name(method, path), stream=stream
        )

    # Caps ------------------------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return caps_for(self.deployment, model)

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """OpenAI and Azure take a batch over the enqueued-token quota, then fail it with
        `token_limit_exceeded`."""
        return failed_for_quota(batch)

    def close(self) -> None:
        self._http.close()


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _rewind(kwargs: dict[str, Any]) -> None:
    """File objects sent once must start from the beginning on the retry."""
    for _, value in (kwargs.get("files") or {}).items():
        content = value[1]
        if hasattr(content, "seek"):
            content.seek(0)


if TYPE_CHECKING:  # mypy checks that the forwarder implements the interface
    from gateway.providers.api import ProviderApi

    _implements: type[ProviderApi] = ProviderClient
