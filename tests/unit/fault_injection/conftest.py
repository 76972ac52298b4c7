"""Fault injection: the fixtures of tests/unit plus the write-failure injector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway.storage.dynamo import dynamodb_client

from tests import books_check
from tests.unit.fault_injection.faults import DynamoFaults, PlanFileFaults
from tests.unit.fault_injection.providers import FakeProvider
from tests.unit.test_uploads import gateway, sim  # noqa: F401  (fixtures: moto + bucket + simulator)


@pytest.fixture
def faults(aws: None) -> Iterator[DynamoFaults]:
    yield DynamoFaults(dynamodb_client())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test's body passed, while its fixtures (moto, fake providers, faults) still
    stand: the faults disarmed, one watcher pass, and the books must balance."""
    result = yield
    if "aws" in getattr(item, "fixturenames", ()) and not books_check.opted_out(item):
        _disarm(item)
        found = books_check.after_a_pass()
        assert not found, books_check.failure(found)
    return result


def _disarm(item: pytest.Item) -> None:
    """What a test armed stops failing: the pass that converges the books is a healthy one."""
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, DynamoFaults | PlanFileFaults):
            value.fired = True
        elif isinstance(value, FakeProvider):
            value.fail = value.list_fails = False
            value.stall.clear()
