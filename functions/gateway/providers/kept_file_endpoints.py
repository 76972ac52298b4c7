"""The Files and Uploads half of `ProviderApi` for a provider with no OpenAI-style file store
(Anthropic, Bedrock, Gemini, Vertex AI): every call goes to the deployment's gateway-kept files,
made when first used."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any

from gateway.providers.api import ContentStream, FileContent
from gateway.providers.kept_files import KeptFiles


class KeptFileEndpoints:
    name: str  # the deployment's

    @cached_property
    def files(self) -> KeptFiles:
        return KeptFiles(self.name)

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
        return self.files.create_file(
            filename=filename, content=content, purpose=purpose, expires_after=expires_after
        )

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        return self.files.retrieve_file(file_id)

    def list_files(self, **query: Any) -> dict[str, Any]:
        return self.files.list_files(**query)

    def delete_file(self, file_id: str) -> dict[str, Any]:
        return self.files.delete_file(file_id)

    def file_content(self, file_id: str) -> bytes:
        return self.files.file_content(file_id)

    def stream_file_content(self, file_id: str) -> AbstractContextManager[ContentStream]:
        return self.files.stream_file_content(file_id)

    def create_upload(self, *, filename: str, purpose: str, size: int, mime_type: str) -> dict[str, Any]:
        return self.files.create_upload(filename=filename, purpose=purpose, size=size, mime_type=mime_type)

    def add_upload_part(self, upload_id: str, data: FileContent) -> dict[str, Any]:
        return self.files.add_upload_part(upload_id, data)

    def complete_upload(self, upload_id: str, part_ids: list[str], md5: str | None = None) -> dict[str, Any]:
        return self.files.complete_upload(upload_id, part_ids, md5)

    def cancel_upload(self, upload_id: str) -> dict[str, Any]:
        return self.files.cancel_upload(upload_id)
