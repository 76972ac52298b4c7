"""The local server runs async invocations as Lambda does: retries, then the on-failure
function with Lambda's invocation record."""

from __future__ import annotations

from typing import Any

from gateway import routes

from devserver.server import LocalAsyncRunner

TRANSFER = next(f for f in routes.ASYNC_FUNCTIONS if f.name == "file_transfer")


class Functions:
    """Fake handlers: file_transfer fails `failures` times; every call is recorded."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def resolve(self, name: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.calls.append((name, event))
            if name == "file_transfer" and self.failures > 0:
                self.failures -= 1
                raise RuntimeError("DynamoDB throttled")
            return {}

        return handler


def test_a_failing_event_is_retried_then_handed_to_the_on_failure_function() -> None:
    functions = Functions(failures=99)
    runner = LocalAsyncRunner(functions.resolve)
    runner("file_transfer", {"file_id": "file-1"})
    assert runner.wait(10)
    attempts = TRANSFER.retry_attempts + 1
    assert [name for name, _ in functions.calls] == ["file_transfer"] * attempts + ["transfer_failed"]
    record = functions.calls[-1][1]
    assert record["requestPayload"] == {"file_id": "file-1"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == attempts
    assert record["requestContext"]["functionArn"].endswith(":function:file_transfer:$LATEST")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"] == {"errorMessage": "DynamoDB throttled", "errorType": "RuntimeError"}


def test_a_retry_that_succeeds_calls_no_on_failure_function() -> None:
    functions = Functions(failures=1)
    runner = LocalAsyncRunner(functions.resolve)
    runner("file_transfer", {"file_id": "file-1"})
    assert runner.wait(10)
    assert [name for name, _ in functions.calls] == ["file_transfer", "file_transfer"]


def test_the_on_failure_function_is_not_retried_into_another() -> None:
    calls: list[str] = []

    def resolve(name: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> None:
            calls.append(name)
            raise RuntimeError("broken")

        return handler

    runner = LocalAsyncRunner(resolve)
    runner("transfer_failed", {"requestPayload": {"file_id": "file-1"}})
    assert runner.wait(10)
    assert calls == ["transfer_failed"] * 3  # its own retries, and no destination after them
