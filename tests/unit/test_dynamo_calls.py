"""How many DynamoDB calls each hot path makes: pinned with a botocore hook on the gateway's client.

The provider is a small fake (an object per upstream id that a test can change), so that what
is pinned here is only the gateway's own table traffic.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from gateway.http.auth import MASTER
from gateway.models.batches import CreateBatchRequest
from gateway.providers.caps import BatchCaps, default_caps
from gateway.service import batches, files, settlement, translate
from gateway.service.files import NewFile
from gateway.service.listing import ListRequest
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap, ObjectRecord

BATCH_LINE = (
    b'{"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "gpt-4o-mini", "messages": []}}\n'
)


class FakeProvider:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.list_page = 100
        self.list_fails = False

    def create_file(self, *, filename: str, purpose: str, **_: Any) -> dict[str, Any]:
        upstream_id = f"up-file-{len(self.files)}"
        self.files[upstream_id] = {
            "id": upstream_id,
            "object": "file",
            "bytes": 3,
            "created_at": 1_700_000_000,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        return copy.deepcopy(self.files[upstream_id])

    def retrieve_file(self, upstream_id: str) -> dict[str, Any]:
        self.calls.append(f"retrieve_file {upstream_id}")
        return copy.deepcopy(self.files[upstream_id])

    def batch_caps(self, model: str) -> BatchCaps:
        return default_caps("openai", model)  # OpenAI's documented caps, as its adapter's

    def create_batch(self, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        upstream_id = f"up-batch-{len(self.batches)}"
        self.batches[upstream_id] = {
            "id": upstream_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "created_at": 1_700_000_000 + len(self.batches),
        }
        return copy.deepcopy(self.batches[upstream_id])

    def retrieve_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(f"retrieve_batch {upstream_id}")
        return copy.deepcopy(self.batches[upstream_id])

    def list_batches(self, *, limit: int = 20, timeout: float | None = None) -> dict[str, Any]:
        """Newest first, as OpenAI and Azure list; `list_page` caps the page to test a miss."""
        self.calls.append(f"list_batches limit={limit}")
        if self.list_fails:
            raise RuntimeError("provider down")
        newest = sorted(self.batches.values(), key=lambda b: -b["created_at"])[: min(limit, self.list_page)]
        return {"object": "list", "data": copy.deepcopy(newest), "has_more": len(self.batches) > len(newest)}

    @contextmanager
    def stream_file_content(self, upstream_id: str) -> Iterator[Any]:
        """An output file's content (settlement reads it once): one successful request."""
        self.calls.append(f"stream_file_content {upstream_id}")
        usage = b'{"usage": {"prompt_tokens": 3}}'
        line = b'{"custom_id": "r0", "response": {"status_code": 200, "body": ' + usage + b"}}\n"
        yield SimpleNamespace(iter_bytes=lambda _size=None: iter([line]))

    def complete(self, upstream_batch_id: str) -> None:
        """The batch finishes with an output file the provider made."""
        output = self.create_file(filename="output.jsonl", purpose="batch_output")
        self.batches[upstream_batch_id].update(status="completed", output_file_id=output["id"])


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    for module in (files, batches, translate, settlement):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


@pytest.fixture
def calls(aws: None) -> Iterator[list[str]]:
    """The DynamoDB operations made through the gateway's client, in order."""
    made: list[str] = []

    def record(model: Any, **_: Any) -> None:
        made.append(model.name)

    events = dynamodb_client().meta.events
    events.register("before-call.dynamodb", record)
    yield made
    events.unregister("before-call.dynamodb", record)


def _create_file(provider: FakeProvider) -> str:
    return files.create_file(MASTER, "openai", NewFile("in.jsonl", BATCH_LINE, "batch")).id


def _create_batch(file_id: str) -> str:
    request = CreateBatchRequest(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batches.create_batch(MASTER, None, request).id


def test_file_create_writes_ahead_and_an_unchanged_retrieve_is_one_read(
    provider: FakeProvider, calls: list[str]
) -> None:
    file_id = _create_file(provider)
    # the pending record, the upstream id's reverse item claimed, the record finished: each conditional
    assert calls == ["PutItem", "PutItem", "UpdateItem"]
    record = IdMap().get(file_id)
    assert record is not None and record.upstream_id is not None
    assert IdMap().gateway_id_for("openai", record.upstream_id) == file_id  # the reverse item too

    calls.clear()
    files.retrieve_file(MASTER, file_id)
    assert calls == ["GetItem"]

    provider.files[record.upstream_id]["status"] = "error"
    calls.clear()
    assert files.retrieve_file(MASTER, file_id).status == "error"
    assert calls == ["GetItem", "UpdateItem"]

    calls.clear()
    page = files.list_files(MASTER, ListRequest(limit=10))
    assert calls == ["Query"]
    assert [(f.id, f.status) for f in page.data] == [(file_id, "error")]  # the list reads what was written


def test_batch_create_retrieve_and_output_file_registration(provider: FakeProvider, calls: list[str]) -> None:
    file_id = _create_file(provider)
    calls.clear()
    batch_id = _create_batch(file_id)
    assert calls == ["GetItem", "PutItem", "PutItem", "UpdateItem"]  # input file, then as a file create

    calls.clear()
    assert batches.retrieve_batch(MASTER, batch_id).status == "validating"
    assert calls == ["GetItem"]

    upstream_batch = next(iter(provider.batches))
    provider.complete(upstream_batch)
    calls.clear()
    done = batches.retrieve_batch(MASTER, batch_id)
    # the batch read, the output file's reverse claimed, its object stored, the settlement claimed
    # and committed (usage and cost, once), the batch written back with its event (one transaction),
    # the owner's webhook endpoints looked up, the published event out of the outbox
    assert calls == [
        "GetItem",
        "PutItem",
        "PutItem",
        "UpdateItem",
        "TransactWriteItems",
        "TransactWriteItems",
        "Query",
        "DeleteItem",
    ]
    assert done.usage is not None and done.usage.input_tokens == 3
    assert done.status == "completed" and done.output_file_id and done.output_file_id.startswith("file-")

    calls.clear()
    again = batches.retrieve_batch(MASTER, batch_id)
    assert again.output_file_id == done.output_file_id
    assert calls == ["GetItem"]  # the output file's gateway id comes from the batch's own record
    output = files.retrieve_file(MASTER, done.output_file_id)
    assert output.purpose == "batch_output"


def test_batch_list_refreshes_only_unfinished_batches_and_writes_only_changes(
    provider: FakeProvider, calls: list[str]
) -> None:
    file_id = _create_file(provider)
    first, second, third = (_create_batch(file_id) for _ in range(3))
    up_first, up_second, _ = provider.batches
    provider.complete(up_first)
    batches.retrieve_batch(MASTER, first)  # stored as completed: a list needs no refresh

    provider.calls.clear()
    calls.clear()
    page = batches.list_batches(MASTER, ListRequest(limit=10))
    assert calls == ["Query"]  # unfinished batches refreshed upstream, none changed
    assert provider.calls == ["list_batches limit=100"]  # one provider call for the whole page
    statuses = {b.id: b.status for b in page.data}
    assert statuses == {first: "completed", second: "validating", third: "validating"}

    provider.batches[up_second]["status"] = "in_progress"
    calls.clear()
    page = batches.list_batches(MASTER, ListRequest(limit=10))
    # only the batch that changed, with its batch.in_progress event (written, published, deleted)
    assert calls == ["Query", "TransactWriteItems", "Query", "DeleteItem"]
    assert {b.id: b.status for b in page.data}[second] == "in_progress"
    record = IdMap().get(second)
    assert record is not None and record.status == "in_progress"


def test_batch_list_retrieves_what_the_providers_newest_page_misses(provider: FakeProvider) -> None:
    file_id = _create_file(provider)
    oldest, newer, newest = (_create_batch(file_id) for _ in range(3))
    up_oldest = next(iter(provider.batches))
    for upstream_id in provider.batches:
        provider.batches[upstream_id]["status"] = "in_progress"
    provider.list_page = 2  # the oldest falls off the provider's first page

    provider.calls.clear()
    page = batches.list_batches(MASTER, ListRequest(limit=10))
    assert provider.calls == ["list_batches limit=100", f"retrieve_batch {up_oldest}"]
    assert {b.id: b.status for b in page.data} == dict.fromkeys((oldest, newer, newest), "in_progress")


def test_batch_list_falls_back_to_retrieves_when_the_provider_list_fails(provider: FakeProvider) -> None:
    file_id = _create_file(provider)
    ids = [_create_batch(file_id) for _ in range(2)]
    for upstream_id in provider.batches:
        provider.batches[upstream_id]["status"] = "finalizing"
    provider.list_fails = True

    provider.calls.clear()
    page = batches.list_batches(MASTER, ListRequest(limit=10))
    assert provider.calls[0] == "list_batches limit=100"
    assert sorted(provider.calls[1:]) == sorted(f"retrieve_batch {u}" for u in provider.batches)
    assert {b.id: b.status for b in page.data} == dict.fromkeys(ids, "finalizing")


def test_batch_list_retrieves_a_lone_unfinished_batch_directly(provider: FakeProvider) -> None:
    batch_id = _create_batch(_create_file(provider))
    provider.calls.clear()
    page = batches.list_batches(MASTER, ListRequest(limit=10))
    assert provider.calls == [f"retrieve_batch {next(iter(provider.batches))}"]
    assert [b.id for b in page.data] == [batch_id]


def test_claim_upstream_answers_the_winner_in_one_call(aws: None, calls: list[str]) -> None:
    id_map = IdMap()
    assert id_map.claim_upstream("openai", "up-1", "file-a") == "file-a"
    calls.clear()
    assert id_map.claim_upstream("openai", "up-1", "file-b") == "file-a"
    assert calls == ["PutItem"]


def test_put_retries_unprocessed_items(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    id_map = IdMap()
    real = id_map._db.batch_write_item
    attempts: list[int] = []

    def throttled_once(**kwargs: Any) -> dict[str, Any]:
        attempts.append(len(kwargs["RequestItems"][id_map.table]))
        if len(attempts) == 1:  # the first attempt stores only the object item
            [first, second] = kwargs["RequestItems"][id_map.table]
            real(RequestItems={id_map.table: [first]})
            return {"UnprocessedItems": {id_map.table: [second]}}
        return dict(real(**kwargs))

    monkeypatch.setattr(id_map._db, "batch_write_item", throttled_once)
    monkeypatch.setattr("gateway.storage.id_map.time.sleep", lambda _seconds: None)
    record = ObjectRecord(
        id="file-a",
        kind="file",
        owner="master",
        provider="openai",
        created_at=1,
        object={},
        upstream_id="up-a",
    )
    id_map.put(record)
    assert attempts == [2, 1]
    stored = id_map.get("file-a")
    assert stored is not None and stored.upstream_id == "up-a"
    assert id_map.gateway_id_for("openai", "up-a") == "file-a"
