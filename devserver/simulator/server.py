"""The HTTP front: routing for the OpenAI (``/v1``) and Azure (``/openai``) forms, auth, faults.

Stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive; every response carries a
Content-Length. Request bodies are streamed (see ``httpio``); file downloads go out with sendfile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import bedrock_models
from .anthropic_batches import AnthropicError
from .bedrock import BedrockError, BedrockJobs
from .config import SimulatorConfig
from .errors import ApiError
from .gemini import GeminiApi
from .gemini_routes import handle as gemini_handle
from .google import ERRORS as GOOGLE_ERRORS
from .google import GCS_PREFIX, VERTEX_PREFIX, Answer, GoogleForms, error_answer
from .google import PREFIXES as GOOGLE_PATHS
from .httpio import BodyReader, read_multipart
from .limits import SimulatorLimits
from .records import ANTHROPIC, AZURE, OPENAI
from .state import SimState

log = logging.getLogger("devserver.simulator")

_FILE_FIELDS = frozenset({"file"})
_PART_FIELDS = frozenset({"data"})
_FAULT_MESSAGES = {
    429: (
        "rate_limit_error",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", "service_unavailable", "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}

_AZURE_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
_AZURE_V1_VERSIONS = frozenset({"v1", "preview"})
# Anthropic's API is served under this prefix (its paths, /v1/messages/batches..., follow).
ANTHROPIC_PREFIX = "/anthropic"
MAX_ANTHROPIC_BODY = 256 * 1024 * 1024
# The Gemini API (Files, Batch Mode) is served under this prefix (`gemini`).
GEMINI_PREFIX = "/gemini"


_BEDROCK_PATHS = ("/model-invocation-job",)  # also matches /model-invocation-jobs


def _invalid_url(method: str, path: str) -> ApiError:
    return ApiError(404, f"Invalid URL ({method} {path})")


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Server(ThreadingHTTPServer):
    google: GoogleForms  # Vertex AI, Cloud Storage and the token endpoint (set at start)
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        state: SimState,
        config: SimulatorConfig,
        bedrock: BedrockJobs,
        gemini: GeminiApi,
    ) -> None:
        self.state = state
        self.bedrock = bedrock
        self.gemini = gemini
        self.config = config
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-simulator/1.0"
    sys_version = ""
    wbufsize = 1 << 16  # headers and small bodies leave in one write
    disable_nagle_algorithm = True
    timeout = 600
    server: _Server

    # ------------------------------------------------------------------ plumbing

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def version_string(self) -> str:
        return self.server_version

    def handle_expect_100(self) -> bool:
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        self._status = 0
        self._body = BodyReader(self.rfile, self.headers)
        try:
            if self._body.invalid:
                self.close_connection = True
                raise ApiError(400, "Invalid Content-Length header.")
            if path == "/_sim" or path.startswith("/_sim/"):
                self._admin(path)
            elif path.startswith(_BEDROCK_PATHS):
                self._bedrock(path, query)
            elif path.startswith(GOOGLE_PATHS):
                self._google(path, query)
            else:
                self._api(path, query)
        except ApiError as err:
            if self._drain():
                self._send_error(err)
        except BedrockError as err:
            if self._drain():
                self._send_json(err.status, err.body(), {"x-amzn-ErrorType": err.error_type})
        except GOOGLE_ERRORS as err:
            if self._drain():
                self._send_answer(error_answer(err))
        except ConnectionError:
            self.close_connection = True
        except Exception:
            log.exception("simulator: %s %s failed", self.command, self.path)
            if self._drain():
                self._send_error(
                    ApiError(500, "The server had an error processing your request.", type="server_error")
                )
        finally:
            if not self._body.done:
                self.close_connection = True
            if self.server.config.log_requests:
                ms = (time.perf_counter() - started) * 1000
                print(f"[sim] {self.command} {self.path} -> {self._status} ({ms:.1f} ms)", file=sys.stderr)

    def _drain(self) -> bool:
        """Consume what is left of the request body so the connection can be reused."""
        try:
            if not self._body.invalid:
                self._body.drain()
            return True
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
            return False
        except ApiError:
            self.close_connection = True
            return True

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + os.urandom(16).hex())
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.status, err.body(), err.headers)

    # ------------------------------------------------------------------ API

    def _api(self, path: str, query: dict[str, str]) -> None:
        state = self.server.state
        method = self.command
        fault = state.take_fault(method, path)
        if fault is not None:
            if fault.delay_seconds > 0:
                time.sleep(fault.delay_seconds)
            if fault.status is not None:
                kind, code, message = _FAULT_MESSAGES.get(
                    fault.status,
                    (
                        "server_error" if fault.status >= 500 else "invalid_request_error",
                        None,
                        "Injected fault.",
                    ),
                )
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = _format_seconds(fault.retry_after)
                raise ApiError(fault.status, message, type=kind, code=code, headers=headers)
        if path.startswith(ANTHROPIC_PREFIX + "/v1/"):
            self._anthropic(path[len(ANTHROPIC_PREFIX) :], query)
            return
        if path.startswith(GEMINI_PREFIX + "/"):
            self._gemini(path[len(GEMINI_PREFIX) :], query)
            return
        if path.startswith("/v1/"):
            provider, rest = OPENAI, path[4:]
            auth = self.headers.get("Authorization") or ""
            presented = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if not state.key_ok(OPENAI, presented):
                shown = f"{presented[:3]}***{presented[-4:]}" if presented else ""
                message = (
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys."
                    if presented
                    else "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                )
                raise ApiError(401, message, code="invalid_api_key")
        elif path.startswith("/openai/v1/"):
            # Azure's v1 API: OpenAI's paths under /openai/v1, the key as `api-key` or as a
            # Bearer token (what the plain openai SDK sends), and no dated api-version.
            provider, rest = AZURE, path[11:]
            auth = self.headers.get("Authorization") or ""
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if not state.key_ok(AZURE, self.headers.get("api-key") or bearer):
                raise ApiError(401, _AZURE_ACCESS_DENIED, code="invalid_api_key")
            if query.get("api-version", "v1") not in _AZURE_V1_VERSIONS:
                raise ApiError(400, "API version not supported", param="api-version", code="BadRequest")
        elif path.startswith("/openai/"):
            provider, rest = AZURE, path[8:]
            if not state.key_ok(AZURE, self.headers.get("api-key")):
                raise ApiError(401, _AZURE_ACCESS_DENIED, code="invalid_api_key")
            if not query.get("api-version"):
                raise ApiError(
                    400,
                    "The api-version query parameter (?api-version=) is required for all requests.",
                    param="api-version",
                    code="missing_api_version",
                )
        else:
            raise _invalid_url(method, path)
        seg = [s for s in rest.split("/") if s]
        # Azure's dated API answers a create with 201; its v1 API, like OpenAI, with 200.
        created = 201 if provider == AZURE and not path.startswith("/openai/v1/") else 200
        if seg and seg[0] == "files":
            self._files(provider, seg, query, created)
        elif seg and seg[0] == "uploads":
            self._uploads(provider, seg, created)
        elif seg and seg[0] == "batches":
            self._batches(provider, seg, query, created)
        else:
            raise _invalid_url(method, path)

    def _files(self, provider: str, seg: list[str], query: dict[str, str], created: int) -> None:
        state, method, n = self.server.state, self.command, len(seg)
        if n == 1 and method == "POST":
            form = read_multipart(self._body, self.headers.get("Content-Type"), state.tmp_dir, _FILE_FIELDS)
            self._send_json(created, state.create_file(provider, form.fields, form.files.get("file")))
        elif n == 1 and method == "GET":
            self._send_json(200, state.list_files(provider, query))
        elif n == 2 and method == "GET":
            self._send_json(200, state.get_file(provider, seg[1]))
        elif n == 2 and method == "DELETE":
            self._send_json(200, state.delete_file(provider, seg[1]))
        elif n == 3 and seg[2] == "content" and method == "GET":
            self._send_content(provider, seg[1])
        else:
            raise _invalid_url(method, self.path.split("?", 1)[0])

    def _send_content(self, provider: str, file_id: str) -> None:
        fh, size = self.server.state.open_content(provider, file_id)
        with fh:
            self._status = 200
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("x-request-id", "req_" + os.urandom(16).hex())
            self.end_headers()
            self.wfile.flush()
            if size:
                self.connection.sendfile(fh, 0, size)

    def _uploads(self, provider: str, seg: list[str], created: int) -> None:
        state, method, n = self.server.state, self.command, len(seg)
        if method != "POST":
            raise _invalid_url(method, self.path.split("?", 1)[0])
        if n == 1:
            self._send_json(created, state.create_upload(provider, self._body.read_json()))
        elif n == 3 and seg[2] == "parts":
            form = read_multipart(self._body, self.headers.get("Content-Type"), state.tmp_dir, _PART_FIELDS)
            self._send_json(200, state.add_part(provider, seg[1], form.files.get("data")))
        elif n == 3 and seg[2] == "complete":
            self._send_json(200, state.complete_upload(provider, seg[1], self._body.read_json()))
        elif n == 3 and seg[2] == "cancel":
            self._body.drain()
            self._send_json(200, state.cancel_upload(provider, seg[1]))
        else:
            raise _invalid_url(method, self.path.split("?", 1)[0])

    def _batches(self, provider: str, seg: list[str], query: dict[str, str], created: int) -> None:
        state, method, n = self.server.state, self.command, len(seg)
        if n == 1 and method == "POST":
            self._send_json(created, state.create_batch(provider, self._body.read_json()))
        elif n == 1 and method == "GET":
            self._send_json(200, state.list_batches(provider, query))
        elif n == 2 and method == "GET":
            self._send_json(200, state.get_batch(provider, seg[1]))
        elif n == 3 and seg[2] == "cancel" and method == "POST":
            self._body.drain()
            self._send_json(200, state.cancel_batch(provider, seg[1]))
        else:
            raise _invalid_url(method, self.path.split("?", 1)[0])

    # ------------------------------------------------------------------ Amazon Bedrock (rest-json)

    def _bedrock(self, path: str, query: dict[str, str]) -> None:
        jobs, method = self.server.bedrock, self.command
        authorization = self.headers.get("Authorization")
        if not (authorization or "").startswith("AWS4-HMAC-SHA256 "):
            raise BedrockError(403, "AccessDeniedException", "Missing Authentication Token")
        seg = [s for s in path.split("/") if s]
        if seg == ["model-invocation-job"] and method == "POST":
            self._send_json(200, jobs.create(self._body.read_json(), authorization))
        elif seg == ["model-invocation-jobs"] and method == "GET":
            self._send_json(200, jobs.list(query))
        elif len(seg) == 2 and seg[0] == "model-invocation-job" and method == "GET":
            self._send_json(200, jobs.get(unquote(seg[1])))
        elif len(seg) == 3 and seg[0] == "model-invocation-job" and seg[2] == "stop" and method == "POST":
            self._body.drain()
            self._send_json(200, jobs.stop(unquote(seg[1])))
        else:
            raise BedrockError(404, "UnknownOperationException", f"Unknown operation {method} {path}")

    # ------------------------------------------------------------------ Google (Vertex AI, GCS, token)

    def _google(self, path: str, query: dict[str, str]) -> None:
        base = f"http://{self.headers.get('Host') or self.server.server_name}"
        answer = self.server.google.handle(self.command, path, query, self.headers, self._read_at_most, base)
        self._send_answer(answer)

    def _read_at_most(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while chunk := self._body.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "Request body too large.")
            parts.append(chunk)
        return b"".join(parts)

    def _send_answer(self, answer: Answer) -> None:
        if not isinstance(answer.body, bytes):
            self._send_json(answer.status, answer.body, answer.headers)
            return
        self._status = answer.status
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    # ------------------------------------------------------------------ Anthropic

    def _anthropic(self, path: str, query: dict[str, str]) -> None:
        """Anthropic's Message Batches API (``/anthropic/v1/messages/batches...``)."""
        state, method = self.server.state, self.command
        if not state.key_ok(ANTHROPIC, self.headers.get("x-api-key")):
            raise AnthropicError(401, "invalid x-api-key", type="authentication_error")
        if not self.headers.get("anthropic-version"):
            raise AnthropicError(400, "anthropic-version: header is required", type="invalid_request_error")
        seg = [s for s in path.split("/") if s]
        if seg[:3] != ["v1", "messages", "batches"]:
            raise AnthropicError(404, f"Not found: {method} {path}", type="not_found_error")
        batches, base, n = state.anthropic, self._anthropic_base(), len(seg)
        if n == 3 and method == "POST":
            raw = self._body.read(MAX_ANTHROPIC_BODY + 1) if not self._body.done else b""
            while not self._body.done and len(raw) <= MAX_ANTHROPIC_BODY:
                raw += self._body.read()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise AnthropicError(
                    400, "The request body is not valid JSON.", type="invalid_request_error"
                ) from None
            self._send_json(200, batches.create(body, len(raw), base))
        elif n == 3 and method == "GET":
            self._send_json(200, batches.list(query, base))
        elif n == 4 and method == "GET":
            self._send_json(200, batches.retrieve(seg[3], base))
        elif n == 4 and method == "DELETE":
            self._send_json(200, batches.delete(seg[3]))
        elif n == 5 and seg[4] == "cancel" and method == "POST":
            self._body.drain()
            self._send_json(200, batches.cancel(seg[3], base))
        elif n == 5 and seg[4] == "results" and method == "GET":
            data = batches.results(seg[3])
            self._status = 200
            self.send_response(200)
            self.send_header("Content-Type", "application/binary")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            raise AnthropicError(404, f"Not found: {method} {path}", type="not_found_error")

    def _anthropic_base(self) -> str:
        return f"http://{self.headers.get('Host') or self.server.server_name}{ANTHROPIC_PREFIX}"

    # ------------------------------------------------------------------ Gemini API

    def _gemini(self, path: str, query: dict[str, str]) -> None:
        base = f"http://{self.headers.get('Host') or self.server.server_name}{GEMINI_PREFIX}"
        answer = gemini_handle(
            self.server.gemini,
            self.command,
            path,
            query,
            self.headers,
            self._body.read_json,
            self._body.read,
            base,
        )
        self._body.drain()
        if answer.raw is None:
            self._send_json(answer.status, answer.json, answer.headers)
            return
        self._status = answer.status
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(answer.raw)))
        self.end_headers()
        self.wfile.write(answer.raw)

    # ------------------------------------------------------------------ /_sim admin (no auth)

    def _admin(self, path: str) -> None:
        state, method = self.server.state, self.command
        seg = [s for s in path.split("/") if s][1:]
        if seg == ["faults"] and method == "POST":
            self._send_json(200, state.add_fault(self._body.read_json()))
        elif seg == ["faults"] and method == "DELETE":
            state.clear_faults()
            self._send_json(200, {"object": "sim.faults", "pending": 0})
        elif seg == ["reset"] and method == "POST":
            self._body.drain()
            state.reset()
            self.server.bedrock.reset()
            self.server.gemini.reset()
            self.server.google.reset()
            self._send_json(200, {"object": "sim.reset", "ok": True})
        elif seg == ["keys"] and method == "POST":
            self._send_json(200, state.set_keys(self._body.read_json()))
        elif seg == ["limits"] and method == "POST":
            self._send_json(200, state.set_limits(self._body.read_json()))
        elif len(seg) == 2 and seg[0] == "received" and method == "GET":
            self._send_json(200, state.received_info(seg[1]))
        elif seg == ["health"] and method == "GET":
            self._send_json(200, {"ok": True})
        else:
            raise _invalid_url(method, path)


class Simulator:
    """A local OpenAI + Azure OpenAI Files/Uploads/Batches server running on background threads."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._own_storage: str | None = None
        self._state: SimState | None = None
        self._bedrock: BedrockJobs | None = None
        self._gemini: GeminiApi | None = None
        self._google: GoogleForms | None = None

    # lifecycle
    def start(self) -> Simulator:
        if self._server is not None:
            return self
        root = self.config.storage_dir
        if root is None:
            root = self._own_storage = tempfile.mkdtemp(prefix="openai-sim-")
        else:
            os.makedirs(root, exist_ok=True)
        self._state = SimState(self.config, root)
        self._bedrock = BedrockJobs(
            lambda: self.state.phase,
            _s3_client,
            bedrock_models.respond,
            clock=self.config.clock,
            limits=lambda: self.config.limits,
            first_attempts=self._state.first_attempts,
        )
        self._gemini = GeminiApi(
            os.path.join(root, "gemini"),
            lambda: self.state.phase,
            lambda: self.config.gemini_key,
            clock=self.config.clock,
            limits=lambda: self.config.limits,
            first_attempts=self._state.first_attempts,
        )
        self._server = _Server(
            (self.config.host, self.config.port), self._state, self.config, self._bedrock, self._gemini
        )
        self._server.google = self._google = GoogleForms(
            lambda: self.state.phase,
            clock=self.config.clock,
            limits=lambda: self.config.limits,
            first_attempts=self._state.first_attempts,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._state is not None:
            self._state.close()
        if self._own_storage is not None:
            shutil.rmtree(self._own_storage, ignore_errors=True)
            self._own_storage = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def openai_api_base(self) -> str:
        return self.url + "/v1"

    @property
    def azure_api_base(self) -> str:
        return self.url

    @property
    def bedrock_endpoint_url(self) -> str:
        """For a boto3 `bedrock` client (or AWS_ENDPOINT_URL_BEDROCK)."""
        return self.url

    @property
    def anthropic_api_base(self) -> str:
        return self.url + ANTHROPIC_PREFIX

    @property
    def gemini_api_base(self) -> str:
        return self.url + GEMINI_PREFIX

    @property
    def gemini(self) -> GeminiApi:
        if self._gemini is None:
            raise RuntimeError("the simulator is not running")
        return self._gemini

    @property
    def vertex_api_base(self) -> str:
        """A vertex deployment's `api_base` (its `gcs_api_base`: `gcs_api_base`)."""
        return self.url + VERTEX_PREFIX

    @property
    def gcs_api_base(self) -> str:
        return self.url + GCS_PREFIX

    @property
    def google(self) -> GoogleForms:
        if self._google is None:
            raise RuntimeError("the simulator is not running")
        return self._google

    def google_service_account_key(self) -> str:
        """A vertex deployment's key: a service-account JSON key whose token_uri is here."""
        return json.dumps(self.google.service_account_key(self.url))

    # in-process equivalents of the /_sim endpoints
    @property
    def state(self) -> SimState:
        if self._state is None:
            raise RuntimeError("the simulator is not running")
        return self._state

    @property
    def bedrock_jobs(self) -> BedrockJobs:
        if self._bedrock is None:
            raise RuntimeError("the simulator is not running")
        return self._bedrock

    def reset(self) -> None:
        self.state.reset()
        if self._bedrock is not None:
            self._bedrock.reset()
        if self._gemini is not None:
            self._gemini.reset()
        if self._google is not None:
            self._google.reset()

    def add_fault(self, **fault: Any) -> None:
        self.state.add_fault(fault)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def set_keys(
        self,
        *,
        openai_key: str | None = None,
        azure_key: str | None = None,
        anthropic_key: str | None = None,
        gemini_key: str | None = None,
    ) -> None:
        if gemini_key is not None:
            self.config.gemini_key = gemini_key
        keys = (("openai_key", openai_key), ("azure_key", azure_key), ("anthropic_key", anthropic_key))
        body = {k: v for k, v in keys if v is not None}
        self.state.set_keys(body)

    def received(self, file_id: str) -> dict[str, Any]:
        return self.state.received_info(file_id)

    def set_limits(self, limits: SimulatorLimits) -> None:
        """The caps and quotas each form enforces from now on (`limits`)."""
        self.config.limits = limits

    def finish_work(self) -> None:
        """Wait for the OpenAI and Azure forms' background batch passes to end."""
        self.state.finish_work()


def _s3_client() -> Any:
    """Where Bedrock jobs read records and write results: boto3's S3 as the environment points it
    (AWS_ENDPOINT_URL: the local moto server under `make serve`)."""
    import boto3

    return boto3.session.Session().client("s3", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
