"""Fault injection: the fixtures of tests/unit plus the write-failure injector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway.storage.dynamo import dynamodb_client

from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.test_uploads import gateway, sim  # noqa: F401  (fixtures: moto + bucket + simulator)


@pytest.fixture
def faults(aws: None) -> Iterator[DynamoFaults]:
    yield DynamoFaults(dynamodb_client())
