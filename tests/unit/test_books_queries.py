"""storage.books_queries.items_by_key: many keys read in BatchGetItems of 100, what DynamoDB
leaves unprocessed asked again (moto processes every key: a proxy of the client holds some back)."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.runtime import resources
from gateway.storage import books_queries, dynamo
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap, ObjectRecord

PK = resources.TABLE_PARTITION_KEY


class HoldsBack:
    """The real client, whose BatchGetItem leaves the last `held` keys of each call unprocessed
    `times` times (as DynamoDB does when throttled or past 16 MB)."""

    def __init__(self, held: int, times: int) -> None:
        self._client, self.held, self.times = dynamodb_client(), held, times
        self.calls: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.calls.append(len(keys))
        held = keys[-self.held :] if self.times and self.held else []
        if held:
            self.times -= 1
            keys = keys[: -len(held)]
        answer: dict[str, Any] = (
            self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys}})
            if keys
            else {"Responses": {table: []}}
        )
        if held:
            answer["UnprocessedKeys"] = {table: {**request, "Keys": held}}
        return answer


@pytest.fixture
def table(aws: None) -> str:
    table = IdMap().table
    for number in range(0, 250, 2):  # every other key exists
        dynamodb_client().put_item(
            TableName=table, Item={PK: {"S": f"k{number:03d}"}, "n": {"N": str(number)}}
        )
    return table


def test_many_keys_are_read_100_at_a_time_and_only_those_that_exist_come_back(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = HoldsBack(held=0, times=0)
    monkeypatch.setattr(books_queries, "dynamodb_client", lambda: proxy)
    found = books_queries.items_by_key(table, [f"k{number:03d}" for number in range(250)] * 2)
    assert sorted(found) == [f"k{number:03d}" for number in range(0, 250, 2)]
    assert found["k124"]["n"] == {"N": "124"}
    assert proxy.calls == [100, 100, 50]
    assert books_queries.items_by_key(table, []) == {} and proxy.calls == [100, 100, 50]


def test_keys_left_unprocessed_are_asked_again_after_a_pause(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = HoldsBack(held=30, times=2)
    pauses: list[float] = []
    monkeypatch.setattr(books_queries, "dynamodb_client", lambda: proxy)
    monkeypatch.setattr(dynamo.time, "sleep", pauses.append)
    found = books_queries.items_by_key(table, [f"k{number:03d}" for number in range(100)])
    assert sorted(found) == [f"k{number:03d}" for number in range(0, 100, 2)]
    assert proxy.calls == [100, 30, 30] and pauses == [0.05, 0.1]


def test_keys_never_processed_fail_the_read_rather_than_read_as_missing(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = HoldsBack(held=1, times=100)
    monkeypatch.setattr(books_queries, "dynamodb_client", lambda: proxy)
    monkeypatch.setattr(dynamo.time, "sleep", lambda _seconds: None)
    with pytest.raises(RuntimeError, match="1 keys unread"):
        books_queries.items_by_key(table, ["k000", "k002"])


def test_records_are_read_many_at_once_leaving_out_what_is_no_record(table: str) -> None:
    id_map = IdMap()
    for number in range(105):
        id_map.put(
            ObjectRecord(
                id=f"batch_{number:03d}",
                kind="batch",
                owner="key-a",
                provider="openai",
                created_at=1,
                object={"id": f"batch_{number:03d}", "status": "completed"},
            ),
            reverse=False,
        )
    wanted = [f"batch_{number:03d}" for number in range(0, 110, 5)] + ["k000", "not a storable id\n"]
    found = id_map.get_many(wanted)
    assert sorted(found) == [f"batch_{number:03d}" for number in range(0, 105, 5)]  # k000 is no record
    assert all(found[record_id].object["id"] == record_id for record_id in found)
