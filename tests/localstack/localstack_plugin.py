"""LocalStack's Lambda runtime executor plugin `process`: each execution environment a local process.

Loaded inside LocalStack (its own Python 3.13 venv; `make localstack-test` registers the entry
point `localstack.lambda.runtime_executor: process` and sets LAMBDA_RUNTIME_EXECUTOR=process).
It speaks LocalStack's executor protocol through LocalStack's own ExecutorEndpoint; the process
side is lambda_runtime.py and its start and stop are process_executor.py's.

Not emulated: the Lambda sandbox (no memory limit, no read-only file system, no separate user),
the runtime's exact boto3, container images, extensions, SnapStart.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.net import get_free_tcp_port
from process_executor import LambdaProcess, ProcessSpec, runtime_install

LOOPBACK = "127.0.0.1"
LOG_DIR_ENV = "LAMBDA_PROCESS_LOG_DIR"


def _log_dir() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "lambda-process-logs")


def _code_dirs(function_version: FunctionVersion) -> tuple[Path, list[Path]]:
    """The unzipped code and layers, unzipped now if LocalStack has not yet done it."""
    code = function_version.config.code
    if code is None:
        raise LambdaRuntimeException("container image functions are not supported by the process executor")
    code.prepare_for_execution()
    layers = []
    for layer in function_version.config.layers:
        if layer.code is not None:
            layer.code.prepare_for_execution()
            layers.append(Path(layer.code.get_unzipped_code_location()))
    return Path(code.get_unzipped_code_location()), layers


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.port = get_free_tcp_port()
        self.executor_endpoint = ExecutorEndpoint(id, container_address=LOOPBACK, container_port=self.port)
        self.process: LambdaProcess | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        self.executor_endpoint.start()
        runtime = str(self.function_version.config.runtime)
        code_dir, layer_dirs = _code_dirs(self.function_version)
        name = self.function_version.id.function_name
        self.process = LambdaProcess(
            ProcessSpec(
                runtime=runtime,
                install=runtime_install(runtime),
                code_dir=code_dir,
                layer_dirs=layer_dirs,
                function_env=env_vars,
                port=self.port,
                log_file=_log_dir() / f"{name}-{self.id}.log",
            )
        )
        self.process.start()
        self.executor_endpoint.wait_for_startup()

    def stop(self) -> None:
        self.executor_endpoint.shutdown()
        if self.process is not None:
            self.process.stop()

    def get_address(self) -> str:
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        return LOOPBACK

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{LOOPBACK}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        return self.process.logs() if self.process is not None else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        _code_dirs(function_version)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        return None

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "process"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return ProcessRuntimeExecutor
