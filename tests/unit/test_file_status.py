"""File statuses on the wire are OpenAI's three, whatever the provider says."""

from __future__ import annotations

import openai
import pytest
from gateway.models.files import FileObject

UPSTREAM = {"id": "file-1", "bytes": 3, "created_at": 1_700_000_000, "filename": "a.json", "purpose": "batch"}


@pytest.mark.parametrize(
    ("provider_status", "status"),
    [
        ("uploaded", "uploaded"),
        ("processed", "processed"),
        ("error", "error"),
        ("pending", "uploaded"),  # Azure: received, not processed yet
        ("running", "uploaded"),  # Azure: being processed
        ("some-future-state", "uploaded"),
    ],
)
def test_provider_statuses_read_as_openai_statuses(provider_status: str, status: str) -> None:
    file = FileObject.model_validate({**UPSTREAM, "status": provider_status})
    assert file.status == status
    assert file.status_details is None
    openai.types.FileObject.model_validate(file.model_dump(mode="json"))  # strict, as LiteLLM parses


@pytest.mark.parametrize("provider_status", ["deleting", "deleted"])
def test_a_file_the_provider_is_deleting_reads_error_and_says_why(provider_status: str) -> None:
    file = FileObject.model_validate({**UPSTREAM, "status": provider_status})
    assert file.status == "error"
    assert file.status_details == f"The provider reports this file as '{provider_status}'."


def test_the_providers_own_status_details_are_kept() -> None:
    file = FileObject.model_validate({**UPSTREAM, "status": "deleted", "status_details": "purged"})
    assert (file.status, file.status_details) == ("error", "purged")


def test_a_missing_status_is_processed() -> None:
    assert FileObject.model_validate(UPSTREAM).status == "processed"
