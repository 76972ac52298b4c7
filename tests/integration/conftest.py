"""Integration suite: every test on the local gateway ends with its books balanced.

The local gateway (tests/conftest.py `local_gateway`) runs the functions in this process on an
embedded moto server, so the books (gateway.service.books) are read here through the same
settings and client. Its table is shared by the whole session: what a test is checked for is
what it added to the violations already there when it started.

A `python -m devserver` subprocess (devserver_process.py) is checked through its own moto
endpoint, at the real time: by `running_devserver` when it stops, and here after each test that
takes one as a fixture (test_readme.py's module-wide server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway.service import books

from tests import books_check
from tests.integration.devserver_process import ServerProcess

_ASYNC_WAIT_SECONDS = 30.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Before the test body: the violations already there. After it passed (its fixtures still
    standing): its async work waited for, one watcher pass with the clock past a create's give-up,
    and no violation it added."""
    funcargs = getattr(item, "funcargs", {})
    if books_check.opted_out(item):
        return (yield)
    servers = [value for value in funcargs.values() if isinstance(value, ServerProcess)]
    if servers:
        return (yield from _devserver_books_balance(servers))
    gateway = funcargs.get("local_gateway")
    if gateway is None:
        return (yield)
    with books_check.clock_forward(books_check.FORWARD_SECONDS) as now:
        before = books.audit(now=now())
    result = yield
    gateway.wait_for_async(_ASYNC_WAIT_SECONDS)
    with books_check.clock_forward(books_check.FORWARD_SECONDS) as now:
        if gateway.watcher is not None:
            gateway.watcher.run_once()
        found = books_check.new_violations(books.audit(now=now()), before)
    assert not found, books_check.failure(found)
    return result


def _devserver_books_balance(servers: list[ServerProcess]) -> Iterator[None]:
    """The subprocesses' books: no violation the test added (read at the real time)."""
    before = [server.books() for server in servers]
    result = yield
    for server, found_before in zip(servers, before, strict=True):
        found = server.new_books_violations(found_before)
        assert not found, books_check.failure(found)
    return result
