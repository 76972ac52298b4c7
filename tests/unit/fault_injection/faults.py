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


PLAN_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "CompleteMultipartUpload", "DeleteObjects"})


@dataclass
class PlanFileFaults:
    """As DynamoFaults, for the S3 writes of a batch plan's files (keys under the plan prefix):
    `writes` lists each write as (operation, key or prefix), and the one armed fails."""

    client: Any
    prefix: str
    writes: list[str] = field(default_factory=list)
    _armed: tuple[int, str] | None = None
    fired: bool = False

    def __post_init__(self) -> None:
        self.client.meta.events.register("before-parameter-build.s3.*", self._before)
        self.client.meta.events.register("after-call.s3.*", self._after)

    def fail(self, nth: int, when: Literal["before", "after"]) -> None:
        """Fail the `nth` plan write (0-based, counted from now)."""
        self._armed = (len(self.writes) + nth, when)
        self.fired = False

    def _plan_write(self, model: Any, params: dict[str, Any]) -> bool:
        if model.name not in PLAN_WRITES:
            return False
        if model.name == "DeleteObjects":
            keys = [entry["Key"] for entry in params["Delete"]["Objects"]]
        else:
            keys = [params["Key"]]
        return all(key.startswith(self.prefix) for key in keys)

    def _hit(self, number: int, when: str) -> bool:
        if self._armed is None or self.fired or self._armed != (number, when):
            return False
        self.fired = True
        return True

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self._plan_write(model, params):
            return
        context["plan_write"] = len(self.writes)  # the call's number, for its answer
        self.writes.append(model.name)
        if self._hit(context["plan_write"], "before"):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, model.name)

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        number = context.get("plan_write")
        if number is not None and self._hit(number, "after"):
            raise ReadTimeoutError(endpoint_url="https://s3.us-east-1.amazonaws.com/")
