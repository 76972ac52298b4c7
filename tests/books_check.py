"""The books' invariants (gateway.service.books) asserted at the end of a test: the fault-injection
suite (tests/unit/fault_injection/conftest.py) and the integration suite (tests/integration/conftest.py)
call `after_a_pass` once a test's body has run.

What a test leaves that converges only later (a pending create, an event still in the outbox) is
given what converges it: one watcher pass, with the clock driven past the give-up time of a
create and the grace of an event, then the books are read at that time. A test that means to
leave unbalanced books says why with `@pytest.mark.books_unbalanced(reason)`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from gateway.service import adoption, books, watcher
from gateway.service.deadline import Deadline

MARKER = "books_unbalanced"
# Past a stranded create's give-up and a stale settling claim: whatever converges, has.
FORWARD_SECONDS = adoption.ABANDON_AFTER_SECONDS + 2 * books.ONE_PASS_SECONDS
PASS_DEADLINE_SECONDS = 60.0


def opted_out(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None


@contextmanager
def clock_forward(seconds: float) -> Iterator[Callable[[], float]]:
    """`time.time` and `time.time_ns` (as every gateway module calls them) `seconds` ahead, over
    whatever the test set them to."""
    current: Callable[[], float] = time.time
    current_ns: Callable[[], int] = time.time_ns
    with pytest.MonkeyPatch.context() as patch:
        ahead = lambda: current() + seconds  # noqa: E731
        patch.setattr(time, "time", ahead)
        # what orders the table's items (created_key, an outbox event's age) moves along
        patch.setattr(time, "time_ns", lambda: current_ns() + int(seconds * 1_000_000_000))
        yield ahead


def after_a_pass(forward_seconds: float = FORWARD_SECONDS) -> dict[str, list[str]]:
    """One watcher pass `forward_seconds` ahead, then every invariant over the whole table at
    that time: the violations left (empty when the books balance)."""
    with clock_forward(forward_seconds) as now:
        watcher.run_pass(Deadline.after(PASS_DEADLINE_SECONDS))
        return books.audit(now=now())


def new_violations(found: dict[str, list[str]], before: dict[str, list[str]]) -> dict[str, list[str]]:
    """`found` less what `before` already had (a table shared by several tests)."""
    fresh = {name: sorted(set(ids) - set(before.get(name, ()))) for name, ids in found.items()}
    return {name: ids for name, ids in fresh.items() if ids}


def failure(found: dict[str, Any]) -> str:
    return f"the books do not balance after a watcher pass: {books.describe(found)}"
