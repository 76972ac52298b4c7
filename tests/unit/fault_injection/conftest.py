"""Fault injection: the fixtures of tests/unit plus the write-failure injector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway.storage.dynamo import dynamodb_client

from tests.unit.fault_injection.faults import DynamoFaults


@pytest.fixture
def faults(aws: None) -> Iterator[DynamoFaults]:
    yield DynamoFaults(dynamodb_client())
