"""The `process` Lambda executor's process side (tests/localstack/): a real python3.12 process
speaking LocalStack's executor protocol to a stand-in of LocalStack's executor endpoint."""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.localstack.process_executor import (
    LambdaProcess,
    ProcessSpec,
    RuntimeInstall,
    RuntimeNotConfigured,
    find_python,
    runtime_install,
)

PYTHON312 = find_python("3.12")
needs_python312 = pytest.mark.skipif(PYTHON312 is None, reason="no python3.12 on this machine")
REPLY_SECONDS = 30


class Endpoint:
    """LocalStack's ExecutorEndpoint as seen from the process: records what the runtime posts."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[str, bytes]] = queue.Queue()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.posts.put((self.path, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/_localstack_lambda/exec1"

    def next_post(self) -> tuple[str, bytes]:
        return self.posts.get(timeout=REPLY_SECONDS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    running = Endpoint()
    yield running
    running.server.shutdown()
    running.server.server_close()


def spec(tmp_path: Path, endpoint: Endpoint, handler: str, timeout: int = 10) -> ProcessSpec:
    assert PYTHON312 is not None
    return ProcessSpec(
        runtime="python3.12",
        install=RuntimeInstall(python=PYTHON312, runtime_dir=str(tmp_path / "runtime")),
        code_dir=tmp_path / "code",
        layer_dirs=[tmp_path / "layer"],
        function_env={
            "LOCALSTACK_RUNTIME_ENDPOINT": endpoint.url,
            "LOCALSTACK_RUNTIME_ID": "exec1",
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "GREETING": "hello",
        },
        port=free_port(),
        log_file=tmp_path / "logs" / "fn.log",
    )


def invoke(process_spec: ProcessSpec, request_id: str, payload: object) -> None:
    body = json.dumps(
        {"invoke-id": request_id, "invoked-function-arn": "arn:fn", "payload": json.dumps(payload)}
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{process_spec.port}/invoke", data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=REPLY_SECONDS) as response:
        assert response.status == 202


@needs_python312
def test_code_layer_and_runtime_are_imported_in_lambdas_order_and_a_result_is_posted(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    write(tmp_path / "layer/python/lib/python3.12/site-packages/dep.py", "WHERE = 'layer site-packages'\n")
    write(tmp_path / "runtime/dep.py", "WHERE = 'runtime'\n")
    write(tmp_path / "runtime/sdk.py", "NAME = 'runtime sdk'\n")
    write(
        tmp_path / "code/handlers/app.py",
        "import os, dep, sdk\n"
        "def handler(event, context):\n"
        "    return {'event': event, 'dep': dep.WHERE, 'sdk': sdk.NAME, 'env': os.environ['GREETING'],\n"
        "            'request': context.aws_request_id,\n"
        "            'left': context.get_remaining_time_in_millis() > 0}\n",
    )
    process = LambdaProcess(spec(tmp_path, endpoint, "handlers.app.handler"))
    process.start()
    try:
        assert endpoint.next_post() == ("/_localstack_lambda/exec1/status/exec1/ready", b"{}")
        invoke(process.spec, "req-1", {"n": 1})
        path, logs = endpoint.next_post()
        assert path == "/_localstack_lambda/exec1/invocations/req-1/logs"
        assert "START RequestId: req-1" in json.loads(logs)["logs"]
        path, body = endpoint.next_post()
        assert path == "/_localstack_lambda/exec1/invocations/req-1/response"
        assert json.loads(body) == {
            "event": {"n": 1},
            "dep": "layer site-packages",  # a layer comes before what the runtime provides
            "sdk": "runtime sdk",
            "env": "hello",
            "request": "req-1",
            "left": True,
        }
    finally:
        process.stop()
    assert not process.running
    assert "END RequestId: req-1" in process.logs()


@needs_python312
def test_a_raising_handler_posts_lambdas_error_shape(tmp_path: Path, endpoint: Endpoint) -> None:
    write(tmp_path / "code/app.py", "def handler(event, context):\n    raise KeyError('missing')\n")
    process = LambdaProcess(spec(tmp_path, endpoint, "app.handler"))
    process.start()
    try:
        assert endpoint.next_post()[0].endswith("/status/exec1/ready")
        invoke(process.spec, "req-2", None)
        endpoint.next_post()  # the logs
        path, body = endpoint.next_post()
        assert path.endswith("/invocations/req-2/error")
        error = json.loads(body)
        assert (error["errorType"], error["errorMessage"]) == ("KeyError", "'missing'")
        assert error["stackTrace"]
    finally:
        process.stop()


@needs_python312
def test_an_import_error_is_the_init_error_and_the_process_ends(tmp_path: Path, endpoint: Endpoint) -> None:
    write(tmp_path / "code/app.py", "import not_installed_anywhere\n")
    process = LambdaProcess(spec(tmp_path, endpoint, "app.handler"))
    process.start()
    path, body = endpoint.next_post()
    assert path == "/_localstack_lambda/exec1/status/exec1/error"
    assert json.loads(body)["errorType"] == "ModuleNotFoundError"
    process.stop()
    assert not process.running


@needs_python312
def test_a_handler_past_its_timeout_is_reported_and_its_environment_ends(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    write(
        tmp_path / "code/app.py",
        "import threading\ndef handler(event, context):\n    threading.Event().wait()\n",
    )
    process = LambdaProcess(spec(tmp_path, endpoint, "app.handler", timeout=1))
    process.start()
    try:
        assert endpoint.next_post()[0].endswith("/status/exec1/ready")
        invoke(process.spec, "req-3", {})
        path, body = endpoint.next_post()
        assert path.endswith("/invocations/req-3/error")
        assert json.loads(body)["errorType"] == "Sandbox.Timedout"
        assert process.wait_exit(REPLY_SECONDS) == 1
    finally:
        process.stop()


def test_a_runtime_without_a_configured_interpreter_is_refused() -> None:
    environ = {"LAMBDA_PROCESS_RUNTIMES": json.dumps({"python3.12": {"python": "/x/python3.12"}})}
    assert runtime_install("python3.12", environ) == RuntimeInstall(python="/x/python3.12", runtime_dir=None)
    with pytest.raises(RuntimeNotConfigured, match=r"python3\.13"):
        runtime_install("python3.13", environ)


def test_the_process_gets_the_functions_environment_not_localstacks(tmp_path: Path) -> None:
    process_spec = ProcessSpec(
        runtime="python3.12",
        install=RuntimeInstall(python="/x/python3.12", runtime_dir=None),
        code_dir=tmp_path / "code",
        layer_dirs=[],
        function_env={"AWS_REGION": "us-east-1"},
        port=1234,
        log_file=tmp_path / "log",
    )
    env = process_spec.environment({"PATH": "/bin", "GATEWAY_LISTEN": "127.0.0.1:4566"})
    assert env["PATH"] == "/bin" and env["AWS_REGION"] == "us-east-1"
    assert "GATEWAY_LISTEN" not in env
    assert env["LAMBDA_RUNTIME_SYS_PATH"] == str(tmp_path / "code")
    assert process_spec.command()[:2] == ["/x/python3.12", "-I"]


STARTER = """
import json, sys, threading
from pathlib import Path
from tests.localstack.process_executor import LambdaProcess, ProcessSpec, RuntimeInstall
raw = json.loads(sys.argv[1])
spec = ProcessSpec(
    runtime="python3.12", install=RuntimeInstall(python=raw["python"], runtime_dir=None),
    code_dir=Path(raw["code"]), layer_dirs=[], function_env=raw["env"], port=raw["port"],
    log_file=Path(raw["log"]),
)
process = LambdaProcess(spec)
process.start()
print(process._process.pid, flush=True)
threading.Event().wait()
"""


@needs_python312
def test_an_environment_ends_when_localstack_is_killed_without_stopping_it(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    """LocalStack SIGKILLed alone (not its group): its environments do not outlive it."""
    write(tmp_path / "code/app.py", "def handler(event, context):\n    return 1\n")
    process_spec = spec(tmp_path, endpoint, "app.handler")
    settings = {
        "python": PYTHON312,
        "code": str(process_spec.code_dir),
        "env": dict(process_spec.function_env),
        "port": process_spec.port,
        "log": str(process_spec.log_file),
    }
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, json.dumps(settings)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert starter.stdout is not None
        environment = int(starter.stdout.readline())
        assert endpoint.next_post()[0].endswith("/status/exec1/ready")
        exited = os.pidfd_open(environment)
        starter.kill()
        starter.wait()
        readable, _, _ = select.select([exited], [], [], REPLY_SECONDS)  # readable once it has exited
        os.close(exited)
        if not readable:
            os.kill(environment, signal.SIGKILL)
        assert readable, "the environment outlived its parent"
    finally:
        starter.kill()
