"""One Lambda execution environment as a local process: the runtime side of LocalStack's executor protocol.

LocalStack's own Docker executor runs its Go "init" in a container; this plays that part in a
plain `python3.12` process (standard library only), for machines without Docker:

- At start it puts the function's code, its layers and the runtime's boto3 on `sys.path` (in
  Lambda's order: /var/task, /opt/python/lib/pythonX.Y/site-packages, /opt/python, /var/runtime),
  imports the `_HANDLER` (the init phase) and reports `POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/
  {LOCALSTACK_RUNTIME_ID}/ready` (or `/error` with the import's error).
- It serves `POST /invoke` on 127.0.0.1:`LAMBDA_RUNTIME_PORT` (LocalStack's executor endpoint sends
  `{"invoke-id", "invoked-function-arn", "payload", "trace-id"}`), answers 202 at once, runs the
  handler, and posts the result to `…/invocations/{invoke-id}/response` (or `/error` with Lambda's
  `{"errorMessage", "errorType", "stackTrace"}`), the invocation's log lines first to `…/logs`.
- A handler still running after `AWS_LAMBDA_FUNCTION_TIMEOUT` seconds is reported as timed out and
  the process exits, as Lambda ends a timed-out execution environment.
- The process exits when LocalStack, its parent, is gone.

Run as `python3.12 lambda_runtime.py`; every setting comes from the environment
(tests/localstack/process_executor.py builds it).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

ENV_PORT = "LAMBDA_RUNTIME_PORT"
ENV_PATHS = "LAMBDA_RUNTIME_SYS_PATH"  # os.pathsep-separated, in Lambda's order


class LambdaContext:
    """The `context` argument Lambda's Python runtime passes to a handler."""

    def __init__(self, request_id: str, invoked_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error_body(error: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def load_handler(spec: str) -> Callable[[Any, LambdaContext], Any]:
    """`module.path.function` as in a function's Handler setting."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} is not module.function")
    handler = getattr(importlib.import_module(module_name), function_name)
    if not callable(handler):
        raise TypeError(f"handler {spec!r} is not callable")
    return handler  # type: ignore[no-any-return]


class Runtime:
    def __init__(self, endpoint: str, runtime_id: str, handler_spec: str, timeout_seconds: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.runtime_id = runtime_id
        self.handler_spec = handler_spec
        self.timeout_seconds = timeout_seconds
        self.handler: Callable[[Any, LambdaContext], Any] | None = None

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            response.read()

    def init(self) -> bool:
        try:
            self.handler = load_handler(self.handler_spec)
        except Exception as error:  # any import error is the function's init error, as in Lambda
            traceback.print_exc()
            self.post(f"/status/{self.runtime_id}/error", json.dumps(error_body(error)).encode())
            return False
        self.post(f"/status/{self.runtime_id}/ready", b"{}")
        return True

    def invoke(self, request: dict[str, Any]) -> None:
        assert self.handler is not None
        request_id = str(request["invoke-id"])
        deadline = time.monotonic() + self.timeout_seconds
        timer = threading.Timer(self.timeout_seconds, self._timed_out, args=(request_id,))
        timer.daemon = True
        timer.start()
        print(f"START RequestId: {request_id}", flush=True)
        try:
            event = json.loads(request.get("payload") or "null")
            context = LambdaContext(request_id, str(request.get("invoked-function-arn", "")), deadline)
            result = self.handler(event, context)
            outcome, body = "response", json.dumps(result).encode()
        except Exception as error:
            traceback.print_exc()
            outcome, body = "error", json.dumps(error_body(error)).encode()
        finally:
            timer.cancel()
        print(f"END RequestId: {request_id}", flush=True)
        logs = json.dumps({"logs": f"START RequestId: {request_id}\nEND RequestId: {request_id}\n"})
        self.post(f"/invocations/{request_id}/logs", logs.encode())
        self.post(f"/invocations/{request_id}/{outcome}", body)

    def _timed_out(self, request_id: str) -> None:
        message = f"Task timed out after {self.timeout_seconds:.2f} seconds"
        print(message, flush=True)
        body = {"errorMessage": message, "errorType": "Sandbox.Timedout", "stackTrace": []}
        try:
            self.post(f"/invocations/{request_id}/error", json.dumps(body).encode())
        finally:
            os._exit(1)


def invoke_server(runtime: Runtime, port: int) -> HTTPServer:
    """Bound before the init reports ready, so LocalStack's first invoke finds it listening."""

    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/invoke":
                self.send_response(404)
                self.end_headers()
                return
            request = json.loads(body)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            threading.Thread(target=runtime.invoke, args=(request,), daemon=True).start()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return HTTPServer(("127.0.0.1", port), InvokeHandler)


def exit_with_parent(interval_seconds: float = 1.0) -> None:
    """End this process once LocalStack has, even if LocalStack was killed without stopping it
    (a reparented process sees another parent id). Not PR_SET_PDEATHSIG: that fires when the
    *thread* that started the process ends, and LocalStack starts environments from pool threads."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_seconds)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    exit_with_parent()
    for path in reversed(os.environ.get(ENV_PATHS, "").split(os.pathsep)):
        if path:
            sys.path.insert(0, path)
    runtime = Runtime(
        endpoint=os.environ["LOCALSTACK_RUNTIME_ENDPOINT"],
        runtime_id=os.environ["LOCALSTACK_RUNTIME_ID"],
        handler_spec=os.environ["_HANDLER"],
        timeout_seconds=float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3),
    )
    server = invoke_server(runtime, int(os.environ[ENV_PORT]))
    if not runtime.init():
        sys.exit(1)
    server.serve_forever()


if __name__ == "__main__":
    main()
