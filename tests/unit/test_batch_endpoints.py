"""The endpoints a batch may target are exactly openai-python's: an SDK release that adds one
fails here, not in a user's hands."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest
from gateway.models.batches import BATCH_ENDPOINTS, RETIRED_BATCH_ENDPOINTS, Batch, CreateBatchRequest
from openai.types import Batch as SdkBatch
from openai.types import BatchCreateParams
from pydantic import ValidationError


def sdk_endpoints() -> set[str]:
    (literal,) = get_args(get_type_hints(BatchCreateParams, include_extras=True)["endpoint"])  # Required[...]
    return set(get_args(literal))


def test_accepted_endpoints_are_the_installed_sdks() -> None:
    assert set(BATCH_ENDPOINTS) == sdk_endpoints()


@pytest.mark.parametrize("endpoint", sorted(sdk_endpoints() - set(RETIRED_BATCH_ENDPOINTS)))
def test_every_sdk_endpoint_validates_and_azure_spells_it_without_v1(endpoint: str) -> None:
    body = {"input_file_id": "file-1", "completion_window": "24h"}
    assert CreateBatchRequest.model_validate({**body, "endpoint": endpoint}).endpoint == endpoint
    short = endpoint.removeprefix("/v1")
    assert CreateBatchRequest.model_validate({**body, "endpoint": short}).endpoint == endpoint


@pytest.mark.parametrize("endpoint", ["/v1/videos", "/videos"])
def test_the_retired_videos_endpoint_is_refused_saying_why(endpoint: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateBatchRequest.model_validate(
            {"input_file_id": "file-1", "completion_window": "24h", "endpoint": endpoint}
        )
    assert "The Videos API shut down on September 24, 2026" in str(refused.value)


def test_an_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ValidationError):
        CreateBatchRequest.model_validate(
            {"input_file_id": "file-1", "completion_window": "24h", "endpoint": "/v1/audio/speech"}
        )


def test_model_and_usage_pass_through_as_the_sdk_reads_them() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 4,
        "total_tokens": 14,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens_details": {"reasoning_tokens": 1},
    }
    provider_batch = {
        "id": "batch_1",
        "completion_window": "24h",
        "created_at": 1,
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-1",
        "status": "completed",
        "model": "gpt-4o-mini-2024-07-18",
        "usage": usage,
    }
    wire = Batch.model_validate(provider_batch).model_dump(mode="json")
    assert wire["model"] == "gpt-4o-mini-2024-07-18" and wire["usage"] == usage
    parsed = SdkBatch.model_validate(wire)
    assert parsed.usage is not None and parsed.usage.output_tokens_details.reasoning_tokens == 1
