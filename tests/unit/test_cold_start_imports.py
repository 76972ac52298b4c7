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
from gateway import routes
from gateway.providers import http_send
from gateway.providers.config import ProviderDeployment
from gateway.providers.openai import client as provider_client
from gateway.runtime import secret_store
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
    "gateway.http.auth",
    "gateway.runtime.secret_store",
    "gateway.runtime.settings",
    "gateway.http.provider_choice",
    "gateway.storage.dynamo",
)
WATCHED = (*NOT_FOR_HEALTH, "gateway.providers.openai.client", "gateway.service.content_delivery")

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


def test_the_console_loads_no_aws_sdk_and_no_auth() -> None:
    """It serves static files: nothing of the API's."""
    assert _loaded_by("console").isdisjoint(WATCHED)


def test_httpx_only_with_the_functions_that_call_a_provider() -> None:
    functions = [(name, grants) for name, grants in _functions() if name not in ("health", "console")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        names = [name for name, _ in functions]
        loaded = dict(zip(names, pool.map(_loaded_by, names), strict=True))
    for name, grants in functions:
        calls_provider = routes.SECRET_PROVIDER_KEYS in grants
        assert ("httpx" in loaded[name]) == calls_provider, name
        assert ("gateway.providers.openai.client" in loaded[name]) == calls_provider, name
        assert "boto3" in loaded[name], name
    authenticated = {r.name for r in routes.ROUTES if r.authenticated}
    assert {name for name, modules in loaded.items() if "gateway.http.auth" in modules} == authenticated


def test_content_delivery_only_with_the_function_that_delivers_content() -> None:
    """S3's content cache is loaded at init by files.content only (files.delete loads it when it
    deletes); the other files functions share service.files without it."""
    assert "gateway.service.content_delivery" in _loaded_by("files_content")
    for function in ("files_list", "files_retrieve", "files_create"):
        assert "gateway.service.content_delivery" not in _loaded_by(function), function


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

    http_send._tls_context.cache_clear()
    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    yield made
    http_send._tls_context.cache_clear()


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


_MODELS_CHILD = """\
import importlib, json, sys
importlib.import_module(sys.argv[1])
from gateway.models.common import GatewayModel
pending, built = [GatewayModel], []
while pending:
    model = pending.pop()
    pending.extend(model.__subclasses__())
    # (a generic model's own origin class, ListPage[T], is built when it is parametrized)
    if model.__pydantic_complete__ and not model.__pydantic_generic_metadata__["parameters"]:
        built.append(model.__name__)
print(json.dumps(built))
"""


@pytest.mark.parametrize("function", ["keys_update", "batches_create", "files_list"])
def test_wire_models_are_built_at_first_use_not_at_import(function: str) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env["PYTHONPATH"] = str(FUNCTIONS_DIR)
    completed = subprocess.run(
        [sys.executable, "-c", _MODELS_CHILD, f"handlers.{function}"],
        cwd=FUNCTIONS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def _figures(total_ms: float) -> dict[str, Any]:
    return {"total_ms": total_ms, "min_total_ms": total_ms, "import_ms": total_ms, "clients_ms": 0.0}


def test_coldstart_own_cost_is_the_handler_over_its_own_floor() -> None:
    from bench import coldstart

    handlers = [
        coldstart.Target(
            "files_list", "handlers.files_list", (), sys.executable, {}, FUNCTIONS_DIR, ("dynamodb",)
        ),
        coldstart.Target("health", "handlers.health", (), sys.executable, {}, FUNCTIONS_DIR, ()),
    ]
    cached = {
        "files_list": _figures(420.0),
        "health": _figures(150.0),
        "files_list" + coldstart.AFTER_FLOOR: _figures(25.0),
        "health" + coldstart.AFTER_FLOOR: _figures(31.0),
        coldstart.floor_name(("dynamodb",)): _figures(400.0),
        coldstart.floor_name(()): _figures(100.0),
    }
    rows = coldstart.handler_rows(handlers, cached, None)
    assert rows["files_list"]["difference_ms"] == pytest.approx(20.0)
    assert rows["files_list"]["own_ms"] == pytest.approx(25.0) and rows["files_list"]["goal_met"]
    assert rows["health"]["difference_ms"] == pytest.approx(50.0)
    assert rows["health"]["own_ms"] == pytest.approx(31.0) and not rows["health"]["goal_met"]
    assert not coldstart.goal_met({"handlers": rows})
    assert coldstart.goal_met({"handlers": {"files_list": rows["files_list"]}})


def test_coldstart_exits_non_zero_when_the_goal_is_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import coldstart

    def fake_run(targets: Any, runs: int, **_: Any) -> dict[str, Any]:
        return {t.name: _figures(40.0 if t.name.endswith(coldstart.AFTER_FLOOR) else 100.0) for t in targets}

    monkeypatch.setattr(coldstart, "run", fake_run)
    monkeypatch.setattr(coldstart, "startup_seconds", lambda python, runs: 0.01)
    monkeypatch.setattr(coldstart, "litellm_python", lambda explicit: None)
    assert coldstart.main(["--only", "health", "--quick"]) == 1  # its own import: 40 ms
    assert coldstart.main(["--only", "health", "--quick", "--report-only"]) == 0

    def within_goal(targets: Any, runs: int, **_: Any) -> dict[str, Any]:
        return {t.name: _figures(20.0 if t.name.endswith(coldstart.AFTER_FLOOR) else 100.0) for t in targets}

    monkeypatch.setattr(coldstart, "run", within_goal)
    assert coldstart.main(["--only", "health", "--quick"]) == 0
