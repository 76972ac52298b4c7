"""Which creates go to the watcher because their own translation and send would not fit API
Gateway's 29 s (`service.plan.sync_send`), and the plan they get (`plan.create.plan_for`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.providers.caps import BatchCaps, default_caps
from gateway.routes import API_GATEWAY_TIMEOUT_SECONDS
from gateway.runtime import resources
from gateway.runtime.settings import get_settings, reset_settings
from gateway.service.batch_input_check import BATCH_CHECK_STATE
from gateway.service.plan import create as plan_create
from gateway.service.plan import sync_send
from gateway.storage.id_map import ObjectRecord

MB = 1000 * 1000
TRANSLATING = ("anthropic", "gemini", "vertex", "bedrock")
FILE_ID_ONLY = ("openai", "azure")
DEPLOYMENTS = {
    "openai": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"},
    "azure": {"type": "azure", "api_base": "http://127.0.0.1:9"},
    "anthropic": {"type": "anthropic"},
    "gemini": {"type": "gemini"},
    "vertex": {
        "type": "vertex",
        "project": "gw-project",
        "location": "us-central1",
        "gcs_bucket": "gw-bucket",
    },
    "bedrock": {"type": "bedrock", "region": "us-east-1", "models": {"claude-3-5-haiku": "anthropic.claude"}},
}
MODELS = {"anthropic": "claude-sonnet-4-5", "bedrock": "claude-3-5-haiku"}


class CapsOnly:
    """A provider adapter reduced to what the decision asks of it: its type's documented caps."""

    def __init__(self, provider_type: str) -> None:
        self.provider_type = provider_type

    def batch_caps(self, model: str) -> BatchCaps:
        return default_caps(self.provider_type, model)


@pytest.fixture
def deployments(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(DEPLOYMENTS))
    monkeypatch.delenv(resources.ENV_SYNC_CREATE_MAX_BYTES, raising=False)
    reset_settings()
    monkeypatch.setattr(plan_create, "client_for", lambda name: CapsOnly(DEPLOYMENTS[name]["type"]))
    yield
    monkeypatch.undo()
    reset_settings()


def input_file(provider: str, size: int, lines: int = 1000) -> ObjectRecord:
    figures: dict[str, Any] = {
        "lines": lines,
        "bytes": size,
        "model": MODELS.get(
            provider, "gemini-2.5-flash" if provider in {"gemini", "vertex"} else "gpt-4o-mini"
        ),
        "input_token_estimate": 10,  # under every enqueued quota: only the size can decide
    }
    return ObjectRecord(
        id="file-in",
        kind="file",
        owner="master",
        provider=provider,
        created_at=1000,
        object={"id": "file-in", "bytes": size},
        upstream_id="up-file-in",
        purpose="batch",
        state={BATCH_CHECK_STATE: figures},
    )


@pytest.mark.parametrize("provider_type", TRANSLATING)
def test_each_type_that_sends_its_input_has_a_measured_figure_under_its_caps(provider_type: str) -> None:
    limit = sync_send.max_bytes_for(provider_type)
    assert limit == sync_send.MEASURED[provider_type].max_bytes
    assert limit is not None and MB <= limit < default_caps(provider_type, "").max_bytes
    assert sync_send.MEASURED[provider_type].source.startswith("bench/sync_create.py")


@pytest.mark.parametrize("provider_type", FILE_ID_ONLY)
def test_openai_and_azure_never_take_this_path_their_create_sends_a_file_id(provider_type: str) -> None:
    assert sync_send.max_bytes_for(provider_type) is None
    assert not sync_send.too_large_to_send(provider_type, 200 * 1024 * 1024)


def test_a_figure_is_what_its_throughput_sends_in_a_third_of_api_gateways_time_on_the_functions_cpu() -> None:
    assert sync_send.SEND_SECONDS == API_GATEWAY_TIMEOUT_SECONDS / 3
    assert 0 < sync_send.CPU_SHARE < 1  # batches_create has under a full vCPU's memory
    for measured in sync_send.MEASURED.values():
        seconds = measured.max_bytes / (measured.mb_per_second * MB * sync_send.CPU_SHARE)
        assert sync_send.SEND_SECONDS - 1 / sync_send.CPU_SHARE < seconds <= sync_send.SEND_SECONDS
    assert sync_send.threshold_for(10.0) == int(10.0 * sync_send.CPU_SHARE * sync_send.SEND_SECONDS) * MB


def test_the_setting_replaces_every_sending_types_figure_and_leaves_openai_alone(
    deployments: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(resources.ENV_SYNC_CREATE_MAX_BYTES, "2000")
    reset_settings()
    assert get_settings().sync_create_max_bytes == 2000
    assert [sync_send.max_bytes_for(t) for t in TRANSLATING] == [2000] * 4
    assert sync_send.too_large_to_send("anthropic", 2001) and not sync_send.too_large_to_send(
        "anthropic", 2000
    )
    assert sync_send.max_bytes_for("openai") is None


@pytest.mark.parametrize("provider", TRANSLATING)
def test_a_file_within_the_caps_but_over_the_figure_is_planned_as_one_part(
    deployments: None, provider: str
) -> None:
    limit = sync_send.MEASURED[provider].max_bytes
    assert plan_create.plan_for(input_file(provider, limit)) is None  # at the figure: sent by the create
    plan = plan_create.plan_for(input_file(provider, limit + 1))
    assert plan is not None
    caps = default_caps(provider, MODELS.get(provider, ""))
    # the parts' limits: the caps, and the bytes the watcher sends in a pass: one part here
    part_bytes = min(caps.max_bytes, sync_send.MEASURED[provider].pass_bytes)
    assert plan["limits"]["max_requests"] == caps.max_requests and plan["limits"]["max_bytes"] == part_bytes
    assert plan["input_bytes"] == limit + 1 < part_bytes and plan["input_lines"] <= caps.max_requests
    assert plan["input_upstream_id"] == "up-file-in" and plan["retry"] is None and plan["parts"] is None


@pytest.mark.parametrize("provider", FILE_ID_ONLY)
def test_openai_and_azure_files_of_any_size_within_the_caps_keep_the_direct_create(
    deployments: None, provider: str
) -> None:
    assert plan_create.plan_for(input_file(provider, 199 * MB, lines=40_000)) is None


def test_the_lowered_setting_plans_small_files_of_sending_types_only(
    deployments: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(resources.ENV_SYNC_CREATE_MAX_BYTES, "2000")
    reset_settings()
    assert plan_create.plan_for(input_file("anthropic", 2001, lines=3)) is not None
    assert plan_create.plan_for(input_file("anthropic", 2000, lines=3)) is None
    assert plan_create.plan_for(input_file("openai", 2001, lines=3)) is None


def test_a_bedrock_file_under_its_minimum_keeps_the_create_that_refuses_it_at_once(
    deployments: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(resources.ENV_SYNC_CREATE_MAX_BYTES, "2000")
    reset_settings()
    assert plan_create.plan_for(input_file("bedrock", 5000, lines=99)) is None  # 400 at create, as before
    assert plan_create.plan_for(input_file("bedrock", 5000, lines=100)) is not None


@pytest.mark.parametrize("provider", TRANSLATING)
def test_a_part_holds_at_most_what_the_watcher_sends_in_a_pass(deployments: None, provider: str) -> None:
    """A file up to the provider's cap is sent by the watcher in parts it can send in time."""
    caps = default_caps(provider, MODELS.get(provider, ""))
    plan = plan_create.plan_for(input_file(provider, caps.max_bytes, lines=caps.max_requests))
    assert plan is not None
    pass_bytes = sync_send.MEASURED[provider].pass_bytes
    assert plan["limits"]["max_bytes"] == min(caps.max_bytes, pass_bytes)
    seconds = pass_bytes / (sync_send.MEASURED[provider].mb_per_second * MB * sync_send.WATCHER_CPU_SHARE)
    assert seconds <= sync_send.PASS_SEND_SECONDS
    assert sync_send.part_max_bytes("openai") is None and sync_send.part_max_bytes(None) is None


def test_the_watchers_time_covers_a_pass_of_sends_three_times_slower_than_measured() -> None:
    from gateway.routes import SCHEDULED_FUNCTIONS
    from gateway.service.adoption import ABANDON_AFTER_SECONDS
    from handlers import batch_watcher

    (watcher,) = [f for f in SCHEDULED_FUNCTIONS if f.name == "batch_watcher"]
    assert watcher.timeout_seconds == 900  # Lambda's most
    margin = max(batch_watcher._MARGIN_SECONDS, watcher.timeout_seconds * batch_watcher._MARGIN_SHARE)
    # the last step a pass starts still ends within the function's time
    assert margin >= 3 * sync_send.PASS_SEND_SECONDS
    # a part left `submitting` is submitted again only after a send three times slower has ended
    assert 3 * sync_send.PASS_SEND_SECONDS < ABANDON_AFTER_SECONDS
