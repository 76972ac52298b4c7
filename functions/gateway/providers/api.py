"""The one interface every provider adapter implements, in OpenAI's shapes.

The services (`gateway.service`) call only these methods, whatever the deployment's type: an
HTTP forwarder for OpenAI and Azure (`client.ProviderClient`), adapters for providers that
speak another API (`anthropic.AnthropicClient`, Bedrock's). Each answers with OpenAI-shaped
dicts (a `file`, a `batch`, a `list`, an `upload`) and raises the gateway's typed errors
(`UpstreamRequestError` with the provider's 4xx, 404 for an unknown id, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol

from gateway.providers.caps import BatchCaps
from gateway.providers.config import ProviderDeployment

FileContent = bytes | IO[bytes]


class ContentStream(Protocol):
    """A file's content being read: what `stream_file_content` yields (an httpx.Response does)."""

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]: ...


class ProviderApi(Protocol):
    deployment: ProviderDeployment
    name: str

    # Files
    def create_file(
        self,
        *,
        filename: str,
        content: FileContent,
        purpose: str,
        expires_after: dict[str, Any] | None = None,
        content_type: str = "application/octet-stream",
        timeout: float | None = None,
    ) -> dict[str, Any]: ...

    def retrieve_file(self, file_id: str) -> dict[str, Any]: ...

    def list_files(self, **query: Any) -> dict[str, Any]: ...

    def delete_file(self, file_id: str) -> dict[str, Any]: ...

    def file_content(self, file_id: str) -> bytes: ...

    def stream_file_content(self, file_id: str) -> AbstractContextManager[ContentStream]: ...

    # Uploads (large files in parts, for the file transfer)
    def create_upload(self, *, filename: str, purpose: str, size: int, mime_type: str) -> dict[str, Any]: ...

    def add_upload_part(self, upload_id: str, data: FileContent) -> dict[str, Any]: ...

    def complete_upload(
        self, upload_id: str, part_ids: list[str], md5: str | None = None
    ) -> dict[str, Any]: ...

    def cancel_upload(self, upload_id: str) -> dict[str, Any]: ...

    # Batches
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """`gateway_id`: the gateway's own id of the batch, never anything the client sent. An
        adapter that names the provider's object itself (Bedrock's job, Anthropic's note)
        derives that name from it, so a retry of one create meets the object its first attempt
        made and two creates never meet each other's."""
        ...

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]: ...

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]: ...

    def cancel_batch(self, batch_id: str) -> dict[str, Any]: ...

    # Caps and quota (the plan of parts: `gateway.service.plan`)
    def batch_caps(self, model: str) -> BatchCaps:
        """What one batch of `model` may hold here and the quota on batches in progress: the
        provider type's documented defaults, overridden per deployment (`caps.caps_for`)."""
        ...

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """Whether this OpenAI-shaped batch ended because of the provider's quota (submitting
        it again later may succeed); a create refused for quota raises `errors.QuotaRefused`."""
        ...

    def close(self) -> None: ...


def list_page(data: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    """OpenAI's list object of one page of `data` (batches, files)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
