"""The SnapStart runtime hooks (gateway.runtime.snapstart): registered only for a snapshot, priming what
a route's first request creates, and forgetting after a restore what no copy may share."""

from __future__ import annotations

import importlib
import random
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from gateway import routes
from gateway.providers import registry
from gateway.runtime import snapstart
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.s3 import s3_client

Hook = tuple[Callable[..., Any], tuple[Any, ...]]


@pytest.fixture
def runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Hook]]:
    """A stand-in for the runtime's snapshot_restore_py: records what is registered."""
    registered: dict[str, list[Hook]] = {"before_snapshot": [], "after_restore": []}
    module = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = lambda func, *args: registered["before_snapshot"].append((func, args))  # type: ignore[attr-defined]
    module.register_after_restore = lambda func, *args: registered["after_restore"].append((func, args))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    return registered


def test_no_hooks_without_a_snapshot(
    runtime_hooks: dict[str, list[Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(snapstart.INITIALIZATION_TYPE_ENV, "on-demand")
    assert snapstart.register_hooks(routes.route("files_create")) is False
    assert runtime_hooks == {"before_snapshot": [], "after_restore": []}


def test_a_handler_registers_both_hooks_for_a_snapshot(
    runtime_hooks: dict[str, list[Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(snapstart.INITIALIZATION_TYPE_ENV, snapstart.SNAPSHOT_INITIALIZATION)
    monkeypatch.delitem(sys.modules, "handlers.files_retrieve", raising=False)  # put back afterwards
    importlib.import_module("handlers.files_retrieve")  # its init phase, as Lambda runs it
    ((before, args),) = runtime_hooks["before_snapshot"]
    assert before is snapstart.prime and args[0].name == "files_retrieve"
    assert runtime_hooks["after_restore"] == [(snapstart.forget_unique_state, ())]


def test_prime_creates_the_clients_and_reads_the_secrets(aws: None) -> None:
    s3_client.cache_clear()
    from gateway.models.keys import KeyListResponse

    KeyListResponse.__pydantic_complete__ = False  # as at a cold start: built at first use
    snapstart.prime(routes.route("files_content"))  # table, secrets, bucket and providers
    assert KeyListResponse.__pydantic_complete__  # every loaded wire model is built
    assert dynamodb_client.cache_info().currsize == 1
    assert s3_client.cache_info().currsize == 1
    assert set(registry._clients) == {"openai", "azure"}
    assert DEFAULT_PROVIDERS["secrets"].store  # the master key and the pepper, cached
    s3_client.cache_clear()


def test_prime_for_health_reads_no_secret(aws: None) -> None:
    snapstart.prime(routes.route("health"))
    assert dynamodb_client.cache_info().currsize == 0
    assert "secrets" not in DEFAULT_PROVIDERS


def test_after_restore_nothing_unique_is_shared(aws: None) -> None:
    snapstart.prime(routes.route("files_retrieve"))
    random.seed(1234)
    restored_copy = random.getstate()  # what every copy of the snapshot would start from
    expected = random.random()
    random.setstate(restored_copy)
    snapstart.forget_unique_state()
    assert random.random() != expected  # reseeded
    assert not DEFAULT_PROVIDERS["secrets"].store  # secret values read again after a restore
    assert registry._clients == {}  # no connection pool from the snapshot
    assert dynamodb_client.cache_info().currsize == 1  # boto3's clients stay (they reconnect)
