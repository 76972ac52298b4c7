"""The pure parts of `make localstack-test` (tests/localstack/run.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

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


def a_run(executor: str, host: str = run.LOOPBACK) -> run.Run:
    return run.Run(
        directory=Path("/tmp/run"),
        port=4566,
        sim_port=4010,
        executor=executor,
        architecture="x86_64",
        host=host,
    )


@pytest.mark.parametrize(("docker_answers", "executor"), [(True, "docker"), (False, "process")])
def test_the_executor_is_localstacks_docker_one_exactly_when_docker_answers(
    monkeypatch: pytest.MonkeyPatch, docker_answers: bool, executor: str
) -> None:
    monkeypatch.delenv(run.EXECUTOR_ENV, raising=False)
    assert run.lambda_executor(lambda: docker_answers) == executor


def test_the_process_executor_can_be_forced_without_asking_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(run.EXECUTOR_ENV, "process")

    def not_asked() -> bool:
        raise AssertionError("Docker was asked")

    assert run.lambda_executor(not_asked) == "process"


def test_forcing_docker_where_none_answers_stops_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(run.EXECUTOR_ENV, "docker")
    with pytest.raises(SystemExit, match="does not answer"):
        run.lambda_executor(lambda: False)
    monkeypatch.setenv(run.EXECUTOR_ENV, "lambda")
    with pytest.raises(SystemExit, match="auto, process, docker"):
        run.lambda_executor(lambda: True)


def test_without_a_docker_binary_docker_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    assert run.docker_available() is False


def test_the_process_executor_keeps_everything_on_loopback() -> None:
    process = a_run("process")
    env = run.localstack_env(process, "/usr/bin/python3.12")
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "process"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4566"
    assert "LAMBDA_DOCKER_NETWORK" not in env and "HOSTNAME_FROM_LAMBDA" not in env
    assert process.sim_url == "http://127.0.0.1:4010"
    assert "test_endpoint_host" not in run.test_context(process)


def test_the_docker_executor_puts_localstack_and_the_simulator_on_dockers_bridge_address() -> None:
    docker = a_run("docker", host="172.17.0.1")
    env = run.localstack_env(docker, "/usr/bin/python3.12")
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "docker"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4566,172.17.0.1:4566"
    assert env["LAMBDA_DOCKER_NETWORK"] == "bridge"
    assert env["HOSTNAME_FROM_LAMBDA"] == "172.17.0.1"
    assert env["OVERRIDE_IN_DOCKER"] == "0"
    assert docker.endpoint == "http://127.0.0.1:4566"  # the tests and the CDK CLI stay on loopback
    context = run.test_context(docker)
    assert context["test_endpoint_host"] == "172.17.0.1"
    config = GatewayConfig.from_mapping(context)  # the synth accepts what the run deploys
    assert config.providers["openai"]["api_base"] == "http://172.17.0.1:4010/v1"


def test_the_bridge_address_is_read_from_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def inspect(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="172.18.0.1\n", stderr="")

    monkeypatch.setattr(run.subprocess, "run", inspect)
    assert run.docker_bridge_gateway() == "172.18.0.1"
    assert calls[0][1:4] == ["network", "inspect", "bridge"]
    monkeypatch.setattr(
        run.subprocess,
        "run",
        lambda command, **_: subprocess.CompletedProcess(command, 1, "", "no such network"),
    )
    with pytest.raises(SystemExit, match="no such network"):
        run.docker_bridge_gateway()
