"""Ids of the wrong kind, list cursors, list pages across Query pages, throttled writes, the
provider-mismatch check: each test fails on the one-line bug its name describes."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from gateway.errors import NotFoundError, ServiceUnavailableError
from gateway.http.auth import MASTER
from gateway.service.ownership import owned_record
from gateway.storage import id_map as id_map_module
from gateway.storage.id_map import IdMap, ObjectRecord, PageQuery
from handlers import batches_create, files_list, files_retrieve, keys_generate

from tests.unit.conftest import call, event, store_file


def store_batch(batch_id: str, *, owner: str = "master", provider: str = "openai") -> None:
    obj = {"id": batch_id, "object": "batch", "status": "completed", "created_at": 1000}
    IdMap().put(
        ObjectRecord(
            id=batch_id,
            kind="batch",
            owner=owner,
            provider=provider,
            created_at=1000,
            object=obj,
            upstream_id=f"up-{batch_id}",
        )
    )


def generate_key() -> dict[str, Any]:
    status, generated, _ = call(keys_generate.handler, event("POST", "/key/generate", body={}))
    assert status == 200, generated
    return dict(generated)


def list_files(query: dict[str, str], key: str | None = None) -> tuple[int, Any]:
    request = (
        event("GET", "/v1/files", query=query)
        if key is None
        else event("GET", "/v1/files", query=query, key=key)
    )
    status, body, _ = call(files_list.handler, request)
    return status, body


# Ownership: an id of another kind is as unknown as a missing one ---------------------------


def test_a_batch_id_on_a_file_route_is_404_and_never_reaches_the_provider(aws: None) -> None:
    store_batch("batch_kind")
    with pytest.raises(NotFoundError, match="No such File object: batch_kind"):
        owned_record(IdMap(), MASTER, "batch_kind", "file")
    assert owned_record(IdMap(), MASTER, "batch_kind", "batch").kind == "batch"

    # The providers in the unit tests are unreachable: a request that got through would be 502.
    request = event(
        "GET",
        "/v1/files/batch_kind",
        resource="/v1/files/{file_id}",
        path_parameters={"file_id": "batch_kind"},
    )
    status, error, _ = call(files_retrieve.handler, request)
    assert status == 404, error
    assert (error["error"]["code"], error["error"]["param"]) == ("not_found", "id")


# List cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "after",
    [
        "file-never-existed",
        "file-of-another-key",  # an id the caller does not own is as unknown as a missing one
    ],
)
def test_an_after_cursor_the_caller_cannot_see_is_404_naming_after(aws: None, after: str) -> None:
    generated = generate_key()
    store_file("file-mine", owner=generated["key_id"])
    store_file("file-of-another-key", owner="key_someone_else")

    status, error = list_files({"after": after}, key=generated["key"])
    assert status == 404, error
    assert (error["error"]["param"], error["error"]["code"], error["error"]["message"]) == (
        "after",
        "not_found",
        f"No such file for the 'after' cursor: {after}",
    )


def test_an_after_cursor_of_another_kind_is_400_naming_after(aws: None) -> None:
    generated = generate_key()
    store_batch("batch_as_cursor", owner=generated["key_id"])
    status, error = list_files({"after": "batch_as_cursor"}, key=generated["key"])
    assert status == 400, error
    assert (error["error"]["param"], error["error"]["message"]) == (
        "after",
        "Invalid value for 'after': String should match pattern '^file-'.",
    )


def test_an_after_cursor_of_another_key_is_fine_for_the_master_key_but_not_within_a_key_filter(
    aws: None,
) -> None:
    store_file("file-a1", owner="key_a", created_at=1001)
    store_file("file-a2", owner="key_a", created_at=1002)
    store_file("file-b1", owner="key_b", created_at=1003)

    status, page = list_files({"after": "file-a2", "order": "desc"})
    assert status == 200 and [f["id"] for f in page["data"]] == ["file-a1"]
    status, page = list_files({"after": "file-a2", "key_id": "key_a"})
    assert status == 200 and [f["id"] for f in page["data"]] == ["file-a1"]
    status, error = list_files({"after": "file-b1", "key_id": "key_a"})
    assert status == 404 and error["error"]["param"] == "after"


# Pages: an exact has_more, and pages built from several DynamoDB Query pages ---------------


def test_a_page_of_exactly_limit_items_has_no_more(aws: None) -> None:
    for i in range(3):
        store_file(f"file-exact-{i}", created_at=1000 + i)
    status, page = list_files({"limit": "3"})
    assert status == 200 and len(page["data"]) == 3 and page["has_more"] is False
    status, page = list_files({"limit": "2"})
    assert status == 200 and len(page["data"]) == 2 and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == ("file-exact-2", "file-exact-1")
    status, rest = list_files({"limit": "2", "after": page["last_id"]})
    assert [f["id"] for f in rest["data"]] == ["file-exact-0"] and rest["has_more"] is False


def _small_query_pages(monkeypatch: pytest.MonkeyPatch, items_per_page: int) -> list[dict[str, Any]]:
    """DynamoDB stops a Query at 1 MB and returns LastEvaluatedKey; moto does the same at a
    Limit, so capping the Limit gives the pages large items would. Returns the calls made."""
    calls: list[dict[str, Any]] = []
    id_map = IdMap()
    real_query = id_map._db.query

    def query(**params: Any) -> dict[str, Any]:
        calls.append(dict(params))
        return real_query(**{**params, "Limit": min(params["Limit"], items_per_page)})

    monkeypatch.setattr(id_map._db, "query", query)
    return calls


def test_a_list_page_continues_across_query_pages(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        store_file(f"file-paged-{i}", created_at=1000 + i, provider="azure" if i % 2 else "openai")
    calls = _small_query_pages(monkeypatch, items_per_page=2)
    id_map = IdMap()

    records, has_more = id_map.page(PageQuery(kind="file", limit=4, ascending=True))
    assert [r.id for r in records] == [f"file-paged-{i}" for i in range(4)] and has_more is True
    assert len(calls) == 3  # 2 + 2 + 1: the fifth item only says there is more
    assert [c["Limit"] for c in calls] == [5, 3, 1]

    calls.clear()
    records, has_more = id_map.page(PageQuery(kind="file", limit=10, ascending=True))
    assert len(records) == 5 and has_more is False
    assert len(calls) == 3 and "ExclusiveStartKey" not in calls[0]

    # With a filter, a Query page may hold no match at all and the list still goes on.
    calls.clear()
    objects, has_more = id_map.page_objects(PageQuery(kind="file", limit=2, ascending=True, provider="azure"))
    assert [o["id"] for o in objects] == ["file-paged-1", "file-paged-3"] and has_more is False
    assert len(calls) == 3 and calls[0]["FilterExpression"] == "#provider = :provider"
    # page_objects reads only the client-facing object from the index, not whole items
    assert (
        calls[0]["ProjectionExpression"] == "#a0" and calls[0]["ExpressionAttributeNames"]["#a0"] == "object"
    )


def test_a_filtered_page_says_has_more_only_when_another_match_exists(aws: None) -> None:
    for i in range(4):
        store_file(f"file-mixed-{i}", created_at=1000 + i, provider="azure" if i < 3 else "openai")
    id_map = IdMap()
    page, has_more = id_map.page(PageQuery(kind="file", limit=2, ascending=True, provider="azure"))
    assert [r.id for r in page] == ["file-mixed-0", "file-mixed-1"] and has_more is True
    page, has_more = id_map.page(PageQuery(kind="file", limit=3, ascending=True, provider="azure"))
    assert len(page) == 3 and has_more is False


# Writes under throttling ---------------------------------------------------------------------


def _record_with_upstream(record_id: str) -> ObjectRecord:
    return ObjectRecord(
        id=record_id,
        kind="file",
        owner="master",
        provider="openai",
        created_at=1000,
        object={"id": record_id, "status": "processed"},
        upstream_id=f"up-{record_id}",
    )


def test_a_write_still_throttled_after_every_retry_is_503(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    id_map = IdMap()
    attempts: list[dict[str, Any]] = []
    sleeps: list[float] = []

    def always_unprocessed(RequestItems: dict[str, Any]) -> dict[str, Any]:
        attempts.append(RequestItems)
        return {"UnprocessedItems": RequestItems}

    monkeypatch.setattr(id_map._db, "batch_write_item", always_unprocessed)
    monkeypatch.setattr(id_map_module.time, "sleep", sleeps.append)
    monkeypatch.setattr(id_map_module.random, "random", lambda: 0.5)  # the jitter's middle
    with pytest.raises(ServiceUnavailableError) as throttled:
        id_map.put(_record_with_upstream("file-throttled"))
    assert throttled.value.status_code == 503
    assert throttled.value.envelope()["error"]["code"] == "service_unavailable"
    assert len(attempts) == id_map_module._BATCH_WRITE_ATTEMPTS
    assert len(sleeps) == id_map_module._BATCH_WRITE_ATTEMPTS - 1  # no pointless wait after the last
    assert sleeps == [0.05, 0.1, 0.2, 0.4]  # exponential backoff (jitter 0.5..1.5, here 1)
    assert throttled.value.message == "The id mapping table is throttling writes; retry shortly."


def test_a_partly_throttled_write_retries_only_what_was_left(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    id_map = IdMap()
    real_write = id_map._db.batch_write_item
    sent: list[int] = []

    def first_reverse_item_throttled(RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, requests)] = RequestItems.items()
        sent.append(len(requests))
        if len(sent) == 1:
            real_write(RequestItems={table: requests[:1]})
            return {"UnprocessedItems": {table: requests[1:]}}
        return real_write(RequestItems=RequestItems)

    monkeypatch.setattr(id_map._db, "batch_write_item", first_reverse_item_throttled)
    monkeypatch.setattr(id_map_module.time, "sleep", lambda seconds: None)
    id_map.put(_record_with_upstream("file-partly"))
    assert sent == [2, 1]
    stored = IdMap().get("file-partly")
    assert stored is not None and stored.upstream_id == "up-file-partly"
    assert IdMap().gateway_id_for("openai", "up-file-partly") == "file-partly"


# A batch goes where its input file is -------------------------------------------------------


def test_a_batch_on_an_azure_file_through_the_openai_prefix_is_400_provider_mismatch(aws: None) -> None:
    store_file("file-on-azure", provider="azure")
    body = {"input_file_id": "file-on-azure", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    request = event(
        "POST",
        "/openai/v1/batches",
        resource="/{provider}/v1/batches",
        path_parameters={"provider": "openai"},
        body=body,
    )
    status, error, _ = call(batches_create.handler, request)
    assert status == 400, error
    assert (error["error"]["code"], error["error"]["param"]) == ("provider_mismatch", "input_file_id")
    assert "'azure'" in error["error"]["message"] and "'openai'" in error["error"]["message"]


def test_an_upstream_id_nobody_claimed_maps_to_no_gateway_id(aws: None) -> None:
    assert IdMap().gateway_id_for("openai", "file-up-unknown") is None
    assert IdMap().claim_upstream("openai", "file-up-new", "file-first") == "file-first"
    assert IdMap().claim_upstream("openai", "file-up-new", "file-second") == "file-first"
    assert IdMap().gateway_id_for("openai", "file-up-new") == "file-first"
    assert IdMap().gateway_id_for("azure", "file-up-new") is None  # per provider


def test_delete_removes_the_object_and_its_reverse_id(aws: None) -> None:
    id_map = IdMap()
    record = _record_with_upstream("file-gone")
    id_map.put(record)
    id_map.put(_record_with_upstream("file-kept"))
    id_map.delete(record)
    assert id_map.get("file-gone") is None
    assert id_map.gateway_id_for("openai", "up-file-gone") is None
    assert id_map.gateway_id_for("openai", "up-file-kept") == "file-kept"

    without_upstream = ObjectRecord(
        id="upload_plain", kind="upload", owner="master", provider="openai", created_at=1, object={}
    )
    id_map.put(without_upstream)
    id_map.delete(without_upstream)
    assert id_map.get("upload_plain") is None


def test_save_if_changed_writes_only_a_change(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    id_map = IdMap()
    id_map.put(_record_with_upstream("file-saved"))
    writes: list[dict[str, Any]] = []
    real_update = id_map._db.update_item

    def counting_update(**params: Any) -> Any:
        writes.append(params)
        return real_update(**params)

    monkeypatch.setattr(id_map._db, "update_item", counting_update)
    record = id_map.get("file-saved")
    assert record is not None and not record.changed_since_stored()
    assert id_map.save_if_changed(record) is False and writes == []

    record.state = {"note": "new"}  # read without state: the JSON attribute was absent
    assert record.changed_since_stored()
    assert id_map.save_if_changed(record) is True and len(writes) == 1
    assert id_map.save_if_changed(record) is False and len(writes) == 1  # now stored
    reread = id_map.get("file-saved")
    assert reread is not None and reread.state == {"note": "new"}

    fresh = _record_with_upstream("file-never-read")  # not read from the table: always written
    assert fresh.changed_since_stored()


def test_lists_filter_by_purpose_and_provider_together(aws: None) -> None:
    store_file("file-p1", created_at=1001, purpose="batch", provider="openai")
    store_file("file-p2", created_at=1002, purpose="batch_output", provider="openai")
    store_file("file-p3", created_at=1003, purpose="batch", provider="azure")
    assert IdMap().get("file-p2").purpose == "batch_output"  # type: ignore[union-attr]
    status, page = list_files({"purpose": "batch", "order": "asc"})
    assert status == 200 and [f["id"] for f in page["data"]] == ["file-p1", "file-p3"]
    objects, has_more = IdMap().page_objects(
        PageQuery(kind="file", limit=5, ascending=True, provider="azure", purpose="batch")
    )
    assert [o["id"] for o in objects] == ["file-p3"] and has_more is False


def test_only_the_master_key_may_filter_a_list_by_key(aws: None) -> None:
    from gateway.errors import InvalidRequestError
    from gateway.http.auth import Caller
    from gateway.service.listing import ListRequest, page_query

    with pytest.raises(InvalidRequestError) as refused:
        page_query(IdMap(), Caller(key_id="key_a"), "file", ListRequest(limit=1, key_id="key_b"))
    assert (refused.value.param, refused.value.message) == (
        "key_id",
        "Only the master key may filter lists by key.",
    )


def test_an_azure_signed_request_for_another_deployments_file_is_400_naming_both(aws: None) -> None:
    from gateway.errors import InvalidRequestError
    from gateway.http import provider_choice

    store_file("file-on-openai")
    signed = {"resource": "/{provider}/openai/files/{file_id}", "pathParameters": {"provider": "azure"}}
    query = {"queryStringParameters": {"api-version": "2024-10-21"}}
    assert provider_choice.check_azure_signs(signed | query)
    try:
        with pytest.raises(InvalidRequestError) as wrong:
            owned_record(IdMap(), MASTER, "file-on-openai", "file")
    finally:
        provider_choice.forget_azure_signs()
    assert wrong.value.code == "wrong_base_url"
    assert wrong.value.message.startswith(
        "file-on-openai belongs to provider 'openai', which is not an Azure deployment"
    ), wrong.value.message


def test_a_looked_up_record_lets_provider_errors_name_its_gateway_id(aws: None) -> None:
    from gateway.http import upstream_ids

    store_file("file-mine")  # the provider holds it as up-file-mine
    upstream_ids.start_request()
    owned_record(IdMap(), MASTER, "file-mine", "file")
    translated = upstream_ids.to_gateway_ids("No such File object: up-file-mine")
    assert translated == "No such File object: file-mine"


def test_a_cursor_of_another_kind_is_refused_by_the_service_too(aws: None) -> None:
    """The handlers' id patterns catch it first; the service does not rely on them."""
    from gateway.errors import InvalidRequestError
    from gateway.service.listing import ListRequest, page_query

    store_batch("batch_as_cursor")
    with pytest.raises(InvalidRequestError) as refused:
        page_query(IdMap(), MASTER, "file", ListRequest(limit=5, after="batch_as_cursor"))
    assert (refused.value.message, refused.value.param, refused.value.code) == (
        "Invalid 'after' cursor 'batch_as_cursor': it is not a file id.",
        "after",
        "invalid_cursor",
    )


def test_objects_created_in_one_second_list_newest_first_whatever_their_ids(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the table's clock, read once an object: 1 ms apart within one second (the real one may
    # cross a second between two writes, and a record's sub-second part comes from it)
    readings = iter(range(1_700_000_000_100_000_000, 1_700_000_000_900_000_000, 1_000_000))
    clock = SimpleNamespace(time_ns=lambda: next(readings), sleep=time.sleep)
    monkeypatch.setattr(id_map_module, "time", clock)
    for object_id in ("file-zzz", "file-mmm", "file-aaa"):  # created in this order, same second
        store_file(object_id, created_at=5000)
    status, page = list_files({"limit": "10"})
    assert status == 200 and [f["id"] for f in page["data"]] == ["file-aaa", "file-mmm", "file-zzz"]


def test_an_object_without_an_upstream_id_is_stored_alone(aws: None) -> None:
    from tests.unit.fault_injection.create_support import items

    IdMap().put(
        ObjectRecord(id="file-local", kind="file", owner="master", provider="openai", created_at=1, object={})
    )
    assert [item["pk"] for item in items()] == ["file-local"]  # no reverse item for a missing id


def test_a_record_never_stored_has_no_stored_object(aws: None) -> None:
    record = ObjectRecord(
        id="batch_new", kind="batch", owner="master", provider="openai", created_at=1, object={}
    )
    assert record.stored_object() is None
    IdMap().put(record)
    assert record.stored_object() == {}  # what the table holds now


def test_an_outbox_event_is_no_object(aws: None) -> None:
    from gateway.storage.outbox import OutboxEvent

    from tests.unit.fault_injection.create_support import items

    event = OutboxEvent({"id": "evt_1"}, "batch.completed", {}, "master", "openai")
    client = IdMap()._db
    from gateway.runtime.settings import get_settings
    from gateway.storage.dynamo import marshal

    client.put_item(TableName=get_settings().table_name, Item=marshal(event.to_item()))
    assert [item["kind"] for item in items()] == ["outbox"]
    assert IdMap().get(event.key) is None and IdMap().get_consistent(event.key) is None
