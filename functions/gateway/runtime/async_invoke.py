"""Fire-and-forget invocation of the asynchronous functions (ASYNC_FUNCTIONS).

In AWS this is a Lambda `Event` invocation of the function named by an environment
variable. The local server installs an in-process runner instead, so the same handler
code runs unchanged under `make serve`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from gateway.runtime import resources

LocalRunner = Callable[[str, dict[str, Any]], None]

_FUNCTION_NAME_ENV = {
    "file_transfer": resources.ENV_TRANSFER_FUNCTION,
    "batch_watcher": resources.ENV_WATCHER_FUNCTION,  # a planned batch's first steps, at once
}
_local_runner: LocalRunner | None = None


def use_local_runner(runner: LocalRunner | None) -> None:
    """Run async functions in-process (local server); None restores Lambda invocation."""
    global _local_runner
    _local_runner = runner


def invoke_async(function: str, payload: dict[str, Any]) -> None:
    if _local_runner is not None:
        _local_runner(function, payload)
        return
    import boto3  # deferred: only the functions that invoke pay for the client

    function_name = os.environ[_FUNCTION_NAME_ENV[function]]
    boto3.client("lambda").invoke(
        FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
