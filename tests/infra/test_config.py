"""Context validation: provider names and settings are checked at synth time."""

from __future__ import annotations

import json

import pytest

from infra import REPO_ROOT
from infra.config import ConfigError, GatewayConfig, is_placeholder, reserved_path_segments

OPENAI = {"type": "openai", "api_base": "https://api.openai.com/v1"}


def test_reserved_segments_are_the_static_first_segments_of_the_route_table() -> None:
    assert reserved_path_segments() == {
        "v1",
        "files",
        "batches",
        "uploads",
        "key",
        "health",
        "console",
        "spend",
        "webhook_endpoints",
        "webhook_event_types",
    }


def test_cdk_json_defaults() -> None:
    """A fresh clone deploys OpenAI and Bedrock (no key: the account's Bedrock, the listed models):
    Azure needs the operator's own endpoint (README)."""
    config = GatewayConfig.from_mapping(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    assert config.providers["openai"] == OPENAI and set(config.providers) == {"openai", "bedrock"}
    assert config.providers["bedrock"]["type"] == "bedrock" and config.providers["bedrock"]["models"]
    assert config.default_provider == "openai"
    assert (config.throttle_rate_limit, config.throttle_burst_limit) == (50, 100)
    assert config.log_level == "INFO"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        *((name, "must match") for name in ("OpenAI", "1openai", "a" * 32, "open_ai", "")),
        *((name, "collides with the static path segment") for name in ("files", "v1", "health", "key")),
    ],
)
def test_invalid_or_reserved_provider_names_are_rejected(name: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"provider name '{name}' {reason}"):
        GatewayConfig(providers={name: OPENAI}, default_provider=name)


@pytest.mark.parametrize("name", ["openai", "azure-eu", "a" * 31, "x1"])
def test_valid_provider_names(name: str) -> None:
    assert set(GatewayConfig(providers={name: OPENAI}, default_provider=name).providers) == {name}


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        # keys belong in the secret, never in the context
        ({**OPENAI, "api_key": "sk-test"}, r"unsupported fields \['api_key'\]"),
        ({"type": "cohere", "api_base": "https://example.com"}, "type must be one of"),
        ({"type": "anthropic", "default_max_tokens": 0}, "default_max_tokens must be a positive integer"),
        ({"type": "anthropic", "anthropic_version": 2023}, "anthropic_version must be a string"),
        ({"type": "openai"}, "api_base must be an https:// URL"),
        ({"type": "openai", "api_base": "http://insecure.example.com"}, "api_base must be an https:// URL"),
        (
            {"type": "azure", "api_base": "https://x.openai.azure.com", "api_version": 2025},
            "api_version must be a string",
        ),
    ],
)
def test_invalid_provider_settings_are_rejected(spec: dict, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"provider 'p' (has )?{reason}"):
        GatewayConfig(providers={"p": spec}, default_provider="p")


VERTEX = {"type": "vertex", "project": "my-project", "location": "us-central1", "gcs_bucket": "batches"}


def test_a_vertex_deployment_is_checked_at_synth() -> None:
    assert (
        GatewayConfig(providers={"vertex": VERTEX}, default_provider="vertex").providers["vertex"] == VERTEX
    )
    with pytest.raises(ConfigError, match=r"provider 'vertex': .*gcs_bucket"):
        GatewayConfig(
            providers={"vertex": {**VERTEX, "gcs_bucket": "Not A Bucket"}}, default_provider="vertex"
        )
    with pytest.raises(ConfigError, match=r"provider 'vertex': .*project"):
        GatewayConfig(providers={"vertex": {**VERTEX, "project": None}}, default_provider="vertex")


def test_default_provider_must_exist() -> None:
    with pytest.raises(ConfigError, match="default_provider"):
        GatewayConfig(providers={"openai": OPENAI}, default_provider="azure")


def test_command_line_context_strings_are_converted() -> None:
    config = GatewayConfig.from_mapping(
        {
            "providers": json.dumps({"eu": OPENAI}),
            "default_provider": "eu",
            "throttle_rate_limit": "10",
            "throttle_burst_limit": "20",
            "log_level": "debug",
            "log_retention_days": "7",
        }
    )
    assert (config.throttle_rate_limit, config.throttle_burst_limit, config.log_level) == (10.0, 20, "DEBUG")
    assert config.log_retention_days == 7


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"throttle_rate_limit": 0}, "throttle_rate_limit and throttle_burst_limit must be positive"),
        ({"throttle_burst_limit": "many"}, "context value 'throttle_burst_limit' is invalid"),
        ({"log_level": "LOUD"}, "log_level must be one of"),
        ({"log_retention_days": 8}, "log_retention_days 8 is not a CloudWatch value"),
        ({"providers": "[]"}, "providers must be a JSON object"),
    ],
)
def test_invalid_settings_are_rejected(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig.from_mapping(values)


@pytest.mark.parametrize(
    "api_base",
    [
        "https://YOUR-RESOURCE.openai.azure.com",
        "https://RESOURCE.openai.azure.com",
        "https://your_resource.openai.azure.com",
        "https://<resource>.openai.azure.com",
        "https://{resource}.openai.azure.com",
    ],
)
def test_a_placeholder_endpoint_stops_the_synth_naming_the_provider(api_base: str) -> None:
    azure = {"type": "azure", "api_base": api_base, "api_version": "2025-04-01-preview"}
    with pytest.raises(ConfigError, match="'azure' still has the placeholder api_base") as raised:
        GatewayConfig(providers={"openai": OPENAI, "azure": azure}, default_provider="openai")
    assert "cdk.json" in str(raised.value) and "remove" in str(raised.value)


@pytest.mark.parametrize(
    "api_base",
    [
        "https://contoso-eu.openai.azure.com",
        "https://myresource.openai.azure.com",
        "https://api.openai.com/v1",
    ],
)
def test_real_endpoints_are_not_placeholders(api_base: str) -> None:
    assert not is_placeholder(api_base)


def test_model_prices_and_the_output_default_are_checked_and_reach_the_functions() -> None:
    config = GatewayConfig.from_mapping(
        {
            "model_prices": '{"house-model": {"input": 1.5, "output": 3}}',
            "default_output_tokens_per_request": "512",
        }
    )
    assert config.model_prices == {"house-model": {"input": 1.5, "output": 3}}
    assert config.default_output_tokens_per_request == 512
    with pytest.raises(
        ConfigError, match=r"model_prices\['m'\] needs per-million-token 'input' and 'output'"
    ):
        GatewayConfig.from_mapping({"model_prices": {"m": {"input": 1}}})
    with pytest.raises(ConfigError, match=r"prices are numbers >= 0"):
        GatewayConfig.from_mapping({"model_prices": {"m": {"input": -1, "output": 1}}})
    with pytest.raises(ConfigError, match="default_output_tokens_per_request must be > 0"):
        GatewayConfig.from_mapping({"default_output_tokens_per_request": 0})


def test_an_azure_deployment_names_the_models_its_deployments_serve() -> None:
    azure = {
        "type": "azure",
        "api_base": "https://contoso.openai.azure.com",
        "models": {"prod-mini": "gpt-4o-mini"},
    }
    config = GatewayConfig.from_mapping({"providers": {"azure": azure}, "default_provider": "azure"})
    assert config.providers["azure"]["models"] == {"prod-mini": "gpt-4o-mini"}
    with pytest.raises(ConfigError, match="models maps deployment names to model names"):
        GatewayConfig.from_mapping(
            {"providers": {"azure": {**azure, "models": ["gpt-4o"]}}, "default_provider": "azure"}
        )


def test_an_anthropic_deployment_needs_no_api_base_and_reaches_the_functions() -> None:
    spec = {"type": "anthropic", "default_max_tokens": 2048}
    config = GatewayConfig.from_mapping({"providers": {"anthropic": spec}, "default_provider": "anthropic"})
    assert config.providers["anthropic"] == spec
    from gateway.providers.config import parse_deployments

    deployment = parse_deployments(config.providers)["anthropic"]
    assert (deployment.api_base, deployment.anthropic_version) == ("https://api.anthropic.com", "2023-06-01")
    assert deployment.default_max_tokens == 2048 and deployment.keeps_files


def test_architecture_is_arm64_unless_set_and_only_lambdas_two() -> None:
    assert GatewayConfig().architecture == "arm64"
    assert GatewayConfig.from_mapping({"architecture": "x86_64"}).architecture == "x86_64"
    with pytest.raises(ConfigError, match="architecture must be one of"):
        GatewayConfig(architecture="aarch64")


@pytest.mark.parametrize(
    "api_base", ["http://127.0.0.1:4010/v1", "http://localhost:4010", "http://[::1]:4010"]
)
def test_loopback_http_providers_only_with_the_test_switch(api_base: str) -> None:
    spec = {"type": "openai", "api_base": api_base}
    with pytest.raises(ConfigError, match="api_base must be an https:// URL"):
        GatewayConfig(providers={"sim": spec}, default_provider="sim")
    config = GatewayConfig.from_mapping(
        {"providers": {"sim": spec}, "default_provider": "sim", "loopback_test_endpoints": "true"}
    )
    assert config.providers["sim"]["api_base"] == api_base


@pytest.mark.parametrize("api_base", ["http://10.0.0.5/v1", "http://example.com/v1", "ftp://127.0.0.1/v1"])
def test_the_test_switch_allows_no_other_plain_http(api_base: str) -> None:
    with pytest.raises(ConfigError, match="api_base must be an https:// URL"):
        GatewayConfig(
            providers={"sim": {"type": "openai", "api_base": api_base}},
            default_provider="sim",
            loopback_test_endpoints=True,
        )


def test_the_test_endpoint_host_is_allowed_plain_http_only_with_the_test_switch() -> None:
    spec = {"type": "openai", "api_base": "http://172.17.0.1:4010/v1"}
    config = GatewayConfig.from_mapping(
        {
            "providers": {"sim": spec},
            "default_provider": "sim",
            "loopback_test_endpoints": "true",
            "test_endpoint_host": "172.17.0.1",
        }
    )
    assert config.test_endpoint_host == "172.17.0.1"
    with pytest.raises(ConfigError, match="only for a test deployment"):
        GatewayConfig(providers={"sim": spec}, default_provider="sim", test_endpoint_host="172.17.0.1")
    with pytest.raises(ConfigError, match="must be an IP address"):
        GatewayConfig(
            providers={"sim": spec},
            default_provider="sim",
            loopback_test_endpoints=True,
            test_endpoint_host="docker-host",
        )
    other = {"type": "openai", "api_base": "http://172.17.0.2:4010/v1"}
    with pytest.raises(ConfigError, match="api_base must be an https:// URL"):
        GatewayConfig(
            providers={"sim": other},
            default_provider="sim",
            loopback_test_endpoints=True,
            test_endpoint_host="172.17.0.1",
        )
