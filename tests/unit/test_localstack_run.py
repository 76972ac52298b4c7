"""The pure parts of `make localstack-test` (tests/localstack/run.py)."""

from __future__ import annotations

import pytest

from infra.config import GatewayConfig
from tests.localstack import run


def test_localstacks_api_url_becomes_the_path_style_one_that_needs_no_dns_name() -> None:
    url = "https://hk61dkowm3.execute-api.localhost.localstack.cloud:4566/prod/"
    assert run.path_style_api_url(url, "http://127.0.0.1:59063") == (
        "http://127.0.0.1:59063/_aws/execute-api/hk61dkowm3/prod"
    )


def test_an_api_url_without_a_stage_is_refused() -> None:
    with pytest.raises(SystemExit, match="cannot read the API id and stage"):
        run.path_style_api_url("https://abc.execute-api.localhost.localstack.cloud:4566/", "http://x")


def test_the_simulated_providers_are_a_valid_deployment_only_with_the_test_switch() -> None:
    providers = run.simulator_providers("http://127.0.0.1:47011")
    assert providers["openai"]["api_base"] == "http://127.0.0.1:47011/v1"
    config = GatewayConfig.from_mapping(
        {"providers": providers, "default_provider": "openai", "loopback_test_endpoints": True}
    )
    assert set(config.providers) == {"openai", "azure", "anthropic"}


@pytest.mark.parametrize(("machine", "architecture"), [("x86_64", "x86_64"), ("aarch64", "arm64")])
def test_the_deployment_is_synthesized_for_the_hosts_architecture(
    monkeypatch: pytest.MonkeyPatch, machine: str, architecture: str
) -> None:
    monkeypatch.setattr(run.platform, "machine", lambda: machine)
    assert run.host_architecture() == architecture
    assert GatewayConfig(architecture=run.host_architecture()).architecture == architecture


def test_an_unknown_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.platform, "machine", lambda: "riscv64")
    with pytest.raises(SystemExit, match="riscv64"):
        run.host_architecture()
