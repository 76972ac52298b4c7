"""Integration suite: every test on the local gateway ends with its books balanced.

The local gateway (tests/conftest.py `local_gateway`) runs the functions in this process on an
embedded moto server, so the books (gateway.service.books) are read here through the same
settings and client. Its table is shared by the whole session and grows with it, so a test is
checked on what it made (the objects created since it started, with the files they name, their
provider objects, their owners' budgets and held batches, and the outbox: `books.check_pass`),
not by a Scan per test; the last test on the local gateway audits the whole table (spend sums
included).

A `python -m devserver` subprocess (devserver_process.py) is checked through its own moto
endpoint, at the real time: by `running_devserver` when it stops, and here after each test that
takes one as a fixture (test_readme.py's module-wide server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway.runtime import resources
from gateway.service import books
from gateway.storage.dynamo import dynamodb_client, query_items
from gateway.storage.id_map import IdMap, ObjectRecord

from tests import books_check
from tests.integration.devserver_process import ServerProcess

_ASYNC_WAIT_SECONDS = 30.0
_HERE = Path(__file__).parent
# The item that runs after this one in this process (pytest and pytest-xdist pass it to the
# protocol hook only; `Item.nextitem` is never set).
_NEXT_ITEM = pytest.StashKey["pytest.Item | None"]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    item.stash[_NEXT_ITEM] = nextitem
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test on the local gateway passed (its fixtures still standing): its async work
    waited for, one watcher pass with the clock past a create's give-up, and no violation among
    what it made."""
    funcargs = getattr(item, "funcargs", {})
    if books_check.opted_out(item):
        return (yield)
    servers = [value for value in funcargs.values() if isinstance(value, ServerProcess)]
    if servers:
        return (yield from _devserver_books_balance(servers))
    gateway = funcargs.get("local_gateway")
    if gateway is None:
        return (yield)
    started_key = f"{time.time_ns() // 1000:016d}"
    result = yield
    gateway.wait_for_async(_ASYNC_WAIT_SECONDS)
    with books_check.clock_forward(books_check.FORWARD_SECONDS) as now:
        if gateway.watcher is not None:
            gateway.watcher.run_once()
        made = list(_objects_created_since(started_key))
        found = books.check_pass(IdMap(), made, now=now())
        if _last_on_the_local_gateway(item):
            found = books.audit(now=now()) | found
    assert not found, books_check.failure(found)
    return result


def _objects_created_since(created_key: str) -> Iterator[ObjectRecord]:
    """The batches and files whose `created_key` is at or after `created_key` (by_kind index)."""
    for kind in ("batch", "file"):
        for item in query_items(
            dynamodb_client().query,
            TableName=IdMap().table,
            IndexName=resources.INDEX_BY_KIND,
            KeyConditionExpression="#kind = :kind AND #ck >= :since",
            ExpressionAttributeNames={"#kind": "kind", "#ck": "created_key"},
            ExpressionAttributeValues={":kind": {"S": kind}, ":since": {"S": created_key}},
        ):
            yield ObjectRecord.from_item(item)


def _last_on_the_local_gateway(item: pytest.Item) -> bool:
    """No test this hook checks on the local gateway follows in this process (with pytest-xdist,
    each worker's last one audits its own gateway)."""
    following = item.stash.get(_NEXT_ITEM, None)
    return (
        following is None
        or _HERE not in following.path.parents
        or "local_gateway" not in getattr(following, "fixturenames", ())
    )


def _devserver_books_balance(servers: list[ServerProcess]) -> Iterator[None]:
    """The subprocesses' books: no violation the test added (read at the real time)."""
    before = [server.books() for server in servers]
    result = yield
    for server, found_before in zip(servers, before, strict=True):
        found = server.new_books_violations(found_before)
        assert not found, books_check.failure(found)
    return result
