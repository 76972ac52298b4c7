"""The route table: the single source of truth for every endpoint.

The CDK stack, the local API Gateway emulation, the OpenAPI document and the tests all
read this module. It is plain data with no third-party imports so that the CDK app can
import it without the Lambda dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.runtime.resources import ENV_WEBHOOK_DLQ_URL, ENV_WEBHOOK_QUEUE_URL

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


# Capabilities a function may be granted. infra/functions.py turns each into exact IAM actions;
# tests/infra/test_grants_match_code.py runs every function and fails on a grant its code does
# not use, and on a call no grant covers.
TABLE_GET = "table:get"  # GetItem
TABLE_PUT = "table:put"  # PutItem
TABLE_UPDATE = "table:update"  # UpdateItem
TABLE_DELETE = "table:delete"  # DeleteItem
TABLE_BATCH_WRITE = "table:batch-write"  # BatchWriteItem (an object and its reverse item)
TABLE_BATCH_GET = "table:batch-get"  # BatchGetItem (the books' reads of many keys: the watcher's check)
TABLE_QUERY_BY_OWNER = "table:query:by_owner"  # Query on the by_owner index (a key's lists)
TABLE_QUERY_BY_KIND = "table:query:by_kind"  # Query on the by_kind index (the master key's lists)
TABLE_QUERY_BY_WATCH = "table:query:by_watch"  # Query on the sparse by_watch index (the watcher's work)
# Writes to `key#…` items (virtual keys). A function that writes the table without this one is
# denied writes to them (a dynamodb:LeadingKeys condition): no provider-facing code can mint a key.
TABLE_KEY_ITEMS = "table:key-items"
# Powertools Idempotency records: Get/Put/Update/DeleteItem on `idempotency#…` items only.
TABLE_IDEMPOTENCY = "table:idempotency"
SECRET_MASTER_KEY = "secret:master-key"
SECRET_PROVIDER_KEYS = "secret:provider-keys"
SECRET_KEY_PEPPER = "secret:key-pepper"  # HMAC pepper for virtual key hashes
BUCKET_READ = "bucket:read"  # GetObject (HeadObject, presigned GETs)
BUCKET_LIST = "bucket:list"  # ListBucket under the function's prefixes (a miss is a 404, not a 403)
BUCKET_WRITE = "bucket:write"  # PutObject (single and multipart uploads)
BUCKET_ABORT_UPLOAD = "bucket:abort-upload"  # AbortMultipartUpload, after a failed multipart upload
BUCKET_DELETE = "bucket:delete"  # DeleteObject
# The gateway-kept files of providers without a file store (and its notes on their batches),
# under resources.KEPT_FILES_PREFIX only: the same S3 actions as above, on that prefix.
KEPT_READ = "kept:read"  # GetObject (HeadObject)
KEPT_LIST = "kept:list"  # ListBucket under that prefix (finding a file or a batch note to adopt)
KEPT_WRITE = "kept:write"  # PutObject (single and multipart)
KEPT_ABORT_UPLOAD = "kept:abort-upload"  # AbortMultipartUpload, after a failed multipart write
KEPT_DELETE = "kept:delete"  # DeleteObject
KEPT_OBJECT_CAPABILITIES = frozenset({KEPT_READ, KEPT_WRITE, KEPT_ABORT_UPLOAD, KEPT_DELETE})
# under resources.PLAN_FILES_PREFIX only: a batch plan's part indexes (storage.plan_files); the
# function that holds them lists and deletes there with BUCKET_LIST and BUCKET_DELETE.
PLAN_FILES_READ = "plan-files:read"  # GetObject (HeadObject)
PLAN_FILES_WRITE = "plan-files:write"  # PutObject
INVOKE_TRANSFER = "invoke:file_transfer"
# batches_create starts a planned batch at once: the watcher invoked (Event) for that batch only
INVOKE_WATCHER = "invoke:batch_watcher"
# Lambda invokes the on-failure destination with the failed function's own role.
INVOKE_TRANSFER_FAILED = "invoke:transfer_failed"
# Amazon Bedrock batch inference (model invocation jobs of the configured models). A create
# also passes the stack's Bedrock service role (iam:PassRole on that role only, to Bedrock only)
# and tags the job; nothing is granted when no bedrock deployment is configured.
BEDROCK_CREATE_JOB = "bedrock:create-job"
BEDROCK_GET_JOB = "bedrock:get-job"
BEDROCK_LIST_JOBS = "bedrock:list-jobs"
BEDROCK_STOP_JOB = "bedrock:stop-job"
BEDROCK_RECORDS_WRITE = "bedrock:records-write"  # PutObject under resources.BEDROCK_INPUT_PREFIX
BEDROCK_RESULTS_READ = "bedrock:results-read"  # GetObject under resources.BEDROCK_OUTPUT_PREFIX

# Batch events: PutEvents on the gateway's event bus; SendMessage on the webhook delivery
# queue and on its dead-letter queue.
EVENTS_PUT = "events:put"
QUEUE_WEBHOOKS_SEND = "queue:webhooks:send"
QUEUE_WEBHOOKS_DLQ_SEND = "queue:webhooks-dlq:send"

# Authentication: the master key, or a virtual key's hash (pepper) looked up with one GetItem.
_AUTHENTICATED = frozenset({SECRET_MASTER_KEY, SECRET_KEY_PEPPER, TABLE_GET})


@dataclass(frozen=True)
class Route:
    """One endpoint, served by its own Lambda function."""

    name: str  # also the handler module: functions/handlers/<name>.py
    method: str
    path: str  # without prefix, e.g. "/files/{file_id}"
    permissions: frozenset[str] = frozenset()
    prefixed: bool = True
    # The prefixes it is served under when prefixed: every provider form by default, so that a
    # client bound to any of the gateway's base URLs reaches every endpoint.
    prefixes: tuple[str, ...] = PREFIXES
    authenticated: bool = True
    memory_mb: int = 512
    timeout_seconds: int = API_GATEWAY_TIMEOUT_SECONDS
    creates: bool = False  # answers 201 on Azure's dated API, as Azure does
    # More paths the same function serves (unprefixed routes only), e.g. the console's page
    # beside its files.
    also_at: tuple[str, ...] = ()
    # An operation of the API, listed in the OpenAPI document; False for the console's files.
    api: bool = True

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every concrete API path template this route is served on."""
        if not self.prefixed:
            return (self.path, *self.also_at)
        return tuple(prefix + self.path for prefix in self.prefixes)

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
    # Lambda's asynchronous invocation settings: retries after a failed attempt, how long an
    # event may wait, and the async function that gets Lambda's record once it gives up
    # (None: a dead-letter queue with an alarm).
    retry_attempts: int = 2
    max_event_age_seconds: int = 6 * 3600
    on_failure: str | None = None

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"


@dataclass(frozen=True)
class ScheduledFunction:
    """A function EventBridge Scheduler runs at a fixed rate: every `rate_context` minutes (a
    cdk.json setting, infra.config.GatewayConfig)."""

    name: str
    permissions: frozenset[str]
    rate_context: str
    memory_mb: int = 512
    timeout_seconds: int = 180
    # invoked asynchronously too (the watcher, for one planned batch): Lambda's defaults
    retry_attempts: int = 2
    on_failure: str | None = None

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"


@dataclass(frozen=True)
class QueueConsumer:
    """A function fed by an SQS queue (partial batch failures), with a dead-letter queue that
    takes a message after `max_receive_count` failed receives (an alarm watches its depth)."""

    name: str
    permissions: frozenset[str]
    queue_url_env: str
    dead_letter_url_env: str
    memory_mb: int = 256
    # a webhook attempt may take its whole 10 s: a full batch of attempts fits, with room
    timeout_seconds: int = 90
    batch_size: int = 5
    max_receive_count: int = 5

    @property
    def handler(self) -> str:
        return f"handlers.{self.name}.handler"

    @property
    def visibility_timeout_seconds(self) -> int:
        """Longer than a run (six times, as AWS advises), so no message is handed out twice at once."""
        return 6 * self.timeout_seconds


_LISTS = frozenset({TABLE_QUERY_BY_OWNER, TABLE_QUERY_BY_KIND})
# Writing a kept file: in one request, or in parts aborted on failure.
_KEPT_WRITES = frozenset({KEPT_WRITE, KEPT_ABORT_UPLOAD})
# Recording a batch change announces it: the change and its event in one transaction (put +
# update), then the bus, the owner's endpoints (by_owner) and their deliveries, then the
# event's outbox item deleted.
_ANNOUNCES = frozenset(
    {TABLE_PUT, TABLE_UPDATE, TABLE_DELETE, TABLE_QUERY_BY_OWNER, EVENTS_PUT, QUEUE_WEBHOOKS_SEND}
)
_PROVIDER = frozenset({SECRET_PROVIDER_KEYS})
_IDEMPOTENT = frozenset({TABLE_IDEMPOTENCY})
# A planned batch's pause or resume: its record read again after a lost conditional write
_PLAN_CONTROL = frozenset({TABLE_UPDATE})

ROUTES: tuple[Route, ...] = (
    Route("health", "GET", "/health", prefixed=False, authenticated=False, memory_mb=128),
    # The web console: static files (functions/gateway/console/), a client of this API only.
    Route(
        "console",
        "GET",
        "/console/{asset}",
        prefixed=False,
        also_at=("/console",),
        authenticated=False,
        memory_mb=128,
        api=False,
    ),
    # Files
    Route(
        "files_create",
        "POST",
        "/files",
        # put and update: the write-ahead record and its finish; kept: the file itself, and
        # a retry looks for the file its first attempt left (list, head)
        _PROVIDER | _IDEMPOTENT | _KEPT_WRITES | {TABLE_PUT, TABLE_UPDATE, KEPT_READ, KEPT_LIST},
        memory_mb=1024,
        creates=True,
    ),
    Route("files_list", "GET", "/files", _LISTS),
    # kept: the file's object (head), and adopting a pending create (list)
    Route("files_retrieve", "GET", "/files/{file_id}", _PROVIDER | {TABLE_UPDATE, KEPT_READ, KEPT_LIST}),
    Route(
        "files_delete",
        "DELETE",
        "/files/{file_id}",
        _PROVIDER | {TABLE_DELETE, BUCKET_DELETE, KEPT_DELETE, KEPT_READ, KEPT_LIST},
    ),
    Route(
        "files_content",
        "GET",
        "/files/{file_id}/content",
        _PROVIDER | {BUCKET_READ, BUCKET_LIST, BUCKET_WRITE, BUCKET_ABORT_UPLOAD, KEPT_READ},
        memory_mb=1024,
    ),
    # Batches
    Route(
        "batches_create",
        "POST",
        "/batches",
        # bedrock: the job created (and read back), its records written to the Bedrock input prefix
        # kept: the input file read, the batch's note written (ahead, then its own), and a
        # retry's adoption reads the notes
        _PROVIDER
        | _IDEMPOTENT
        | {
            BEDROCK_CREATE_JOB,
            BEDROCK_GET_JOB,
            BEDROCK_RECORDS_WRITE,
            TABLE_PUT,
            TABLE_UPDATE,
            KEPT_READ,
            KEPT_WRITE,
            KEPT_DELETE,
            KEPT_LIST,
            INVOKE_WATCHER,
        },
        creates=True,
    ),
    # the gateway's own: what a create with this body would do (errors by line, estimate, parts);
    # under OpenAI's prefixes, so that a client bound to a provider's base URL reaches it too
    Route("batches_check", "POST", "/batches/check", prefixes=OPENAI_PREFIXES),
    # kept: a batch's note, and once it has ended its results kept as files (written once)
    Route(
        "batches_list",
        "GET",
        "/batches",
        # bedrock: the jobs listed (one retrieved), a finished job's results read from the output prefix
        _PROVIDER
        | _LISTS
        | _ANNOUNCES
        | _KEPT_WRITES
        | {BEDROCK_LIST_JOBS, BEDROCK_GET_JOB, BEDROCK_RESULTS_READ, KEPT_READ, KEPT_LIST},
    ),
    Route(
        "batches_retrieve",
        "GET",
        "/batches/{batch_id}",
        # bedrock: the job, a finished job's results read from the output prefix
        _PROVIDER | _ANNOUNCES | _KEPT_WRITES | {BEDROCK_GET_JOB, BEDROCK_RESULTS_READ, KEPT_READ, KEPT_LIST},
    ),
    Route(
        "batches_cancel",
        "POST",
        "/batches/{batch_id}/cancel",
        # bedrock: the job read and stopped
        _PROVIDER | _ANNOUNCES | _KEPT_WRITES | {BEDROCK_GET_JOB, BEDROCK_STOP_JOB, KEPT_READ, KEPT_LIST},
    ),
    # the gateway's own, for a batch run as parts: no new part submitted until resumed
    Route("batches_pause", "POST", "/batches/{batch_id}/pause", _PLAN_CONTROL, prefixes=OPENAI_PREFIXES),
    Route("batches_resume", "POST", "/batches/{batch_id}/resume", _PLAN_CONTROL, prefixes=OPENAI_PREFIXES),
    # Uploads (large files in parts)
    Route("uploads_create", "POST", "/uploads", _IDEMPOTENT | {TABLE_PUT}, creates=True),
    Route(
        "uploads_add_part",
        "POST",
        "/uploads/{upload_id}/parts",
        # list + delete: an expired upload's parts are removed when it is next touched
        frozenset({TABLE_UPDATE, BUCKET_WRITE, BUCKET_LIST, BUCKET_DELETE}),
        memory_mb=1024,
    ),
    Route(
        "uploads_complete",
        "POST",
        "/uploads/{upload_id}/complete",
        _IDEMPOTENT | {TABLE_PUT, TABLE_UPDATE, BUCKET_LIST, INVOKE_TRANSFER},
    ),
    Route(
        "uploads_cancel",
        "POST",
        "/uploads/{upload_id}/cancel",
        frozenset({TABLE_UPDATE, BUCKET_LIST, BUCKET_DELETE}),
    ),
    # Virtual keys (master key only), shaped like LiteLLM's key management
    Route(
        "keys_generate",
        "POST",
        "/key/generate",
        _IDEMPOTENT | {TABLE_PUT, TABLE_UPDATE, TABLE_KEY_ITEMS, TABLE_QUERY_BY_KIND},
        prefixed=False,
    ),
    Route("keys_info", "GET", "/key/info", frozenset({TABLE_QUERY_BY_KIND}), prefixed=False),
    Route("keys_list", "GET", "/key/list", frozenset({TABLE_QUERY_BY_KIND}), prefixed=False),
    Route(
        "keys_update",
        "POST",
        "/key/update",
        frozenset({TABLE_PUT, TABLE_UPDATE, TABLE_KEY_ITEMS, TABLE_QUERY_BY_KIND}),
        prefixed=False,
    ),
    Route(
        "keys_delete",
        "POST",
        "/key/delete",
        frozenset({TABLE_DELETE, TABLE_KEY_ITEMS, TABLE_QUERY_BY_KIND}),
        prefixed=False,
    ),
    # Webhook endpoints (OpenAI's Webhook Endpoints API, per key), under every prefix
    *(
        Route(name, method, path, grants)
        for name, method, path, grants in (
            ("webhooks_create", "POST", "/webhook_endpoints", frozenset({TABLE_PUT})),
            ("webhooks_list", "GET", "/webhook_endpoints", _LISTS),
            ("webhooks_retrieve", "GET", "/webhook_endpoints/{webhook_endpoint_id}", frozenset()),
            (
                "webhooks_update",
                "POST",
                "/webhook_endpoints/{webhook_endpoint_id}",
                frozenset({TABLE_UPDATE}),
            ),
            (
                "webhooks_delete",
                "DELETE",
                "/webhook_endpoints/{webhook_endpoint_id}",
                frozenset({TABLE_DELETE}),
            ),
            (
                "webhooks_rotate_secret",
                "POST",
                "/webhook_endpoints/{webhook_endpoint_id}/rotate_secret",
                frozenset({TABLE_UPDATE}),
            ),
            (
                "webhooks_test",
                "POST",
                "/webhook_endpoints/{webhook_endpoint_id}/test",
                frozenset({TABLE_PUT}),
            ),
            (
                "webhooks_deliveries",
                "GET",
                "/webhook_endpoints/{webhook_endpoint_id}/deliveries",
                frozenset({TABLE_QUERY_BY_OWNER}),  # listed by endpoint, whoever asks
            ),
            (
                "webhooks_retry_delivery",
                "POST",
                "/webhook_endpoints/{webhook_endpoint_id}/deliveries/{delivery_id}/retry",
                frozenset({TABLE_PUT}),
            ),
            ("webhook_event_types", "GET", "/webhook_event_types", frozenset()),
        )
    ),
    # Money (master key only), shaped like LiteLLM's spend reports
    Route("spend_report", "GET", "/spend/report", frozenset({TABLE_QUERY_BY_KIND}), prefixed=False),
)

ASYNC_FUNCTIONS: tuple[AsyncFunction, ...] = (
    # (before file_transfer: a function's role names the functions it invokes)
    # Lambda's on-failure record of a file_transfer event: the file ends in `error`.
    AsyncFunction(
        "transfer_failed",
        # provider keys: it deletes a provider copy a dead transfer left behind
        frozenset(
            {
                TABLE_GET,
                TABLE_PUT,
                TABLE_UPDATE,
                SECRET_PROVIDER_KEYS,
                BUCKET_LIST,
                BUCKET_DELETE,
                KEPT_DELETE,
            }
        ),
        memory_mb=256,
        timeout_seconds=60,
    ),
    AsyncFunction(
        "file_transfer",
        frozenset(
            {
                TABLE_GET,
                TABLE_PUT,
                TABLE_UPDATE,
                SECRET_PROVIDER_KEYS,
                BUCKET_READ,
                BUCKET_LIST,
                BUCKET_DELETE,
                # kept: the file written, a duplicate run's copy deleted
                KEPT_WRITE,
                KEPT_ABORT_UPLOAD,
                KEPT_DELETE,
            }
        )
        | {INVOKE_TRANSFER_FAILED},
        memory_mb=1024,
        max_event_age_seconds=3600,
        on_failure="transfer_failed",
    ),
)

SCHEDULED_FUNCTIONS: tuple[ScheduledFunction, ...] = (
    # Every unfinished batch refreshed, stranded creates and stale transfers finished, events
    # left in the outbox published (service.watcher).
    ScheduledFunction(
        "batch_watcher",
        # kept: an Anthropic or Bedrock batch's note read, its results kept once it has ended;
        # the kept prefix listed and a stray note or unnamed kept file deleted (service.kept_sweep);
        # bedrock: the jobs listed (a missed one retrieved), a finished job's results read;
        # a planned batch's parts (service.plan.runner): each part's job created (its records
        # written, the role passed), a running one stopped when the batch is cancelled or out of time
        _PROVIDER
        | _ANNOUNCES
        | _KEPT_WRITES
        | {TABLE_GET, TABLE_BATCH_GET, TABLE_QUERY_BY_KIND, TABLE_QUERY_BY_WATCH, BUCKET_LIST, BUCKET_DELETE}
        | {KEPT_READ}
        | {KEPT_LIST, KEPT_DELETE, BEDROCK_LIST_JOBS, BEDROCK_GET_JOB, BEDROCK_RESULTS_READ}
        | {BEDROCK_CREATE_JOB, BEDROCK_RECORDS_WRITE, BEDROCK_STOP_JOB}
        # plan-files: each part's index written by the split, read by the merge, deleted after it
        | {PLAN_FILES_READ, PLAN_FILES_WRITE},
        rate_context="watch_interval_minutes",
        # Lambda's most: a pass translates and sends parts (Anthropic, Gemini, Vertex, Bedrock)
        # for up to sync_send.PASS_SEND_SECONDS, and splits a file up to a provider's cap
        timeout_seconds=900,
    ),
)

QUEUE_CONSUMERS: tuple[QueueConsumer, ...] = (
    # One webhook delivery attempt per message; a failed one is queued again after its gap
    # (webhooks.dispatch), an event out of time goes to the dead-letter queue.
    QueueConsumer(
        "webhook_deliver",
        frozenset({TABLE_GET, TABLE_PUT, SECRET_KEY_PEPPER, QUEUE_WEBHOOKS_SEND, QUEUE_WEBHOOKS_DLQ_SEND}),
        queue_url_env=ENV_WEBHOOK_QUEUE_URL,
        dead_letter_url_env=ENV_WEBHOOK_DLQ_URL,
    ),
)

ROUTES_BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}


def route(name: str) -> Route:
    return ROUTES_BY_NAME[name]
