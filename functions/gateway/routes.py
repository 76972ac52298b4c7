"""The route table: the single source of truth for every endpoint.

The CDK stack, the local API Gateway emulation, the OpenAPI document and the tests all
read this module. It is plain data with no third-party imports so that the CDK app can
import it without the Lambda dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every prefixed route is served bare, under /v1 and under /{provider}/v1 (OpenAI's wire
# format), and under Azure OpenAI's two path forms of a deployment: /{provider}/openai (the
# dated API, `?api-version=2024-10-21`: AzureOpenAI(azure_endpoint=<gateway>/{provider})) and
# /{provider}/openai/v1 (Azure's v1 API). Only Azure deployments answer on the Azure forms.
PROVIDER_PATH_PARAM = "provider"
OPENAI_PREFIXES: tuple[str, ...] = ("", "/v1", "/{provider}/v1")
AZURE_DATED_PREFIX = "/{provider}/openai"
AZURE_V1_PREFIX = "/{provider}/openai/v1"
AZURE_PREFIXES: tuple[str, ...] = (AZURE_DATED_PREFIX, AZURE_V1_PREFIX)
PREFIXES: tuple[str, ...] = OPENAI_PREFIXES + AZURE_PREFIXES


def azure_form(resource: str | None) -> str | None:
    """Which of Azure's path forms (AZURE_DATED_PREFIX or AZURE_V1_PREFIX) an API Gateway
    resource template such as "/{provider}/openai/files/{file_id}" is, or None."""
    for prefix in sorted(AZURE_PREFIXES, key=len, reverse=True):
        if (resource or "").startswith(prefix + "/"):
            return prefix
    return None


# Request bodies of these content types reach Lambda base64-encoded, and responses with
# them leave API Gateway as bytes.
BINARY_MEDIA_TYPES: tuple[str, ...] = (
    "multipart/form-data",
    "application/octet-stream",
    "application/binary",
    "application/jsonl",
)

API_GATEWAY_MAX_REQUEST_BYTES = 10 * 1024 * 1024
LAMBDA_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
LAMBDA_MAX_REQUEST_BYTES = 6 * 1024 * 1024
API_GATEWAY_TIMEOUT_SECONDS = 29

# The largest Uploads API part that fits. API Gateway hands Lambda the multipart body
# base64-encoded (4 bytes per 3) inside the JSON event, beside the headers (twice: headers and
# multiValueHeaders, at most 10 KiB each), the request context and the path; the multipart
# framing (boundary lines, part headers) adds a few hundred bytes. 64 KiB covers all of that.
# (6 MiB - 64 KiB) * 3 / 4 = 4_669_440 bytes (4560 KiB): 4 MiB parts pass.
LAMBDA_EVENT_OVERHEAD_ALLOWANCE = 64 * 1024
MAX_UPLOAD_PART_BYTES = min(
    API_GATEWAY_MAX_REQUEST_BYTES - LAMBDA_EVENT_OVERHEAD_ALLOWANCE,
    (LAMBDA_MAX_REQUEST_BYTES - LAMBDA_EVENT_OVERHEAD_ALLOWANCE) // 4 * 3,
)
# What API Gateway answers (413) for a body it or the function cannot take: the stack's
# REQUEST_TOO_LARGE gateway response and the local emulation use this same text.
REQUEST_TOO_LARGE_MESSAGE = (
    f"Request body too large: API Gateway accepts at most {API_GATEWAY_MAX_REQUEST_BYTES} bytes and "
    f"a function at most {LAMBDA_MAX_REQUEST_BYTES} bytes of event (the body base64-encoded). "
    "Upload large files with the Uploads API (client.uploads.upload_file_chunked) "
    f"and pass part_size <= {MAX_UPLOAD_PART_BYTES}."
)


# Capabilities a function may be granted. The stack turns each into IAM statements.
TABLE_READ = "table:read"
TABLE_WRITE = "table:write"
TABLE_DELETE = "table:delete"
SECRET_MASTER_KEY = "secret:master-key"
SECRET_PROVIDER_KEYS = "secret:provider-keys"
SECRET_KEY_PEPPER = "secret:key-pepper"  # HMAC pepper for virtual key hashes
BUCKET_READ = "bucket:read"
BUCKET_WRITE = "bucket:write"
BUCKET_DELETE = "bucket:delete"
INVOKE_TRANSFER = "invoke:file_transfer"

_AUTHENTICATED = frozenset({SECRET_MASTER_KEY, SECRET_KEY_PEPPER, TABLE_READ})


@dataclass(frozen=True)
class Route:
    """One endpoint, served by its own Lambda function."""

    name: str  # also the handler module: functions/handlers/<name>.py
    method: str
    path: str  # without prefix, e.g. "/files/{file_id}"
    permissions: frozenset[str] = frozenset()
    prefixed: bool = True
    authenticated: bool = True
    memory_mb: int = 512
    timeout_seconds: int = API_GATEWAY_TIMEOUT_SECONDS
    creates: bool = False  # answers 201 on Azure's dated API, as Azure does

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every concrete API path template this route is served on."""
        if not self.prefixed:
            return (self.path,)
        return tuple(prefix + self.path for prefix in PREFIXES)

    @property
    def grants(self) -> frozenset[str]:
        return self.permissions | (_AUTHENTICATED if self.authenticated else frozenset())


@dataclass(frozen=True)
class AsyncFunction:
    """A function invoked asynchronously by other functions, not routed."""

    name: str
    permissions: frozenset[str]
    memory_mb: int = 512
    timeout_seconds: int = 900

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"


_PROVIDER_RW = frozenset({TABLE_WRITE, SECRET_PROVIDER_KEYS})

ROUTES: tuple[Route, ...] = (
    Route("health", "GET", "/health", prefixed=False, authenticated=False, memory_mb=128),
    # Files
    Route("files_create", "POST", "/files", _PROVIDER_RW, memory_mb=1024, creates=True),
    Route("files_list", "GET", "/files"),
    Route("files_retrieve", "GET", "/files/{file_id}", _PROVIDER_RW),
    Route("files_delete", "DELETE", "/files/{file_id}", _PROVIDER_RW | {TABLE_DELETE, BUCKET_DELETE}),
    Route(
        "files_content",
        "GET",
        "/files/{file_id}/content",
        _PROVIDER_RW | {BUCKET_READ, BUCKET_WRITE},
        memory_mb=1024,
    ),
    # Batches
    Route("batches_create", "POST", "/batches", _PROVIDER_RW, creates=True),
    Route("batches_list", "GET", "/batches", _PROVIDER_RW),
    Route("batches_retrieve", "GET", "/batches/{batch_id}", _PROVIDER_RW),
    Route("batches_cancel", "POST", "/batches/{batch_id}/cancel", _PROVIDER_RW),
    # Uploads (large files in parts)
    Route("uploads_create", "POST", "/uploads", frozenset({TABLE_WRITE}), creates=True),
    Route(
        "uploads_add_part",
        "POST",
        "/uploads/{upload_id}/parts",
        # read + delete: an expired upload's parts are removed when it is next touched
        frozenset({TABLE_WRITE, BUCKET_WRITE, BUCKET_READ, BUCKET_DELETE}),
        memory_mb=1024,
    ),
    Route(
        "uploads_complete",
        "POST",
        "/uploads/{upload_id}/complete",
        frozenset({TABLE_WRITE, BUCKET_READ, BUCKET_DELETE, INVOKE_TRANSFER}),
    ),
    Route(
        "uploads_cancel",
        "POST",
        "/uploads/{upload_id}/cancel",
        frozenset({TABLE_WRITE, BUCKET_READ, BUCKET_DELETE}),
    ),
    # Virtual keys (master key only), shaped like LiteLLM's key management
    Route("keys_generate", "POST", "/key/generate", frozenset({TABLE_WRITE}), prefixed=False),
    Route("keys_info", "GET", "/key/info", prefixed=False),
    Route("keys_list", "GET", "/key/list", prefixed=False),
    Route("keys_update", "POST", "/key/update", frozenset({TABLE_WRITE}), prefixed=False),
    Route("keys_delete", "POST", "/key/delete", frozenset({TABLE_WRITE, TABLE_DELETE}), prefixed=False),
)

ASYNC_FUNCTIONS: tuple[AsyncFunction, ...] = (
    AsyncFunction(
        "file_transfer",
        frozenset({TABLE_READ, TABLE_WRITE, SECRET_PROVIDER_KEYS, BUCKET_READ, BUCKET_DELETE}),
        memory_mb=1024,
    ),
)

ROUTES_BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}


def route(name: str) -> Route:
    return ROUTES_BY_NAME[name]
