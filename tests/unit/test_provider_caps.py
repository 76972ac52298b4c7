"""Provider batch caps: the documented defaults (each with its page), per-deployment overrides,
quota refusals recognised (`quota_refused`, `QuotaRefused`) without changing what a client sees."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from gateway.errors import GatewayError, RateLimitError, UpstreamRequestError
from gateway.http.auth import MASTER
from gateway.models.batches import CreateBatchRequest
from gateway.providers import caps, registry
from gateway.providers.anthropic import shapes as anthropic_shapes
from gateway.providers.bedrock import records as bedrock_records
from gateway.providers.bedrock.client import _upstream
from gateway.providers.caps import BatchCaps, caps_for, default_caps, failed_for_quota
from gateway.providers.config import ProviderDeployment, parse_deployments
from gateway.providers.errors import QuotaRefused
from gateway.providers.openai.client import ProviderClient
from gateway.runtime import resources
from gateway.service import batch_input_check, batches
from gateway.storage.id_map import IdMap
from pydantic import ValidationError

from devserver.server import resolve_providers, simulator_limits, start_gateway
from devserver.simulator.limits import SimulatorLimits
from infra.config import ConfigError, GatewayConfig, validate_providers
from tests.unit.conftest import store_file
from tests.unit.test_batches_service import FakeBatchesApi

MIB = 1024 * 1024


def _deployment(kind: str, **spec: Any) -> ProviderDeployment:
    base = {"openai": "https://api.example/v1", "azure": "https://res.example"}.get(kind, "")
    return parse_deployments({kind: {"type": kind, "api_base": base, **spec}})[kind]


# Documented defaults --------------------------------------------------------------------------


def test_each_limit_names_the_provider_page_it_comes_from() -> None:
    expected = {
        "openai": {
            "max_requests": (50_000, "https://platform.openai.com/docs/guides/batch#rate-limits"),
            "max_bytes": (200 * MIB, "https://platform.openai.com/docs/guides/batch#rate-limits"),
            "enqueued_tokens_otherwise": (
                90_000,
                "https://platform.openai.com/docs/guides/rate-limits#usage-tiers",
            ),
        },
        "azure": {
            "max_requests": (
                100_000,
                "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits#global-batch-limits",
            ),
            "max_bytes": (
                200 * MIB,
                "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits#global-batch-limits",
            ),
            "enqueued_tokens_otherwise": (
                30_000_000,
                "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits#global-batch-quota",
            ),
        },
        "anthropic": {
            "max_requests": (
                100_000,
                "https://platform.claude.com/docs/en/build-with-claude/batch-processing#batch-limitations",
            ),
            "max_bytes": (
                256 * MIB,
                "https://platform.claude.com/docs/en/build-with-claude/batch-processing#batch-limitations",
            ),
            "enqueued_requests": (
                100_000,
                "https://platform.claude.com/docs/en/api/rate-limits#message-batches-api",
            ),
        },
        "bedrock": {
            "max_requests": (
                50_000,
                "https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock",
            ),
            "max_bytes": (
                1_000_000_000,
                "https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock",
            ),
            "min_requests": (
                100,
                "https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock",
            ),
            "max_concurrent": (10, caps.BEDROCK_JOB_QUEUE_POST),
        },
    }
    for kind, figures in expected.items():
        defaults = caps.DOCUMENTED[kind]
        for name, (value, source) in figures.items():
            documented = getattr(defaults, name)
            assert (documented.value, documented.source) == (value, source), (kind, name)
    # a Bedrock job's size (all its input files) is documented beside them; one file per job here
    assert (caps.BEDROCK_JOB_BYTES.value, caps.BEDROCK_JOB_BYTES.source) == (
        5_000_000_000,
        caps.BEDROCK_QUOTAS,
    )
    assert caps.DOCUMENTED["bedrock"].max_bytes.value < caps.BEDROCK_JOB_BYTES.value
    # every per-model quota is sourced too
    for defaults in caps.DOCUMENTED.values():
        for documented in defaults.enqueued_tokens.values():
            assert documented.source in (caps.OPENAI_RATE_LIMITS, caps.AZURE_BATCH_QUOTA)


def test_openai_enqueued_tokens_are_tier_1_per_model_longest_name_first() -> None:
    assert default_caps("openai", "gpt-4o-mini-2024-07-18").enqueued_tokens == 2_000_000
    assert default_caps("openai", "gpt-4o-2024-08-06").enqueued_tokens == 90_000
    assert default_caps("openai", "gpt-4o").enqueued_tokens == 90_000
    assert default_caps("openai", "gpt-4-0613").enqueued_tokens == 100_000
    assert default_caps("openai", "gpt-4.1-nano").enqueued_tokens == 2_000_000
    assert default_caps("openai", "text-embedding-3-small").enqueued_tokens == 3_000_000
    # a model the table does not know gets the smallest tier-1 figure
    assert default_caps("openai", "some-new-model").enqueued_tokens == 90_000
    assert default_caps("openai", "gpt-4o") == BatchCaps(
        max_requests=50_000, max_bytes=200 * MIB, enqueued_tokens=90_000, max_concurrent=None
    )


def test_azure_quota_follows_the_deployments_base_model() -> None:
    deployment = _deployment("azure", models={"nightly-batch": "gpt-4o-mini"})
    assert deployment.api_version  # parse_deployments filled Azure's default
    limits = caps_for(deployment, "nightly-batch")
    assert limits.enqueued_tokens == 1_000_000_000
    assert (limits.max_requests, limits.max_bytes) == (100_000, 200 * MIB)
    assert caps_for(deployment, "unlisted-deployment").enqueued_tokens == 30_000_000


def test_anthropic_and_bedrock_defaults() -> None:
    anthropic = caps_for(_deployment("anthropic"), "claude-sonnet-4-5")
    assert anthropic == BatchCaps(
        max_requests=100_000,
        max_bytes=256 * MIB,
        enqueued_tokens=None,
        max_concurrent=None,
        enqueued_requests=100_000,
    )
    bedrock = caps_for(_deployment("bedrock", region="us-east-1"), "anthropic.claude-3-haiku-20240307-v1:0")
    assert bedrock == BatchCaps(
        max_requests=50_000,
        max_bytes=1_000_000_000,
        enqueued_tokens=None,
        max_concurrent=10,
        min_requests=100,
    )


def test_the_adapters_existing_limits_agree_with_the_documented_caps() -> None:
    assert caps.DOCUMENTED["anthropic"].max_requests.value == anthropic_shapes.MAX_REQUESTS
    assert caps.DOCUMENTED["anthropic"].max_bytes.value == anthropic_shapes.MAX_BATCH_BYTES
    assert caps.DOCUMENTED["bedrock"].max_requests.value == bedrock_records.MAX_RECORDS
    assert caps.DOCUMENTED["bedrock"].max_bytes.value == bedrock_records.MAX_INPUT_FILE_BYTES
    assert caps.DOCUMENTED["bedrock"].min_requests.value == bedrock_records.MIN_RECORDS  # type: ignore[union-attr]
    # the upload check takes a plan's file (one provider batch's figures are only caps.py's)
    assert max(d.max_requests.value for d in caps.DOCUMENTED.values()) < batch_input_check.PLAN_MAX_LINES


def test_azure_figures_are_its_documented_batch_limits_and_default_quota_column() -> None:
    """Azure OpenAI's "Batch limits" (100,000 requests per file, 200 MB) and the "Default"
    column of its global batch quota (MicrosoftDocs/azure-ai-docs, global-batch-limits.md)."""
    azure = caps.DOCUMENTED["azure"]
    assert (azure.max_requests.value, azure.max_bytes.value) == (100_000, 200 * MIB)
    default_column = {
        "gpt-4.1": 200_000_000,
        "gpt-4.1-mini": 1_000_000_000,
        "gpt-4.1-nano": 1_000_000_000,
        "gpt-4o": 200_000_000,
        "gpt-4o-mini": 1_000_000_000,
        "gpt-4-turbo": 80_000_000,
        "gpt-4": 30_000_000,
        "gpt-35-turbo": 1_000_000_000,
        "o3-mini": 1_000_000_000,
        "o4-mini": 1_000_000_000,
        "gpt-5": 200_000_000,
    }
    assert {model: figure.value for model, figure in azure.enqueued_tokens.items()} == default_column


# Overrides ------------------------------------------------------------------------------------


def test_an_override_changes_only_the_fields_it_gives() -> None:
    deployment = _deployment("openai", batch_caps={"max_requests": 1_000, "enqueued_tokens": 20_000})
    assert caps_for(deployment, "gpt-4o-mini") == BatchCaps(
        max_requests=1_000, max_bytes=200 * MIB, enqueued_tokens=20_000, max_concurrent=None
    )


def test_null_removes_a_quota_and_per_model_quotas_win() -> None:
    deployment = _deployment(
        "azure",
        models={"batch-mini": "gpt-4o-mini"},
        batch_caps={
            "enqueued_tokens": None,
            "enqueued_tokens_by_model": {"batch-mini": 30_000, "gpt-4o": 5_000},
            "max_concurrent": 2,
        },
    )
    assert caps_for(deployment, "batch-mini").enqueued_tokens == 30_000  # the deployment's name
    assert caps_for(deployment, "gpt-4o-2024-08-06").enqueued_tokens == 5_000  # a prefix of a model
    assert caps_for(deployment, "gpt-4.1").enqueued_tokens is None  # removed for every other model
    assert caps_for(deployment, "gpt-4.1").max_concurrent == 2


@pytest.mark.parametrize(
    "override",
    [
        {"max_requests": 0},
        {"max_requests": None},
        {"max_bytes": -1},
        {"enqueued_tokens_by_model": {"gpt-4o": 0}},
        {"min_requests": 500, "max_requests": 100},
        {"max_request": 5},  # a typo is refused, never ignored
    ],
)
def test_an_invalid_override_is_refused_by_the_functions_and_at_synth(override: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _deployment("openai", batch_caps=override)
    providers = {
        "openai": {"type": "openai", "api_base": "https://api.openai.com/v1", "batch_caps": override}
    }
    with pytest.raises(ConfigError, match="batch_caps"):
        validate_providers(providers, "openai")


def test_a_valid_override_passes_synth() -> None:
    providers = {
        "bedrock": {"type": "bedrock", "region": "us-east-1", "batch_caps": {"max_concurrent": 20}},
    }
    validate_providers(providers, "bedrock")


# Quota refusals -------------------------------------------------------------------------------

_OVER_QUOTA = {
    "id": "batch_1",
    "status": "failed",
    "errors": {
        "object": "list",
        "data": [
            {
                "code": "token_limit_exceeded",
                "message": "Enqueued token limit reached for gpt-4o in organization org-x. "
                "Limit: 90,000 enqueued tokens. Please try again once some in_progress batches "
                "have been completed.",
                "param": None,
                "line": None,
            }
        ],
    },
}


def test_quota_refused_is_a_failed_batch_with_token_limit_exceeded() -> None:
    assert failed_for_quota(_OVER_QUOTA)
    other = {**_OVER_QUOTA, "errors": {"object": "list", "data": [{"code": "invalid_json_line"}]}}
    assert not failed_for_quota(other)
    assert not failed_for_quota({**_OVER_QUOTA, "status": "completed"})
    assert not failed_for_quota({"status": "failed", "errors": None})
    client = _client("openai", lambda request: httpx.Response(500))
    assert client.quota_refused(_OVER_QUOTA) and not client.quota_refused(other)


def _client(kind: str, answer: Any) -> ProviderClient:
    client = ProviderClient(_deployment(kind), lambda refresh: "key", timeout=5)
    client._http = httpx.Client(transport=httpx.MockTransport(answer))
    return client


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_a_429_on_create_is_quota_refused_answered_as_before(kind: str) -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"Retry-After": "30"},
            json={"error": {"message": "Too many batches", "type": "rate_limit_error", "code": None}},
        )

    client = _client(kind, limited)
    with pytest.raises(QuotaRefused) as refused:
        client.create_batch({"input_file_id": "f", "endpoint": "/v1/chat/completions"}, gateway_id="batch_g")
    error = refused.value
    assert isinstance(error, UpstreamRequestError)
    assert error.status_code == 429 and error.headers == {"Retry-After": "30"}
    assert error.envelope() == {
        "error": {
            "message": "Too many batches",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    # the same 429 elsewhere stays a rate limit, not a quota refusal
    with pytest.raises(Exception) as other:
        client.retrieve_batch("b")
    assert not isinstance(other.value, QuotaRefused)


def test_a_400_on_create_is_not_a_quota_refusal() -> None:
    client = _client("openai", lambda request: httpx.Response(400, json={"error": {"message": "bad"}}))
    with pytest.raises(UpstreamRequestError) as caught:
        client.create_batch({"input_file_id": "f"}, gateway_id="batch_g")
    assert not isinstance(caught.value, QuotaRefused)


def test_bedrock_service_quota_exceeded_is_quota_refused_answered_as_before() -> None:
    exc = ClientError(
        {
            "Error": {"Code": "ServiceQuotaExceededException", "Message": "Too many jobs in progress"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "CreateModelInvocationJob",
    )
    error = _upstream(exc, "bedrock")
    assert isinstance(error, QuotaRefused)
    assert error.status_code == 400
    assert error.envelope()["error"] == {
        "message": "Too many jobs in progress",
        "type": "invalid_request_error",
        "param": None,
        "code": "ServiceQuotaExceededException",
    }
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "GetModelInvocationJob"
    )
    assert not isinstance(_upstream(throttled, "bedrock"), QuotaRefused)


# make serve --------------------------------------------------------------------------------


def test_make_serve_reads_batch_caps_and_the_simulators_limits() -> None:
    caps_env = json.dumps({"openai": {"max_requests": 1_000}, "bedrock": {"max_concurrent": 2}})
    providers = resolve_providers({"BATCH_CAPS": caps_env})
    assert providers["openai"].config()["batch_caps"] == {"max_requests": 1_000}
    assert providers["bedrock"].config()["batch_caps"] == {"max_concurrent": 2}
    assert "batch_caps" not in providers["azure"].config()
    deployments = parse_deployments({name: settings.config() for name, settings in providers.items()})
    assert caps_for(deployments["openai"], "gpt-4o").max_requests == 1_000
    assert caps_for(deployments["bedrock"], "anthropic.claude-3-haiku").max_concurrent == 2
    for bad in ('{"nope": {}}', '{"openai": {"max_requests": 0}}', "[1]", "not json"):
        with pytest.raises(ValueError, match="BATCH_CAPS"):
            resolve_providers({"BATCH_CAPS": bad})

    assert simulator_limits('{"max_requests": 1000, "enqueued_tokens": 5000}').max_requests == 1_000
    assert simulator_limits("") == SimulatorLimits()
    with pytest.raises(ValueError, match="SIM_LIMITS"):
        simulator_limits('{"max_requests": -1}')


def test_make_serve_hands_them_to_the_functions_and_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SIM_LIMITS", '{"max_requests": 1000, "concurrent_jobs": 2}')
    provider_env = {"BATCH_CAPS": '{"openai": {"max_requests": 1000, "enqueued_tokens": 20000}}'}
    with start_gateway(provider_env=provider_env, simulator_phase_seconds=0.1) as gateway:
        assert gateway.simulator is not None
        assert gateway.simulator.config.limits == SimulatorLimits(max_requests=1_000, concurrent_jobs=2)
        settings = json.loads(os.environ[resources.ENV_PROVIDERS])
        assert settings["openai"]["batch_caps"] == {"max_requests": 1_000, "enqueued_tokens": 20_000}


# A single batch refused for quota: as before -------------------------------------------------


class _QuotaFullApi(FakeBatchesApi):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append(("create", body))
        raise self.error


def _limited() -> RateLimitError:
    return RateLimitError("Too many batches", code="rate_limit_exceeded", headers={"Retry-After": "20"})


@pytest.mark.parametrize("error", [_limited(), QuotaRefused.of(_limited())], ids=["before", "quota_refused"])
def test_a_single_batch_refused_for_quota_answers_its_client_as_before(aws: None, error: Exception) -> None:
    """Until the plan of parts takes such a batch: the provider's 429, the record written ahead
    discarded (the provider made nothing), whether the adapter says QuotaRefused or not."""
    store_file("file-in")
    registry._clients["openai"] = _QuotaFullApi(error)  # type: ignore[assignment]
    try:
        request = CreateBatchRequest(
            input_file_id="file-in", endpoint="/v1/chat/completions", completion_window="24h"
        )
        with pytest.raises(GatewayError) as refused:
            batches.create_batch(MASTER, "openai", request, batch_id="batch_quota")
    finally:
        registry._clients.pop("openai", None)
    assert refused.value.status_code == 429
    assert refused.value.envelope() == {
        "error": {
            "message": "Too many batches",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert refused.value.response_headers() == {"Retry-After": "20"}
    assert IdMap().get("batch_quota") is None


def test_cdk_jsons_batch_caps_reach_the_functions_provider_settings() -> None:
    spec = {
        "type": "bedrock",
        "region": "us-east-1",
        "models": {"haiku": "anthropic.claude-3-haiku-20240307-v1:0"},
        "batch_caps": {"max_concurrent": 20, "max_requests": 10_000},
    }
    config = GatewayConfig.from_mapping({"providers": {"bedrock": spec}, "default_provider": "bedrock"})
    deployment = parse_deployments(json.loads(config.providers_json))["bedrock"]
    assert caps_for(deployment, "haiku") == BatchCaps(
        max_requests=10_000,
        max_bytes=1_000_000_000,
        enqueued_tokens=None,
        max_concurrent=20,
        min_requests=100,
    )
    with pytest.raises(ConfigError, match="batch_caps"):
        GatewayConfig.from_mapping(
            {
                "providers": {"bedrock": {**spec, "batch_caps": {"max_concurent": 20}}},
                "default_provider": "bedrock",
            }
        )
