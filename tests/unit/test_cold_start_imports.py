"""What a cold start loads and creates (bench/coldstart.py measures the time; this pins the wins).

Each handler is imported in a fresh interpreter, as Lambda's init phase does: /health loads
no AWS SDK, no httpx and none of the authentication code; httpx comes with the handler only
in the functions that call a provider. The Secrets Manager client shares boto3's default
session with the other clients, and the provider clients share one TLS context.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from gateway import routes, secret_store
from gateway.providers import client as provider_client
from gateway.providers.config import ProviderDeployment
from gateway.storage.dynamo import dynamodb_client

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

# Never at /health's cold start: the AWS SDK (s3transfer comes with boto3), httpx, the code
# and settings only authenticated routes use.
NOT_FOR_HEALTH = (
    "boto3",
    "botocore.session",
    "s3transfer",
    "httpx",
    "aws_lambda_powertools.utilities.parameters",
    "gateway.auth",
    "gateway.secret_store",
    "gateway.settings",
    "gateway.provider_choice",
    "gateway.storage.dynamo",
)
WATCHED = (*NOT_FOR_HEALTH, "gateway.providers.client")

_CHILD = """\
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps([name for name in json.loads(sys.argv[2]) if name in sys.modules]))
"""


def _loaded_by(function: str) -> set[str]:
    """The WATCHED modules that importing handlers.<function> loads in a fresh interpreter."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env["PYTHONPATH"] = str(FUNCTIONS_DIR)
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, f"handlers.{function}", json.dumps(WATCHED)],
        cwd=FUNCTIONS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def _functions() -> list[tuple[str, frozenset[str]]]:
    functions = [(r.name, r.grants) for r in routes.ROUTES]
    return functions + [(f.name, f.permissions) for f in routes.ASYNC_FUNCTIONS]


def test_health_loads_no_aws_sdk_and_no_auth() -> None:
    assert _loaded_by("health").isdisjoint(NOT_FOR_HEALTH)


def test_httpx_only_with_the_functions_that_call_a_provider() -> None:
    functions = [(name, grants) for name, grants in _functions() if name != "health"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        names = [name for name, _ in functions]
        loaded = dict(zip(names, pool.map(_loaded_by, names), strict=True))
    for name, grants in functions:
        calls_provider = routes.SECRET_PROVIDER_KEYS in grants
        assert ("httpx" in loaded[name]) == calls_provider, name
        assert ("gateway.providers.client" in loaded[name]) == calls_provider, name
        assert "boto3" in loaded[name], name
    authenticated = {r.name for r in routes.ROUTES if r.authenticated}
    assert {name for name, modules in loaded.items() if "gateway.auth" in modules} == authenticated


def test_secrets_client_shares_the_default_boto3_session(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities import parameters

    dynamodb_client()  # the first client: boto3's default session exists from here on

    def no_new_session(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second boto3 session: endpoint data and service lists loaded again")

    monkeypatch.setattr(boto3.session, "Session", no_new_session)
    parameters.clear_caches()
    assert secret_store.master_key()
    assert secret_store.secrets_provider() is secret_store.secrets_provider()


@pytest.fixture
def counted_tls_contexts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[None]]:
    made: list[None] = []
    original = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(None)
        return original(*args, **kwargs)

    provider_client._tls_context.cache_clear()
    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    yield made
    provider_client._tls_context.cache_clear()


def test_provider_clients_share_one_tls_context(counted_tls_contexts: list[None]) -> None:
    clients = [
        provider_client.ProviderClient(
            ProviderDeployment(name=name, type="openai", api_base=f"https://{name}.example/v1"),
            lambda refresh: "key",
            timeout=5,
        )
        for name in ("one", "two", "three")
    ]
    for client in clients:
        client.close()
    assert len(counted_tls_contexts) == 1
