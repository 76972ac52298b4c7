"""POST /v1/batches/check's answer (service/batch_check.py against moto): the provider's limits
and the parts a file needs, from what the upload's check kept; nothing is written."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from gateway.http.auth import MASTER
from gateway.models.batches import CreateBatchRequest
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.service import batch_check
from gateway.service.batch_input_check import BATCH_CHECK_STATE
from gateway.storage.id_map import IdMap, ObjectRecord

from tests.unit.fault_injection.create_support import items


@pytest.fixture
def deployments(aws: None) -> None:
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {
            "openai": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"},
            "azure": {"type": "azure", "api_base": "http://127.0.0.1:9"},
            "anthropic": {"type": "anthropic"},
            "bedrock": {"type": "bedrock", "region": "us-east-1", "models": {"claude": "anthropic.claude"}},
        }
    )
    reset_settings()


def stored_file(provider: str, figures: dict[str, Any], file_id: str = "file-c") -> None:
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner="master",
            provider=provider,
            created_at=1000,
            object={
                "id": file_id,
                "object": "file",
                "bytes": figures.get("bytes", 10),
                "status": "processed",
            },
            upstream_id=f"up-{file_id}",
            purpose="batch",
            state={BATCH_CHECK_STATE: figures},
        )
    )


def check(file_id: str = "file-c") -> Any:
    request = CreateBatchRequest(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch_check.check_batch(MASTER, None, request)


@pytest.mark.parametrize(
    ("provider", "limits"),
    [
        ("openai", (50_000, 200 * 1024 * 1024, None)),
        ("azure", (100_000, 200 * 1024 * 1024, None)),
        ("anthropic", (100_000, 256 * 1024 * 1024, None)),
        ("bedrock", (50_000, 1_000_000_000, 100)),
    ],
)
def test_each_provider_reports_its_limits(deployments: None, provider: str, limits: tuple[Any, ...]) -> None:
    got = batch_check.provider_limits(provider)
    assert (got.max_requests, got.max_bytes, got.min_requests) == limits


@pytest.mark.parametrize(
    ("provider", "lines", "size", "parts"),
    [
        ("openai", 3, 100, 1),
        ("openai", 50_000, 100, 1),
        ("openai", 120_000, 100, 3),  # requests over the limit
        ("openai", 10, 450 * 1024 * 1024, 3),  # bytes over the limit
        ("anthropic", 120_000, 100, 2),
        ("bedrock", 120_000, 100, 3),
        # within Bedrock's 1 GB, but a part the watcher translates holds 217 MB (plan.sync_send)
        ("bedrock", 1000, 900_000_000, 5),
        ("anthropic", 1000, 250 * 1024 * 1024, 1),  # under 256 MB: 434 MB a pass does not bind
        ("openai", 10, 100, 1),  # model "m": OpenAI's smallest tier-1 quota, 90,000 tokens
    ],
)
def test_parts_are_one_until_a_limit_is_passed(
    deployments: None, provider: str, lines: int, size: int, parts: int
) -> None:
    stored_file(provider, {"lines": lines, "bytes": size, "endpoint": "/v1/chat/completions", "model": "m"})
    before = items()
    answer = check()
    assert (answer.requests, answer.bytes, answer.parts) == (lines, size, parts)
    assert answer.valid and answer.checked and answer.error_count == 0
    assert items() == before  # a check writes nothing


def test_parts_count_the_enqueued_token_quota_and_the_deployments_overrides(deployments: None) -> None:
    figures = {"lines": 10, "bytes": 100, "endpoint": "/v1/chat/completions", "model": "gpt-4o"}
    stored_file("openai", {**figures, "input_token_estimate": 200_000})
    answer = check()
    assert answer.parts == 3  # 200,000 tokens over gpt-4o's tier-1 quota of 90,000
    providers = json.loads(os.environ[resources.ENV_PROVIDERS])
    providers["openai"]["batch_caps"] = {"max_requests": 4, "enqueued_tokens": None}
    os.environ[resources.ENV_PROVIDERS] = json.dumps(providers)
    reset_settings()
    answer = check()
    assert answer.parts == 3 and answer.limits.max_requests == 4  # 10 requests, 4 a part; no token quota


def test_a_file_never_checked_says_so(deployments: None) -> None:
    stored_file("openai", {})
    answer = check()
    assert (answer.checked, answer.valid, answer.estimate.cost) == (False, True, None)
