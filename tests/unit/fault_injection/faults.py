"""Inject one AWS failure at a chosen write step, through botocore's own event hooks.

`before`: the call fails before it reaches DynamoDB (a throttled write: nothing happened).
`after`: the write happens and its answer is lost (a timeout after the fact): the caller
sees an error for a write that is in the table. Every later call passes, as the retry would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError, ReadTimeoutError

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass
class DynamoFaults:
    """Counts the client's write calls (`writes`, in order) and fails the one armed."""

    client: Any
    writes: list[str] = field(default_factory=list)
    _armed: tuple[str, int, str] | None = None
    fired: bool = False

    def __post_init__(self) -> None:
        self.client.meta.events.register("before-call.dynamodb.*", self._before)
        self.client.meta.events.register("after-call.dynamodb.*", self._after)

    def fail(self, operation: str, nth: int = 1, when: Literal["before", "after"] = "before") -> None:
        """Fail the `nth` call of `operation` from now on (counted from this call)."""
        already = self.writes.count(operation)
        self._armed = (operation, already + nth, when)
        self.fired = False

    def _hit(self, operation: str, when: str) -> bool:
        if self._armed is None or self.fired:
            return False
        armed_operation, armed_nth, armed_when = self._armed
        if (operation, when) != (armed_operation, armed_when) or self.writes.count(operation) != armed_nth:
            return False
        self.fired = True
        return True

    def _before(self, model: Any, **_: Any) -> None:
        if model.name not in WRITES:
            return
        self.writes.append(model.name)
        if self._hit(model.name, "before"):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}},
                model.name,
            )

    def _after(self, model: Any, **_: Any) -> None:
        if model.name in WRITES and self._hit(model.name, "after"):
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")
