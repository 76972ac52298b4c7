"""The `process` Lambda executor plugin (tests/localstack/localstack_plugin.py) inside LocalStack's
own classes: found through its entry point, and one execution environment started, invoked and
stopped through LocalStack's real ExecutorEndpoint and executor router (served here as LocalStack's
gateway serves them), with a python3.12 process running a small handler."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import localstack_plugin
import pytest
from localstack import config
from localstack.services.edge import ROUTER
from localstack.services.lambda_.invocation.executor_endpoint import executor_router
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException
from localstack_plugin import ProcessRuntimeExecutor, ProcessRuntimeExecutorPlugin
from plux import PluginManager
from process_executor import RUNTIMES_ENV, find_python
from werkzeug.serving import make_server

PYTHON312 = find_python("3.12")
needs_python312 = pytest.mark.skipif(PYTHON312 is None, reason="no python3.12 on this machine")

HANDLER = """
import os

def handler(event, context):
    return {"echo": event, "function": context.function_name, "region": os.environ["AWS_REGION"]}

def failing(event, context):
    raise ValueError("refused: " + event["why"])
"""


class Code:
    """A function's unzipped code as LocalStack's code object answers for it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.prepared = 0

    def prepare_for_execution(self) -> None:
        self.prepared += 1

    def get_unzipped_code_location(self) -> Path:
        return self.directory


def function_version(code: Code | None, layers: list[Any] | None = None) -> Any:
    return SimpleNamespace(
        id=SimpleNamespace(function_name="plugin-test"),
        config=SimpleNamespace(code=code, layers=layers or [], runtime="python3.12"),
    )


def test_the_plugin_is_found_by_its_entry_point_and_loads_the_executor() -> None:
    """setup.sh's entry point, as LocalStack looks LAMBDA_RUNTIME_EXECUTOR=process up."""
    manager: PluginManager[Any] = PluginManager("localstack.lambda.runtime_executor")
    assert "process" in manager.list_names()
    plugin = manager.load("process")
    assert isinstance(plugin, ProcessRuntimeExecutorPlugin)
    assert plugin.load() is ProcessRuntimeExecutor


def test_a_container_image_function_is_refused_with_a_runtime_error() -> None:
    with pytest.raises(LambdaRuntimeException, match="container image"):
        ProcessRuntimeExecutor.prepare_version(function_version(None))


def test_preparing_a_version_unzips_its_code_and_every_layer(tmp_path: Path) -> None:
    code, layer = Code(tmp_path / "code"), Code(tmp_path / "layer")
    ProcessRuntimeExecutor.prepare_version(function_version(code, [SimpleNamespace(code=layer)]))
    assert (code.prepared, layer.prepared) == (1, 1)


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """LocalStack's router (the executor router in it) on a loopback port, as its gateway serves it."""
    executor_router()
    server = make_server("127.0.0.1", 0, ROUTER.wsgi(), threaded=True)
    port = int(server.server_port)
    monkeypatch.setattr(config, "GATEWAY_LISTEN", [SimpleNamespace(host="127.0.0.1", port=port)])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def environment(
    tmp_path: Path, gateway: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProcessRuntimeExecutor]:
    assert PYTHON312 is not None
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    monkeypatch.setenv(RUNTIMES_ENV, json.dumps({"python3.12": {"python": PYTHON312, "runtime_dir": None}}))
    monkeypatch.setenv(localstack_plugin.LOG_DIR_ENV, str(tmp_path / "logs"))
    executor = ProcessRuntimeExecutor(uuid.uuid4().hex, function_version(Code(code)))
    yield executor
    if executor.process is not None and executor.process.running:
        executor.stop()


def start(executor: ProcessRuntimeExecutor, handler: str) -> None:
    # What LocalStack's execution environment passes (the subset the runtime reads).
    executor.start(
        {
            "LOCALSTACK_RUNTIME_ENDPOINT": executor.get_runtime_endpoint(),
            "LOCALSTACK_RUNTIME_ID": executor.id,
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_NAME": "plugin-test",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "10",
            "AWS_REGION": "us-east-1",
        }
    )


@needs_python312
def test_an_environment_starts_answers_an_invocation_and_stops(
    environment: ProcessRuntimeExecutor, gateway: int
) -> None:
    assert (
        environment.get_runtime_endpoint()
        == f"http://127.0.0.1:{gateway}/_localstack_lambda/{environment.id}"
    )
    start(environment, "app.handler")
    result = environment.invoke(
        {"invoke-id": "req-1", "payload": json.dumps({"n": 1}), "invoked-function-arn": "arn:test"}
    )
    assert not result.is_error
    assert json.loads(result.payload) == {"echo": {"n": 1}, "function": "plugin-test", "region": "us-east-1"}
    process = environment.process
    assert process is not None
    environment.stop()
    assert not process.running, "the environment's process still runs after stop"
    logs = Path(os.environ[localstack_plugin.LOG_DIR_ENV])
    assert any(logs.iterdir()), "the environment wrote no log file"


@needs_python312
def test_a_handlers_exception_is_an_error_result_with_its_type(environment: ProcessRuntimeExecutor) -> None:
    start(environment, "app.failing")
    result = environment.invoke(
        {"invoke-id": "req-2", "payload": json.dumps({"why": "no"}), "invoked-function-arn": "arn:test"}
    )
    assert result.is_error
    error = json.loads(result.payload)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "refused: no"
