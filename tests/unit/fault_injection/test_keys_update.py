"""/key/update: one conditional write of the key item. A /key/delete landing between its read
and its write wins (404, the key stays revoked); a failed write is retried to the same end."""

from __future__ import annotations

from typing import Any

from gateway.http import auth
from gateway.storage.keys import KeyStore
from handlers import files_list, keys_delete, keys_generate, keys_info, keys_update

from tests.unit.conftest import call, event
from tests.unit.fault_injection.faults import DynamoFaults


def generate(**body: Any) -> dict[str, Any]:
    status, key, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 200, key
    return key  # type: ignore[no-any-return]


def update(**body: Any) -> tuple[int, Any]:
    status, answer, _ = call(keys_update.handler, event("POST", "/key/update", body=body))
    return status, answer


def key_items() -> int:
    return len(KeyStore().all())


def assert_revoked(plain: str) -> None:
    """Gone from the table, refused by a fresh process (no warm cache), unknown to /key/info."""
    assert key_items() == 0
    auth.clear_key_cache()
    status, _, _ = call(files_list.handler, event("GET", "/v1/files", key=plain))
    assert status == 401
    status, error, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": plain}))
    assert status == 404, error


def test_a_delete_between_read_and_write_wins(faults: DynamoFaults) -> None:
    key = generate(key_alias="before")
    (record,) = KeyStore().all()
    pending = [record]

    def delete_lands_first(**_: Any) -> None:
        if pending:  # /key/delete's DeleteItem, just before update's write
            KeyStore().delete(pending.pop())

    faults.client.meta.events.register_first("before-call.dynamodb.PutItem", delete_lands_first)
    status, error = update(key=key["key"], key_alias="after")
    assert not pending
    assert status == 404 and error["error"]["param"] == "key", error
    assert_revoked(key["key"])


def test_fails_at_the_write(faults: DynamoFaults) -> None:
    key = generate(key_alias="before")
    faults.fail("PutItem", 1)
    status, error = update(key=key["key"], key_alias="after")
    assert status == 503, error
    status, updated = update(key=key["key"], key_alias="after")  # the retry
    assert status == 200 and updated["key_alias"] == "after"
    assert [r.key_alias for r in KeyStore().all()] == ["after"]


def test_write_applied_but_its_answer_lost(faults: DynamoFaults) -> None:
    key = generate(key_alias="before")
    faults.fail("PutItem", 1, when="after")
    status, _ = update(key=key["key"], metadata={"team": "a"})
    assert status >= 500
    status, updated = update(key=key["key"], metadata={"team": "a"})
    assert status == 200 and updated["metadata"] == {"team": "a"}
    assert key_items() == 1


def test_update_of_a_deleted_key_is_404_and_creates_nothing(aws: None) -> None:
    key = generate()
    status, _, _ = call(keys_delete.handler, event("POST", "/key/delete", body={"keys": [key["key"]]}))
    assert status == 200
    status, error = update(key=key["key"], key_alias="back")
    assert status == 404, error
    assert_revoked(key["key"])
