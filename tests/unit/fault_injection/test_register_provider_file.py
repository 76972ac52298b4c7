"""register_provider_file (a batch's output file seen for the first time): two writes, the
reverse claim and the object. Whatever fails, the next retrieve finishes the registration,
and the id handed out always has its record."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from gateway.service import translate
from gateway.storage.id_map import IdMap

from tests.unit.fault_injection.faults import DynamoFaults

UPSTREAM = "file-out-1"


class FakeProvider:
    """A provider holding one output file; `broken` makes retrieves fail or answer junk."""

    def __init__(self) -> None:
        self.retrieves = 0
        self.broken: str | None = None

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        self.retrieves += 1
        if self.broken == "unreachable":
            raise ConnectionError("provider unreachable")
        if file_id != UPSTREAM:
            raise LookupError(f"no such file: {file_id}")  # the provider holds only that one
        if self.broken == "invalid":
            return {"id": file_id, "bytes": "many"}  # fails FileObject validation
        return {
            "id": file_id,
            "object": "file",
            "bytes": 42,
            "created_at": 1700000000,
            "filename": "batch_output.jsonl",
            "purpose": "batch_output",
            "status": "processed",
        }


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(translate, "client_for", lambda name: fake if name == "openai" else None)
    return fake


def register() -> str:
    return translate.register_provider_file(IdMap(), "openai", UPSTREAM, owner="key_owner")


def assert_registered(gateway_id: str) -> None:
    """One object record, the owner's, pointing at the upstream file; the reverse item agrees."""
    id_map = IdMap()
    record = id_map.get(gateway_id)
    assert record is not None and record.kind == "file" and record.provider == "openai"
    assert record.owner == "key_owner" and record.upstream_id == UPSTREAM
    assert record.purpose == "batch_output"
    assert id_map.gateway_id_for("openai", UPSTREAM) == gateway_id


def test_the_record_holds_the_providers_file_under_the_gateway_id(
    faults: DynamoFaults, provider: FakeProvider
) -> None:
    gateway_id = register()
    record = IdMap().get(gateway_id)
    assert record is not None and provider.retrieves == 1
    assert record.object == {
        "id": gateway_id,
        "object": "file",
        "bytes": 42,
        "created_at": 1700000000,
        "filename": "batch_output.jsonl",
        "purpose": "batch_output",
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }
    assert record.created_at == 1700000000


def file_items() -> int:
    import boto3

    items = boto3.client("dynamodb").scan(TableName=IdMap().table)["Items"]
    return sum(1 for item in items if item.get("kind", {}).get("S") == "file")


def test_registers_once(faults: DynamoFaults, provider: FakeProvider) -> None:
    first = register()
    assert_registered(first)
    assert faults.writes == ["PutItem", "PutItem"]  # the claim, then the object
    assert register() == first and file_items() == 1


def test_fails_at_claim(faults: DynamoFaults, provider: FakeProvider) -> None:
    faults.fail("PutItem", 1)
    with pytest.raises(ClientError):
        register()
    gateway_id = register()  # the retry
    assert_registered(gateway_id)
    assert file_items() == 1


def test_fails_after_claim_before_object_put(faults: DynamoFaults, provider: FakeProvider) -> None:
    faults.fail("PutItem", 2)
    with pytest.raises(ClientError):
        register()
    claimed = IdMap().gateway_id_for("openai", UPSTREAM)
    assert claimed is not None and IdMap().get(claimed) is None  # half done
    assert register() == claimed  # the next retrieve finishes it under the claimed id
    assert_registered(claimed)
    assert file_items() == 1


def test_object_put_applied_but_its_answer_lost(faults: DynamoFaults, provider: FakeProvider) -> None:
    faults.fail("PutItem", 2, when="after")
    with pytest.raises(BotoCoreError):
        register()
    claimed = IdMap().gateway_id_for("openai", UPSTREAM)
    assert claimed is not None
    assert register() == claimed
    assert_registered(claimed)
    assert file_items() == 1


def test_claim_applied_but_its_answer_lost(faults: DynamoFaults, provider: FakeProvider) -> None:
    faults.fail("PutItem", 1, when="after")
    with pytest.raises(BotoCoreError):
        register()
    gateway_id = register()
    assert gateway_id == IdMap().gateway_id_for("openai", UPSTREAM)
    assert_registered(gateway_id)
    assert file_items() == 1


def test_losing_the_race_returns_an_id_whose_record_exists(
    faults: DynamoFaults, provider: FakeProvider
) -> None:
    """The winner claimed and has not written its object yet: the loser writes it."""
    winner = "file-winner"
    assert IdMap().claim_upstream("openai", UPSTREAM, winner) == winner
    assert register() == winner
    assert_registered(winner)
    # the winner's own object write then finds it there and changes nothing
    assert translate.register_provider_file(IdMap(), "openai", UPSTREAM, owner="key_owner") == winner
    assert file_items() == 1


@pytest.mark.parametrize("broken", ["unreachable", "invalid"])
def test_a_failed_fetch_registers_a_stand_in_with_the_upstream_id(
    faults: DynamoFaults, provider: FakeProvider, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.broken = broken
    started = int(time.time())
    gateway_id = register()
    assert_registered(gateway_id)
    record = IdMap().get(gateway_id)
    assert record is not None
    created_at = record.object.pop("created_at")
    assert started <= created_at <= int(time.time()) and record.created_at == created_at
    assert record.object == {
        "id": gateway_id,
        "object": "file",
        "bytes": 0,
        "filename": f"{UPSTREAM}.jsonl",
        "purpose": "batch_output",
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }
    warned = [
        (r.getMessage(), getattr(r, "provider", None), getattr(r, "upstream_id", None))
        for r in caplog.records
    ]
    assert ("could not fetch provider file", "openai", UPSTREAM) in warned
    provider.broken = None
    assert register() == gateway_id and file_items() == 1
