"""The local gateway: HTTP front end + API Gateway emulation + AWS + providers.

`start_gateway()` starts everything in-process and returns a `LocalGateway`; the
integration tests and `python -m devserver` both use it. Only one gateway should run per
process at a time: the function environment (os.environ) and the async runner are global,
as they are in a Lambda execution environment.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.routes import ASYNC_FUNCTIONS, ROUTES, SCHEDULED_FUNCTIONS, AsyncFunction, ScheduledFunction
from gateway.runtime import async_invoke, resources
from gateway.webhooks import queue as webhook_queue

from devserver import aws, metrics_log
from devserver.apigw import ApiGateway, Handler, HttpResponse, import_handler
from devserver.events import lambda_context
from devserver.local_queue import LocalDelayQueue
from devserver.persistence import LocalData
from devserver.request_head import head_problem
from devserver.watcher import LocalWatcher, interval_from_env

logger = logging.getLogger("devserver")

DEFAULT_MASTER_KEY = "sk-1234"
DEFAULT_OPENAI_API_BASE = "https://api.openai.com/v1"
DEFAULT_AZURE_API_VERSION = "2025-04-01-preview"
DEFAULT_SIMULATOR_PHASE_SECONDS = 2.0
SIM_OPENAI_KEY = "sim-openai-key"
SIM_AZURE_KEY = "sim-azure-key"
# The local bedrock deployment's models (alias -> Bedrock model id), and the service role its
# jobs name (the stack creates the real one; the simulator takes any).
BEDROCK_MODELS = {
    "claude-3-5-haiku": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "claude-sonnet-4": "us.anthropic.claude-sonnet-4-20250514-v1:0",
    # the other families (gateway/providers/bedrock/families)
    "nova-lite": "us.amazon.nova-lite-v1:0",
    "llama-3-3-70b": "us.meta.llama3-3-70b-instruct-v1:0",
    "gpt-oss-120b": "openai.gpt-oss-120b-1:0",
    # Claude with structured outputs (4.5 and later) and adaptive thinking with effort (4.6)
    "claude-haiku-4-5": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "claude-opus-4-6": "us.anthropic.claude-opus-4-6-v1",
}
LOCAL_BEDROCK_ROLE_ARN = "arn:aws:iam::123456789012:role/openai-gateway-bedrock-batch"
SIM_ANTHROPIC_KEY = "sim-anthropic-key"
# The simulated vertex deployment's project, location and bucket (the simulator's own).
SIM_VERTEX_PROJECT = "sim-project"
SIM_VERTEX_LOCATION = "us-central1"
SIM_VERTEX_BUCKET = "sim-vertex-batches"
DEFAULT_ANTHROPIC_API_BASE = "https://api.anthropic.com"
SIM_GEMINI_KEY = "sim-gemini-key"
DEFAULT_GEMINI_API_BASE = "https://generativelanguage.googleapis.com"
DEFAULT_PROVIDER = "openai"
POWERTOOLS_SERVICE_NAME = "openai-gateway"
POWERTOOLS_METRICS_NAMESPACE = "OpenAIGateway"

# How long the front end waits for the next bytes of a request (or an idle keep-alive
# connection) before it answers 408 or closes: DEVSERVER_READ_TIMEOUT_SECONDS.
DEFAULT_READ_TIMEOUT_SECONDS = 5.0
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}\Z")
# API Gateway has no resource with a trailing slash (an empty path part), so the stack answers
# /console/ with 404; the local server sends a browser typing it to the page instead. The page
# itself cannot be served there: its links are relative to /console (console/app.js).
CONSOLE_PAGE = "/console"
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")
_MAX_TRAILER_LINES = 100

# How long an idle keep-alive connection waits for its next request.
IDLE_TIMEOUT_SECONDS = 60.0

# How long a stop lets the requests being served finish before it closes their connections.
DRAIN_SECONDS = 2.0

# How long a stop waits for async invocations (file_transfer) before the last save.
ASYNC_STOP_WAIT_SECONDS = 2.0

# Bodies over the API Gateway limit are read and dropped up to this size (so the client
# sees the 413), beyond it the connection is closed.
_DRAIN_LIMIT = 64 * 1024 * 1024

__all__ = [
    "HttpFrontEnd",
    "LocalAsyncRunner",
    "LocalGateway",
    "ProviderSettings",
    "function_environment",
    "reset_function_caches",
    "resolve_providers",
    "serve_http",
    "start_gateway",
]


# -- providers ---------------------------------------------------------------------------


@dataclass
class ProviderSettings:
    name: str  # "openai" | "azure"
    type: str
    api_key: str
    api_base: str
    api_version: str | None = None
    simulated: bool = False
    region: str | None = None  # Bedrock's
    models: dict[str, str] | None = None
    batch_caps: dict[str, Any] | None = None  # overrides of the documented caps (BATCH_CAPS)
    settings: dict[str, Any] | None = None  # the type's own settings (vertex: project, location, bucket)

    def config(self) -> dict[str, Any]:
        """The non-secret part, as it goes into GATEWAY_PROVIDERS."""
        config: dict[str, Any]
        if self.type == "bedrock":
            config = {"type": "bedrock", "region": self.region, "models": dict(self.models or {})}
        else:
            config = {"type": self.type, "api_base": self.api_base}
        if self.api_version is not None and self.type != "bedrock":
            config["api_version"] = self.api_version
        if self.batch_caps is not None:
            config["batch_caps"] = dict(self.batch_caps)
        if self.settings:
            config.update(self.settings)
        return config


def resolve_providers(env: Mapping[str, str]) -> dict[str, ProviderSettings]:
    """Provider settings from LiteLLM-style variables; a provider without a key is simulated.

    OPENAI_API_KEY, OPENAI_API_BASE (default https://api.openai.com/v1), AZURE_API_KEY,
    AZURE_API_BASE (https://RESOURCE.openai.azure.com, required with AZURE_API_KEY),
    AZURE_API_VERSION, ANTHROPIC_API_KEY, ANTHROPIC_API_BASE (default https://api.anthropic.com),
    GEMINI_API_KEY, GEMINI_API_BASE (default https://generativelanguage.googleapis.com).
    Simulated providers get an empty api_base, filled in once the simulator runs. BATCH_CAPS: a
    JSON object of deployment name -> its batch caps override (README, "Provider batch caps").
    """

    def get(name: str) -> str:
        return (env.get(name) or "").strip()

    azure_version = get("AZURE_API_VERSION") or DEFAULT_AZURE_API_VERSION
    providers: dict[str, ProviderSettings] = {}
    if get("OPENAI_API_KEY"):
        base = (get("OPENAI_API_BASE") or DEFAULT_OPENAI_API_BASE).rstrip("/")
        providers["openai"] = ProviderSettings("openai", "openai", get("OPENAI_API_KEY"), base)
    else:
        providers["openai"] = ProviderSettings("openai", "openai", SIM_OPENAI_KEY, "", simulated=True)
    if get("AZURE_API_KEY"):
        if not get("AZURE_API_BASE"):
            raise ValueError(
                "AZURE_API_KEY is set but AZURE_API_BASE is not (https://RESOURCE.openai.azure.com)"
            )
        providers["azure"] = ProviderSettings(
            "azure", "azure", get("AZURE_API_KEY"), get("AZURE_API_BASE").rstrip("/"), azure_version
        )
    else:
        providers["azure"] = ProviderSettings(
            "azure", "azure", SIM_AZURE_KEY, "", azure_version, simulated=True
        )
    if get("ANTHROPIC_API_KEY"):
        base = (get("ANTHROPIC_API_BASE") or DEFAULT_ANTHROPIC_API_BASE).rstrip("/")
        providers["anthropic"] = ProviderSettings("anthropic", "anthropic", get("ANTHROPIC_API_KEY"), base)
    else:
        providers["anthropic"] = ProviderSettings(
            "anthropic", "anthropic", SIM_ANTHROPIC_KEY, "", simulated=True
        )
    if get("GEMINI_API_KEY"):
        base = (get("GEMINI_API_BASE") or DEFAULT_GEMINI_API_BASE).rstrip("/")
        providers["gemini"] = ProviderSettings("gemini", "gemini", get("GEMINI_API_KEY"), base)
    else:
        providers["gemini"] = ProviderSettings("gemini", "gemini", SIM_GEMINI_KEY, "", simulated=True)
    # Bedrock needs no key: AWS credentials. BEDROCK_REGION runs it in that region (with the
    # ambient credentials and endpoint); without it the simulator answers Bedrock's API.
    providers["bedrock"] = ProviderSettings(
        "bedrock",
        "bedrock",
        "",
        "",
        region=get("BEDROCK_REGION") or aws.DEFAULT_REGION,
        models=dict(BEDROCK_MODELS),
        simulated=not get("BEDROCK_REGION"),
    )
    providers["vertex"] = vertex_settings(get)
    for name, override in batch_caps_overrides(get("BATCH_CAPS"), providers).items():
        providers[name].batch_caps = override
    return providers


def vertex_settings(get: Callable[[str], str]) -> ProviderSettings:
    """Vertex AI: VERTEX_SERVICE_ACCOUNT_FILE (a service account's JSON key), VERTEX_PROJECT,
    VERTEX_LOCATION, VERTEX_GCS_BUCKET (and VERTEX_GCS_PREFIX) run it on Google Cloud; without
    the key file the simulator answers Vertex AI, Cloud Storage and the token endpoint."""
    key_file = get("VERTEX_SERVICE_ACCOUNT_FILE")
    if not key_file:
        settings = {
            "project": SIM_VERTEX_PROJECT,
            "location": SIM_VERTEX_LOCATION,
            "gcs_bucket": SIM_VERTEX_BUCKET,
        }
        return ProviderSettings("vertex", "vertex", "", "", simulated=True, settings=settings)
    missing = [name for name in ("VERTEX_PROJECT", "VERTEX_LOCATION", "VERTEX_GCS_BUCKET") if not get(name)]
    if missing:
        raise ValueError(f"VERTEX_SERVICE_ACCOUNT_FILE is set but {', '.join(missing)} is not")
    settings = {
        "project": get("VERTEX_PROJECT"),
        "location": get("VERTEX_LOCATION"),
        "gcs_bucket": get("VERTEX_GCS_BUCKET"),
    }
    if get("VERTEX_GCS_PREFIX"):
        settings["gcs_prefix"] = get("VERTEX_GCS_PREFIX")
    with open(key_file, encoding="utf-8") as handle:
        key = handle.read()
    return ProviderSettings("vertex", "vertex", key, "", settings=settings)


def batch_caps_overrides(raw: str, providers: Mapping[str, ProviderSettings]) -> dict[str, dict[str, Any]]:
    """BATCH_CAPS, checked as the functions will check it (a bad one stops the server at start)."""
    if not raw:
        return {}
    from gateway.providers.config import BatchCapsOverride
    from pydantic import ValidationError

    try:
        overrides = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"BATCH_CAPS is not JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ValueError("BATCH_CAPS must be a JSON object of deployment name -> caps")
    for name, override in overrides.items():
        if name not in providers:
            raise ValueError(f"BATCH_CAPS names {name!r}, not one of {sorted(providers)}")
        try:
            BatchCapsOverride.model_validate(override)
        except ValidationError as exc:
            raise ValueError(f"BATCH_CAPS[{name!r}]: {exc}") from None
    return overrides


def simulator_limits(raw: str) -> Any:
    """SIM_LIMITS: the simulator's caps and quotas (devserver.simulator.limits), JSON."""
    from devserver.simulator.limits import SimulatorLimits

    try:
        return SimulatorLimits.parse(json.loads(raw)) if raw else SimulatorLimits()
    except ValueError as exc:
        raise ValueError(f"SIM_LIMITS: {exc}") from None


def _start_simulator(
    phase_seconds: float, port: int = 0, storage_dir: str | None = None, limits: Any = None
) -> Any:
    try:
        from devserver.simulator import Simulator, SimulatorConfig
    except ImportError as exc:
        raise RuntimeError(
            "no provider key is set (OPENAI_API_KEY / AZURE_API_KEY) and the provider "
            f"simulator (devserver.simulator) cannot be imported: {exc}"
        ) from exc

    def start(on_port: int) -> Any:
        config = SimulatorConfig(
            port=on_port,
            openai_key=SIM_OPENAI_KEY,
            azure_key=SIM_AZURE_KEY,
            anthropic_key=SIM_ANTHROPIC_KEY,
            gemini_key=SIM_GEMINI_KEY,
            batch_phase_seconds=phase_seconds,
            storage_dir=storage_dir,
        )
        if limits is not None:
            config.limits = limits
        return Simulator(config).start()

    try:
        return start(port)
    except OSError as exc:
        if not port:
            raise
        logger.warning("simulator port %d is taken (%s): using a free port", port, exc)
        return start(0)


def function_environment(
    providers: Mapping[str, ProviderSettings],
    *,
    default_provider: str = DEFAULT_PROVIDER,
    log_level: str = "INFO",
) -> dict[str, str]:
    """The environment every function gets (what the stack sets on each Lambda)."""
    return {
        resources.ENV_TABLE_NAME: resources.DEFAULT_TABLE_NAME,
        resources.ENV_BUCKET_NAME: resources.DEFAULT_BUCKET_NAME,
        resources.ENV_MASTER_KEY_SECRET: resources.DEFAULT_MASTER_KEY_SECRET,
        resources.ENV_PROVIDER_KEYS_SECRET: resources.DEFAULT_PROVIDER_KEYS_SECRET,
        resources.ENV_KEY_PEPPER_SECRET: resources.DEFAULT_KEY_PEPPER_SECRET,
        resources.ENV_PROVIDERS: json.dumps({name: p.config() for name, p in providers.items()}),
        resources.ENV_DEFAULT_PROVIDER: default_provider,
        resources.ENV_TRANSFER_FUNCTION: resources.DEFAULT_TRANSFER_FUNCTION,
        # batch events go to moto's (or LocalStack's) EventBridge
        resources.ENV_EVENT_BUS_NAME: resources.DEFAULT_EVENT_BUS_NAME,
        resources.ENV_BEDROCK_ROLE_ARN: os.environ.get(resources.ENV_BEDROCK_ROLE_ARN)
        or LOCAL_BEDROCK_ROLE_ARN,
        # A developer receives webhooks on this machine: plain http to loopback is allowed here only.
        resources.ENV_WEBHOOKS_ALLOW_LOOPBACK: "true",
        "POWERTOOLS_SERVICE_NAME": POWERTOOLS_SERVICE_NAME,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": POWERTOOLS_METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "LOG_LEVEL": log_level,
    }


# Per-cold-start caches of the function code (settings, boto3 clients, secrets): reset
# whenever the environment changes, as a new Lambda execution environment would start
# empty. Best effort: a hook that does not exist (yet) is skipped.
_CACHE_RESETS: tuple[tuple[str, str], ...] = (
    ("gateway.runtime.settings", "reset_settings"),
    ("gateway.providers.registry", "reset_clients"),
    ("gateway.http.auth", "clear_key_cache"),
    ("gateway.storage.dynamo", "dynamodb_client.cache_clear"),
    ("gateway.storage.s3", "s3_client.cache_clear"),
    ("aws_lambda_powertools.utilities.parameters", "clear_caches"),
    ("gateway.runtime.event_bus", "reset_client"),
)


def reset_function_caches() -> None:
    """Forget what the function code cached under the previous environment."""
    import importlib

    for module_name, attribute in _CACHE_RESETS:
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            logger.debug("no cache reset hook %s.%s", module_name, attribute)
            continue
        try:
            target()
        except Exception:
            logger.exception("cache reset %s.%s failed", module_name, attribute)


# -- async invocations -------------------------------------------------------------------


class LocalAsyncRunner:
    """Runs `Event` invocations of ASYNC_FUNCTIONS in daemon threads of this process."""

    def __init__(self, resolver: Callable[[str], Handler | None] = import_handler) -> None:
        self._resolver = resolver
        # the watcher too: batches_create invokes it for a planned batch's first steps
        self._functions: dict[str, AsyncFunction | ScheduledFunction] = {f.name: f for f in ASYNC_FUNCTIONS}
        self._functions |= {f.name: f for f in SCHEDULED_FUNCTIONS}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        if name not in self._functions:
            raise ValueError(f"unknown async function {name!r}")
        # Lambda takes the payload as JSON: fail like boto3 would on what does not serialize.
        payload = json.loads(json.dumps(payload))
        thread = threading.Thread(target=self._run, args=(name, payload), name=f"async-{name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run(self, name: str, payload: dict[str, Any]) -> None:
        """As Lambda runs an `Event`: the first attempt and `retry_attempts` retries (at once,
        not after Lambda's minutes), then the on-failure function with Lambda's record."""
        function = self._functions[name]
        handler = self._resolver(name)
        if handler is None:
            logger.error("async %s: handlers.%s does not exist yet; event dropped", name, name)
            return
        attempts = function.retry_attempts + 1
        for attempt in range(1, attempts + 1):
            context = lambda_context(
                name, memory_mb=function.memory_mb, timeout_seconds=function.timeout_seconds
            )
            try:
                handler(payload, context)
                return
            except Exception as exc:
                logger.exception("async %s failed (attempt %d of %d)", name, attempt, attempts)
                error = exc
        if function.on_failure:
            self._run(function.on_failure, failure_record(context, payload, error, attempts))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the invocations started so far; False if some still run after `timeout`."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(t.is_alive() for t in threads)


def failure_record(context: Any, payload: dict[str, Any], error: Exception, attempts: int) -> dict[str, Any]:
    """The invocation record Lambda sends an on-failure destination once retries are exhausted."""
    return {
        "version": "1.0",
        "timestamp": email.utils.formatdate(usegmt=True),
        "requestContext": {
            "requestId": context.aws_request_id,
            "functionArn": f"{context.invoked_function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


# -- HTTP front end ----------------------------------------------------------------------


# API Gateway's quota for a REST API request's line and header values together.
MAX_HEADER_BYTES = 10240
_ERROR_CODES = {
    400: "invalid_request",
    414: "request_uri_too_long",
    431: "request_header_fields_too_large",
    501: "method_not_allowed",
}


class _BadRequest(Exception):
    pass


class _BodyTooLarge(Exception):
    def __init__(self, size: int | None, drained: bool) -> None:
        super().__init__(size)
        self.size = size
        self.drained = drained


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "openai-gateway-devserver"
    server: _GatewayHTTPServer

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, CONNECT...) is served too: the emulation answers it
        # like the stack's resources do (405 naming the allowed methods, or 404), in the envelope.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # type: ignore[misc]  # every read of a request
        super().setup()

    def handle_one_request(self) -> None:
        """An idle keep-alive connection waits up to IDLE_TIMEOUT_SECONDS for its next request
        (longer than clients keep one: httpx 5 s); from its first byte the request line and the
        headers have one read timeout, all of them."""
        try:
            self.connection.settimeout(IDLE_TIMEOUT_SECONDS)
            if not self.rfile.peek(1):  # type: ignore[attr-defined]  # a BufferedReader
                self.close_connection = True  # the client closed it
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        rfile = self._plain_rfile = self.rfile
        self.rfile = _Deadline(rfile, self.connection, self.server.read_timeout)  # type: ignore[assignment]
        try:
            super().handle_one_request()
        finally:
            self._end_of_head()

    def _end_of_head(self) -> None:
        """The body and the next request are read without the head's deadline."""
        self.rfile = self._plain_rfile
        with contextlib.suppress(OSError):
            self.connection.settimeout(self.server.read_timeout)

    def parse_request(self) -> bool:
        """http.server's parsing, less what it would guess: an HTTP/0.9 request line (it would
        then wait for headers that never come) and an ambiguous head are answered 400."""
        if len(self.raw_requestline.split()) == 2:
            self.command, self.request_version = "", "HTTP/0.9"
            self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
            self.send_error(400, "HTTP/0.9 requests are not supported; send HTTP/1.1")
            return False
        # The header lines are read through the head's deadline (handle_one_request): a client
        # sending them a byte at a time would otherwise hold the connection as long as it likes.
        try:
            if not super().parse_request():
                return False
        finally:
            self._end_of_head()
        problem = head_problem(self.headers)
        if problem is not None:
            self.close_connection = True
            self._send(self.command, self.server.api.error_response(400, problem, "invalid_request"))
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a request line or header over its limits, a
        malformed request), in the envelope with x-request-id as API Gateway's gateway
        responses are, instead of its HTML page."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        api = self.server.api
        self._send(
            getattr(self, "command", "") or "",
            api.error_response(code, f"{text}.", _ERROR_CODES.get(code, "invalid_request")),
        )

    def _serve(self) -> None:
        with self.server.in_flight(self.connection):
            self._serve_request()
        if self.server.stopping:
            self.close_connection = True

    def _serve_request(self) -> None:
        api = self.server.api
        header_bytes = len(self.requestline) + sum(len(k) + len(v) for k, v in self.headers.items())
        if header_bytes > MAX_HEADER_BYTES:
            self.close_connection = True
            message = (
                f"Request line and headers of {header_bytes} bytes: API Gateway accepts at most "
                f"{MAX_HEADER_BYTES} bytes."
            )
            self._send(self.command, api.error_response(431, message, "request_header_fields_too_large"))
            return
        try:
            body = self._read_body(api.max_request_bytes)
        except _BodyTooLarge as exc:
            if not exc.drained:
                self.close_connection = True
            self._send(self.command, api.request_too_large(exc.size))
            return
        except _BadRequest as exc:
            self.close_connection = True
            self._send(self.command, api.error_response(400, str(exc), "invalid_request"))
            return
        except TimeoutError:
            self.close_connection = True
            message = f"The request body did not arrive within {self.server.read_timeout:g} s."
            self._send(self.command, api.error_response(408, message, "request_timeout"))
            return
        path, mark, query = self.path.partition("?")
        if path == CONSOLE_PAGE + "/" and self.command in ("GET", "HEAD"):
            self._send(self.command, HttpResponse(301, [("Location", CONSOLE_PAGE + mark + query)], b""))
            return
        try:
            response = api.handle(
                self.command,
                self.path,
                self.headers.items(),
                body,
                source_ip=self.client_address[0],
            )
        except Exception:
            logger.exception("devserver failed on %s %s", self.command, self.path)
            response = api.error_response(500, "The local gateway failed; see its log.", "devserver_error")
        self._send(self.command, response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        if not _CONTENT_LENGTH.match(raw_length.strip()):
            raise _BadRequest(f"Invalid Content-Length: {raw_length[:40]!r}")
        length = int(raw_length)
        if length > limit:
            drained = length <= _DRAIN_LIMIT
            if drained:
                self._discard(length)
            raise _BodyTooLarge(length, drained)
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadRequest("Request body shorter than Content-Length")
        return body

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                raise _BadRequest("Truncated chunked request body")
            digits = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.match(digits):
                shown = digits[:20].decode("latin-1")
                raise _BadRequest(f"Malformed chunked request body: chunk size {shown!r}")
            size = int(digits, 16)
            if size == 0:
                break
            total += size
            if total > _DRAIN_LIMIT:
                raise _BodyTooLarge(None, drained=False)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _BadRequest("Truncated chunked request body")
            if total <= limit:
                parts.append(chunk)
            if self.rfile.readline(65537) not in (b"\r\n", b"\n"):  # the CRLF after each chunk
                raise _BadRequest("Malformed chunked request body: no CRLF after a chunk")
        for _ in range(_MAX_TRAILER_LINES):
            if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                break
        else:
            raise _BadRequest("Too many trailer lines in a chunked request body")
        if total > limit:
            raise _BodyTooLarge(total, drained=True)
        return b"".join(parts)

    def _send(self, method: str, response: HttpResponse) -> None:
        status = response.status
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            *(f"{name}: {value}" for name, value in response.headers),
            f"Content-Length: {len(response.body)}",
        ]
        if self.server.stopping:
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
        self.wfile.write(head if method == "HEAD" else head + response.body)
        if self.server.access_log:
            self.log_request(status, len(response.body))

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):  # an idle keep-alive connection, closed
            logger.debug("%s %s", self.address_string(), format % args)
            return
        logger.warning("%s %s", self.address_string(), format % args)


class _Deadline:
    """A reader whose lines must all arrive within `seconds` of its making."""

    def __init__(self, rfile: Any, connection: socket.socket, seconds: float) -> None:
        self._rfile = rfile
        self._connection = connection
        self._deadline = time.monotonic() + seconds

    def readline(self, limit: int = -1) -> bytes:
        """As BufferedReader.readline, the deadline checked at every receive (a line sent a
        byte at a time included)."""
        line = bytearray()
        while limit < 0 or len(line) < limit:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request head did not arrive in time")
            self._connection.settimeout(remaining)
            buffered = self._rfile.peek()  # what is buffered, or one receive
            if not buffered:
                break  # the client closed
            end = buffered.find(b"\n")
            take = len(buffered) if end == -1 else end + 1
            if limit >= 0:
                take = min(take, limit - len(line))
            line += self._rfile.read(take)
            if line.endswith(b"\n"):
                break
        return bytes(line)


class _GatewayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], api: ApiGateway, access_log: bool, read_timeout: float
    ) -> None:
        self.api = api
        self.access_log = access_log
        self.read_timeout = read_timeout
        self.stopping = False
        self._connections: dict[socket.socket, bool] = {}  # -> a request on it is being served
        self._connections_changed = threading.Condition()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections[request] = False
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_changed:
            self._connections.pop(request, None)
            self._connections_changed.notify_all()
        super().shutdown_request(request)

    @contextlib.contextmanager
    def in_flight(self, connection: socket.socket) -> Iterator[None]:
        with self._connections_changed:
            self._connections[connection] = True
        try:
            yield
        finally:
            with self._connections_changed:
                self._connections[connection] = False
                self._connections_changed.notify_all()

    def drain(self, timeout: float) -> None:
        """Let the requests being served finish (up to `timeout`), closing idle keep-alive
        connections at once; then close whatever is left."""
        self.stopping = True
        deadline = time.monotonic() + timeout
        with self._connections_changed:
            while True:
                for connection, busy in list(self._connections.items()):
                    if not busy:
                        _hang_up(connection)
                if not any(self._connections.values()) or time.monotonic() >= deadline:
                    break
                self._connections_changed.wait(max(0.0, deadline - time.monotonic()))
            for connection in list(self._connections):
                _hang_up(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer is no error of the server's (no traceback on stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("%s: %s", client_address[0], error)
            return
        logger.exception("devserver: error serving %s", client_address[0])


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


@dataclass
class HttpFrontEnd:
    """The HTTP server in front of an ApiGateway, serving in a daemon thread."""

    url: str
    port: int
    api: ApiGateway
    _server: _GatewayHTTPServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """No new connections; the requests being served finish (up to `drain_seconds`)."""
        if self._server.stopping:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drain(drain_seconds)
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpFrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_http(
    api: ApiGateway,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    access_log: bool = False,
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
) -> HttpFrontEnd:
    """Serve `api` over HTTP/1.1 on host:port (0: a free port) in a daemon thread; a request
    whose next bytes take longer than `read_timeout_seconds` gets a 408 or a closed connection."""
    server = _GatewayHTTPServer((host, port), api, access_log, read_timeout_seconds)
    bound_port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="devserver-http", daemon=True
    )
    thread.start()
    return HttpFrontEnd(f"http://{host}:{bound_port}", int(bound_port), api, server, thread)


# -- the whole gateway -------------------------------------------------------------------


class _EnvPatch:
    """Sets environment variables and restores the previous values on `restore()`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, name: str, value: str) -> None:
        if name not in self._saved:
            self._saved[name] = os.environ.get(name)
        os.environ[name] = value

    def set_default(self, name: str, value: str) -> None:
        if not os.environ.get(name):
            self.set(name, value)

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


@dataclass
class LocalGateway:
    url: str  # "http://127.0.0.1:<port>"
    port: int
    master_key: str
    simulator: Any | None  # devserver.simulator.Simulator when a provider is simulated
    aws_endpoint_url: str
    embedded_moto: bool
    providers: dict[str, ProviderSettings]
    api: ApiGateway
    async_runner: LocalAsyncRunner
    webhook_queue: LocalDelayQueue | None = None
    watcher: LocalWatcher | None = None  # the batch watcher, every WATCH_INTERVAL_SECONDS
    local_data: LocalData | None = None  # where make serve keeps its data, if it does
    front: HttpFrontEnd | None = None
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def api_base(self) -> str:
        """The base URL for the OpenAI SDK: url + "/v1"."""
        return self.url + "/v1"

    @property
    def simulated_providers(self) -> list[str]:
        return [name for name, p in self.providers.items() if p.simulated]

    def wait_for_async(self, timeout: float | None = None) -> bool:
        """Wait for in-flight async invocations (file_transfer); False on timeout."""
        return self.async_runner.wait(timeout)

    def stop(self) -> None:
        """Stop everything started and restore the environment (idempotent)."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception:
                logger.exception("error while stopping the local gateway")

    def __enter__(self) -> LocalGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_gateway(
    port: int = 0,
    *,
    master_key: str | None = None,
    provider_env: Mapping[str, str] | None = None,
    simulator_phase_seconds: float | None = None,
    aws_endpoint_url: str | None = None,
    access_log: bool = False,
    routes: Sequence[Any] = ROUTES,
    simulator_port: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    watch_interval_seconds: float | None = None,
    read_timeout_seconds: float | None = None,
) -> LocalGateway:
    """Start the whole gateway in this process and return it once it serves.

    AWS: `aws_endpoint_url` or $AWS_ENDPOINT_URL if set (LocalStack, AWS), else an embedded
    moto server. Providers: from `provider_env` if given (it replaces os.environ for the
    provider variables), else os.environ; providers without a key use the simulator (on
    `simulator_port`, or a free port when 0 or taken). `data_dir`: the embedded moto's and
    the simulator's data are restored from it and saved to it (devserver.persistence);
    `fresh` empties it first. Without it everything lives in memory. The batch watcher runs
    every `watch_interval_seconds` (default $WATCH_INTERVAL_SECONDS or 5; 0: only when asked,
    `gateway.watcher.run_once()`). `read_timeout_seconds`: the front end's read timeout (default
    $DEVSERVER_READ_TIMEOUT_SECONDS or 5).
    """
    cleanups: list[Callable[[], None]] = []
    env = _EnvPatch()
    cleanups.append(env.restore)

    def abort() -> None:
        while cleanups:
            try:
                cleanups.pop()()
            except Exception:
                logger.exception("cleanup failed")

    try:
        master_key = master_key or os.environ.get("GATEWAY_MASTER_KEY") or DEFAULT_MASTER_KEY
        providers = resolve_providers(os.environ if provider_env is None else provider_env)

        local_data = LocalData(data_dir, fresh=fresh) if data_dir is not None else None
        simulator = None
        if any(p.simulated for p in providers.values()):
            if simulator_phase_seconds is None:
                raw = os.environ.get("SIM_BATCH_PHASE_SECONDS")
                simulator_phase_seconds = float(raw) if raw else DEFAULT_SIMULATOR_PHASE_SECONDS
            storage = str(local_data.simulator_dir) if local_data else None
            limits = simulator_limits(os.environ.get("SIM_LIMITS") or "")
            simulator = _start_simulator(simulator_phase_seconds, simulator_port, storage, limits)
            cleanups.append(simulator.stop)
            if local_data:
                local_data.attach_simulator(
                    simulator,
                    [n for n, p in providers.items() if p.simulated and p.type in ("openai", "azure")],
                )
            if providers["openai"].simulated:
                providers["openai"].api_base = simulator.openai_api_base
            if providers["azure"].simulated:
                providers["azure"].api_base = simulator.azure_api_base
            if providers["bedrock"].simulated:  # boto3's bedrock client reads this
                env.set("AWS_ENDPOINT_URL_BEDROCK", simulator.bedrock_endpoint_url)
            if providers["anthropic"].simulated:
                providers["anthropic"].api_base = simulator.anthropic_api_base
            if providers["gemini"].simulated:
                providers["gemini"].api_base = simulator.gemini_api_base
            if providers["vertex"].simulated:  # its key: a service account the simulator made
                vertex = providers["vertex"]
                vertex.api_key = simulator.google_service_account_key()
                vertex.settings = {
                    **(vertex.settings or {}),
                    "api_base": simulator.vertex_api_base,
                    "gcs_api_base": simulator.gcs_api_base,
                }

        endpoint = aws_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        embedded = not endpoint
        if embedded:
            moto = aws.start_moto()
            cleanups.append(moto.stop)
            endpoint = moto.url
            for name, value in aws.DUMMY_CREDENTIALS.items():
                env.set_default(name, value)
        elif _is_loopback(str(endpoint)):  # LocalStack or a moto server: any credentials do
            for name, value in aws.DUMMY_CREDENTIALS.items():
                env.set_default(name, value)
        assert endpoint is not None
        env.set("AWS_ENDPOINT_URL", endpoint)
        bedrock = providers["bedrock"]
        if not bedrock.simulated and _is_loopback(str(endpoint)):
            # Real Bedrock, whatever local endpoint serves the rest.
            env.set("AWS_ENDPOINT_URL_BEDROCK", f"https://bedrock.{bedrock.region}.amazonaws.com")
        env.set_default("AWS_DEFAULT_REGION", aws.DEFAULT_REGION)
        env.set_default("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])

        if local_data and embedded:  # LocalStack and AWS keep their own data
            local_data.attach_aws(
                endpoint,
                table=resources.DEFAULT_TABLE_NAME,
                bucket=resources.DEFAULT_BUCKET_NAME,
                secrets=(resources.DEFAULT_KEY_PEPPER_SECRET,),
                read_table=_moto_table_reader(resources.DEFAULT_TABLE_NAME, os.environ["AWS_DEFAULT_REGION"]),
            )
        aws.bootstrap(
            master_key=master_key,
            provider_keys={name: p.api_key for name, p in providers.items() if p.type != "bedrock"},
            endpoint_url=endpoint,
        )
        if local_data:
            local_data.restore_aws_data()
            # The last save runs once the front end, the watcher, the webhook queue and the
            # async invocations are done, and before the servers it reads from stop.
            local_data.start_autosave()
            cleanups.append(local_data.stop)
        log_level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
        for name, value in function_environment(providers, log_level=log_level).items():
            env.set(name, value)

        reset_function_caches()
        cleanups.append(reset_function_caches)  # and again on stop
        metrics_log.attach()
        cleanups.append(metrics_log.detach)

        runner = LocalAsyncRunner()
        async_invoke.use_local_runner(runner)
        cleanups.append(lambda: async_invoke.use_local_runner(None))
        cleanups.append(lambda: _wait_for_async(runner))
        # Webhook deliveries: an in-process queue consumed by the real SQS handler.
        consumer = import_handler("webhook_deliver")
        assert consumer is not None
        deliveries = LocalDelayQueue(consumer)
        webhook_queue.use_local_queue(deliveries.send)
        cleanups.append(lambda: webhook_queue.use_local_queue(None))
        cleanups.append(deliveries.stop)
        watcher = LocalWatcher(
            interval_from_env() if watch_interval_seconds is None else watch_interval_seconds
        )
        cleanups.append(watcher.stop)

        api = ApiGateway(routes)
        if read_timeout_seconds is None:
            raw_timeout = os.environ.get("DEVSERVER_READ_TIMEOUT_SECONDS")
            read_timeout_seconds = float(raw_timeout) if raw_timeout else DEFAULT_READ_TIMEOUT_SECONDS
        front = serve_http(api, port, access_log=access_log, read_timeout_seconds=read_timeout_seconds)
        cleanups.append(front.stop)
    except BaseException:
        abort()
        raise

    return LocalGateway(
        url=front.url,
        port=front.port,
        master_key=master_key,
        simulator=simulator,
        aws_endpoint_url=endpoint,
        embedded_moto=embedded,
        providers=providers,
        api=api,
        async_runner=runner,
        webhook_queue=deliveries,
        watcher=watcher,
        local_data=local_data,
        front=front,
        _cleanups=cleanups,
    )


def _moto_table_reader(table: str, region: str) -> Callable[[], list[dict[str, Any]] | None]:
    from devserver.moto_server import table_items  # moto itself: only with the embedded server

    return functools.partial(table_items, table, region)


def _wait_for_async(runner: LocalAsyncRunner) -> None:
    if not runner.wait(ASYNC_STOP_WAIT_SECONDS):
        logger.warning("stopping with async invocations still running (their work is not saved)")


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return (
        host in ("localhost", "127.0.0.1", "::1")
        or host.endswith(".localhost.localstack.cloud")
        or (host == "localhost.localstack.cloud")
    )
