"""start_gateway() with the embedded moto server: resources, secrets and the function environment."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from gateway.runtime import async_invoke, resources

from devserver import aws
from devserver.server import (
    BEDROCK_MODELS,
    SIM_ANTHROPIC_KEY,
    SIM_AZURE_KEY,
    SIM_GEMINI_KEY,
    SIM_OPENAI_KEY,
    LocalAsyncRunner,
    LocalGateway,
    resolve_providers,
    start_gateway,
)

REAL_PROVIDERS = {
    "OPENAI_API_KEY": "sk-openai-test",
    "OPENAI_API_BASE": "https://openai.example/v1/",
    "AZURE_API_KEY": "azure-test-key",
    "AZURE_API_BASE": "https://res.openai.azure.com",
    "AZURE_API_VERSION": "2024-10-21",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "GEMINI_API_KEY": "gemini-test-key",
    "BEDROCK_REGION": "eu-west-1",  # real Bedrock there (the ambient AWS credentials), not the simulator
}


VERTEX_KEY = '{"type": "service_account"}'  # the file's text goes to the secret as it is


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    key_file = tmp_path_factory.mktemp("vertex") / "key.json"
    key_file.write_text(VERTEX_KEY)
    vertex = {
        "VERTEX_SERVICE_ACCOUNT_FILE": str(key_file),
        "VERTEX_PROJECT": "my-project",
        "VERTEX_LOCATION": "europe-west4",
        "VERTEX_GCS_BUCKET": "batches",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        before = os.environ.get("AWS_ENDPOINT_URL")
        gw = start_gateway(master_key="sk-test-master", provider_env={**REAL_PROVIDERS, **vertex})
        try:
            yield gw
        finally:
            gw.stop()
        assert os.environ.get("AWS_ENDPOINT_URL") == before  # the environment is restored
        assert async_invoke._local_runner is None


def client(gw: LocalGateway, service: str) -> Any:
    return boto3.client(service, endpoint_url=gw.aws_endpoint_url, region_name="us-east-1")  # type: ignore[call-overload]


def test_embedded_moto_endpoint(gateway: LocalGateway) -> None:
    assert gateway.embedded_moto
    assert gateway.aws_endpoint_url.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ENDPOINT_URL"] == gateway.aws_endpoint_url
    # BEDROCK_REGION: the bedrock client reaches real Bedrock, not the local endpoint
    assert os.environ["AWS_ENDPOINT_URL_BEDROCK"] == "https://bedrock.eu-west-1.amazonaws.com"
    assert os.environ["AWS_DEFAULT_REGION"]
    assert os.environ["AWS_ACCESS_KEY_ID"]
    # handlers create plain clients: they must reach moto through AWS_ENDPOINT_URL
    tables = boto3.client("dynamodb").list_tables()["TableNames"]
    assert resources.DEFAULT_TABLE_NAME in tables


def test_table_schema(gateway: LocalGateway) -> None:
    dynamodb = client(gateway, "dynamodb")
    table = dynamodb.describe_table(TableName=resources.DEFAULT_TABLE_NAME)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": resources.TABLE_PARTITION_KEY, "KeyType": "HASH"}]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert set(types.values()) == {"S"}
    indexes = {
        index["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]],
            index["Projection"]["ProjectionType"],
        )
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        name: ([(pk, "HASH"), (sk, "RANGE")], "ALL") for name, (pk, sk) in resources.TABLE_INDEXES.items()
    }
    ttl = dynamodb.describe_time_to_live(TableName=resources.DEFAULT_TABLE_NAME)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == resources.TABLE_TTL_ATTRIBUTE


def test_bucket_and_secrets(gateway: LocalGateway) -> None:
    s3 = client(gateway, "s3")
    s3.head_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    secrets = client(gateway, "secretsmanager")
    master = secrets.get_secret_value(SecretId=resources.DEFAULT_MASTER_KEY_SECRET)["SecretString"]
    assert master == "sk-test-master" == gateway.master_key
    keys = json.loads(
        secrets.get_secret_value(SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET)["SecretString"]
    )
    assert keys == {
        "openai": "sk-openai-test",
        "azure": "azure-test-key",
        "anthropic": "sk-ant-test",
        "gemini": "gemini-test-key",
        "vertex": VERTEX_KEY,
    }
    pepper = secrets.get_secret_value(SecretId=resources.DEFAULT_KEY_PEPPER_SECRET)["SecretString"]
    assert len(pepper) >= 32


def test_function_environment(gateway: LocalGateway) -> None:
    env = os.environ
    assert env[resources.ENV_TABLE_NAME] == resources.DEFAULT_TABLE_NAME
    assert env[resources.ENV_BUCKET_NAME] == resources.DEFAULT_BUCKET_NAME
    assert env[resources.ENV_MASTER_KEY_SECRET] == resources.DEFAULT_MASTER_KEY_SECRET
    assert env[resources.ENV_PROVIDER_KEYS_SECRET] == resources.DEFAULT_PROVIDER_KEYS_SECRET
    assert env[resources.ENV_KEY_PEPPER_SECRET] == resources.DEFAULT_KEY_PEPPER_SECRET
    assert env[resources.ENV_DEFAULT_PROVIDER] == "openai"
    assert env[resources.ENV_TRANSFER_FUNCTION] == "file_transfer"
    assert env["POWERTOOLS_SERVICE_NAME"] == "openai-gateway"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert json.loads(env[resources.ENV_PROVIDERS]) == {
        "openai": {"type": "openai", "api_base": "https://openai.example/v1"},
        "azure": {"type": "azure", "api_base": "https://res.openai.azure.com", "api_version": "2024-10-21"},
        "anthropic": {"type": "anthropic", "api_base": "https://api.anthropic.com"},
        "gemini": {"type": "gemini", "api_base": "https://generativelanguage.googleapis.com"},
        "bedrock": {"type": "bedrock", "region": "eu-west-1", "models": BEDROCK_MODELS},
        "vertex": {
            "type": "vertex",
            "api_base": "",  # set from its location (gateway.providers.vertex.config)
            "project": "my-project",
            "location": "europe-west4",
            "gcs_bucket": "batches",
        },
    }
    assert gateway.simulator is None
    assert gateway.simulated_providers == []


def test_bootstrap_is_idempotent_and_updates_secrets(gateway: LocalGateway) -> None:
    secrets = client(gateway, "secretsmanager")

    def secret(name: str) -> str:
        return str(secrets.get_secret_value(SecretId=name)["SecretString"])

    pepper = secret(resources.DEFAULT_KEY_PEPPER_SECRET)
    try:
        result = aws.bootstrap(
            master_key="sk-rotated", provider_keys={"openai": "new"}, endpoint_url=gateway.aws_endpoint_url
        )
        assert result.created == ()
        assert secret(resources.DEFAULT_MASTER_KEY_SECRET) == "sk-rotated"
        assert json.loads(secret(resources.DEFAULT_PROVIDER_KEYS_SECRET)) == {"openai": "new"}
        # the pepper is never replaced: that would invalidate every virtual key
        assert secret(resources.DEFAULT_KEY_PEPPER_SECRET) == pepper
    finally:
        aws.bootstrap(
            master_key=gateway.master_key,
            provider_keys={"openai": "sk-openai-test", "azure": "azure-test-key"},
            endpoint_url=gateway.aws_endpoint_url,
        )


def test_http_server_answers(gateway: LocalGateway) -> None:
    request = urllib.request.Request(gateway.url + "/definitely/not/a/route")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    assert caught.value.headers["x-request-id"]
    assert json.loads(caught.value.read())["error"]["code"] == "unknown_url"
    assert gateway.url == f"http://127.0.0.1:{gateway.port}"
    assert gateway.api_base == gateway.url + "/v1"


def test_async_runner_is_installed(gateway: LocalGateway) -> None:
    assert async_invoke._local_runner is gateway.async_runner


def test_local_async_runner_runs_handler_in_thread() -> None:
    seen: list[tuple[dict[str, Any], str, str]] = []
    done = threading.Event()

    def handler(payload: dict[str, Any], context: Any) -> None:
        seen.append((payload, context.function_name, threading.current_thread().name))
        done.set()

    runner = LocalAsyncRunner(resolver=lambda name: handler)
    runner("file_transfer", {"file_id": "file-1"})
    assert done.wait(5)
    assert runner.wait(5)
    assert seen == [({"file_id": "file-1"}, "file_transfer", "async-file_transfer")]
    with pytest.raises(ValueError):
        runner("no_such_function", {})
    with pytest.raises(TypeError):  # the payload must be JSON, as for a real Event invocation
        runner("file_transfer", {"x": object()})


def test_local_async_runner_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    def handler(payload: dict[str, Any], context: Any) -> None:
        raise RuntimeError("transfer failed")

    runner = LocalAsyncRunner(resolver=lambda name: handler)
    runner("file_transfer", {})
    assert runner.wait(5)
    assert "transfer failed" in caplog.text


# -- provider configuration --------------------------------------------------------------


def test_resolve_providers_defaults() -> None:
    providers = resolve_providers({"OPENAI_API_KEY": "k"})
    assert providers["openai"].api_base == "https://api.openai.com/v1"
    assert not providers["openai"].simulated
    assert providers["azure"].simulated  # only one key: the other provider is simulated
    assert providers["azure"].api_key == SIM_AZURE_KEY
    assert providers["azure"].api_version == "2025-04-01-preview"

    none = resolve_providers({})
    assert none["openai"].simulated and none["azure"].simulated
    assert none["openai"].api_key == SIM_OPENAI_KEY

    with pytest.raises(ValueError, match="AZURE_API_BASE"):
        resolve_providers({"AZURE_API_KEY": "k"})


def test_vertex_runs_on_google_cloud_with_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    env = {
        "VERTEX_SERVICE_ACCOUNT_FILE": str(key),
        "VERTEX_PROJECT": "my-project",
        "VERTEX_LOCATION": "europe-west4",
    }
    with pytest.raises(ValueError, match="VERTEX_GCS_BUCKET"):
        resolve_providers(env)
    vertex = resolve_providers({**env, "VERTEX_GCS_BUCKET": "batches", "VERTEX_GCS_PREFIX": "gw/"})["vertex"]
    assert not vertex.simulated and vertex.api_key == '{"type": "service_account"}'
    config = vertex.config()
    assert (config["project"], config["location"], config["gcs_bucket"], config["gcs_prefix"]) == (
        "my-project",
        "europe-west4",
        "batches",
        "gw/",
    )
    assert resolve_providers({})["vertex"].simulated


def test_no_provider_keys_uses_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with start_gateway(provider_env={}, simulator_phase_seconds=0.1) as gw:
        assert gw.simulator is not None
        assert set(gw.simulated_providers) == {"openai", "azure", "anthropic", "gemini", "bedrock", "vertex"}
        # boto3's bedrock client (Bedrock needs no key: AWS credentials) finds the simulator
        assert os.environ["AWS_ENDPOINT_URL_BEDROCK"] == gw.simulator.bedrock_endpoint_url
        config = json.loads(os.environ[resources.ENV_PROVIDERS])
        assert config["openai"]["api_base"] == gw.simulator.openai_api_base
        assert config["azure"]["api_base"] == gw.simulator.azure_api_base
        assert config["anthropic"]["api_base"] == gw.simulator.anthropic_api_base
        assert config["gemini"]["api_base"] == gw.simulator.gemini_api_base
        assert config["vertex"]["api_base"] == gw.simulator.vertex_api_base
        assert config["vertex"]["gcs_api_base"] == gw.simulator.gcs_api_base
        secrets = client(gw, "secretsmanager")
        keys = json.loads(
            secrets.get_secret_value(SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET)["SecretString"]
        )
        vertex_key = json.loads(keys.pop("vertex"))  # the simulator's service account
        assert vertex_key["type"] == "service_account"
        assert vertex_key["token_uri"].startswith(gw.simulator.url)
        assert keys == {
            "openai": SIM_OPENAI_KEY,
            "azure": SIM_AZURE_KEY,
            "anthropic": SIM_ANTHROPIC_KEY,
            "gemini": SIM_GEMINI_KEY,
        }
        sim_url = gw.simulator.url
    with pytest.raises(OSError):  # stopped with the gateway
        urllib.request.urlopen(sim_url, timeout=2)
