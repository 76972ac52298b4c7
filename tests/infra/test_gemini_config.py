"""A gemini deployment in cdk.json's providers: no api_base needed, Google's by default."""

from __future__ import annotations

from infra.config import GatewayConfig


def test_a_gemini_deployment_needs_no_api_base_and_reaches_the_functions() -> None:
    spec = {"type": "gemini", "models": {"flash": "gemini-2.5-flash"}}
    config = GatewayConfig.from_mapping({"providers": {"gemini": spec}, "default_provider": "gemini"})
    assert config.providers["gemini"] == spec
    from gateway.providers.config import parse_deployments

    deployment = parse_deployments(config.providers)["gemini"]
    assert deployment.api_base == "https://generativelanguage.googleapis.com"
    assert deployment.keeps_files and deployment.base_model("flash") == "gemini-2.5-flash"
