"""Names shared by the Lambda code, the CDK stack and the local server.

Plain data: the stack creates resources with this shape, the local server bootstraps
moto with it, and the functions find them through the environment variables named here.
"""

from __future__ import annotations

# Environment variables every function reads.
ENV_TABLE_NAME = "GATEWAY_TABLE_NAME"
ENV_BUCKET_NAME = "GATEWAY_BUCKET_NAME"
ENV_MASTER_KEY_SECRET = "GATEWAY_MASTER_KEY_SECRET_ID"
ENV_PROVIDER_KEYS_SECRET = "GATEWAY_PROVIDER_KEYS_SECRET_ID"
ENV_KEY_PEPPER_SECRET = "GATEWAY_KEY_PEPPER_SECRET_ID"
ENV_PROVIDERS = "GATEWAY_PROVIDERS"  # JSON: non-secret provider deployment settings
ENV_DEFAULT_PROVIDER = "GATEWAY_DEFAULT_PROVIDER"
ENV_TRANSFER_FUNCTION = "GATEWAY_TRANSFER_FUNCTION_NAME"
ENV_WATCHER_FUNCTION = "GATEWAY_WATCHER_FUNCTION_NAME"  # batches_create starts a plan's first step
ENV_SECRETS_TTL = "GATEWAY_SECRETS_TTL_SECONDS"
ENV_UPSTREAM_TIMEOUT = "GATEWAY_UPSTREAM_TIMEOUT_SECONDS"
# The file transfer: one POST /files up to this size, else the provider's Uploads API in parts.
ENV_TRANSFER_SINGLE_REQUEST_MAX_BYTES = "GATEWAY_TRANSFER_SINGLE_REQUEST_MAX_BYTES"
ENV_TRANSFER_PART_BYTES = "GATEWAY_TRANSFER_PART_BYTES"
ENV_TRANSFER_TIMEOUT = "GATEWAY_TRANSFER_TIMEOUT_SECONDS"
ENV_DEFAULT_OUTPUT_TOKENS = "GATEWAY_DEFAULT_OUTPUT_TOKENS_PER_REQUEST"
# The most input bytes a batches.create translates and sends itself (service.plan.sync_send).
ENV_SYNC_CREATE_MAX_BYTES = "GATEWAY_SYNC_CREATE_MAX_BYTES"
ENV_MODEL_PRICES = "MODEL_PRICES"  # JSON: the operator's model prices (gateway.pricing)
ENV_WEBHOOKS_ALLOW_LOOPBACK = "GATEWAY_WEBHOOKS_ALLOW_LOOPBACK"
# Test-only, with the above: one more address allowed like loopback (LocalStack's Docker bridge).
ENV_WEBHOOKS_TEST_HOST = "GATEWAY_WEBHOOKS_TEST_HOST"
ENV_WEBHOOK_RETRY_SCHEDULE = "GATEWAY_WEBHOOK_RETRY_SCHEDULE"  # seconds, comma-separated
ENV_WEBHOOK_QUEUE_URL = "GATEWAY_WEBHOOK_QUEUE_URL"
ENV_WEBHOOK_DLQ_URL = "GATEWAY_WEBHOOK_DLQ_URL"
ENV_EVENT_BUS_NAME = "GATEWAY_EVENT_BUS_NAME"  # the EventBridge bus batch events go to

# Default names, used by the local server (the stack lets CloudFormation name things).
DEFAULT_TABLE_NAME = "openai-gateway-ids"
DEFAULT_BUCKET_NAME = "openai-gateway-files"
DEFAULT_MASTER_KEY_SECRET = "openai-gateway/master-key"
DEFAULT_PROVIDER_KEYS_SECRET = "openai-gateway/provider-keys"
DEFAULT_KEY_PEPPER_SECRET = "openai-gateway/key-pepper"
DEFAULT_TRANSFER_FUNCTION = "file_transfer"
DEFAULT_EVENT_BUS_NAME = "openai-gateway-events"
# The `source` of every event the gateway puts on its bus (an EventBridge rule matches it).
EVENT_SOURCE = "openai-gateway"

# DynamoDB: one table, string keys only.
TABLE_PARTITION_KEY = "pk"
TABLE_TTL_ATTRIBUTE = "ttl"
# Global secondary indexes: name -> (partition key, sort key). Both project ALL.
#   by_owner: "<owner>#<kind>" -> "<created_at:012d>#<id>"  (a caller's own objects)
#   by_kind:  "<kind>"         -> "<created_at:012d>#<id>"  (everything, for the master key)
#   by_watch: "<kind>#w<n>"   -> "<created_at:012d>#<id>"  (sparse: what the watcher must look at)
INDEX_BY_OWNER = "by_owner"
INDEX_BY_KIND = "by_kind"
INDEX_BY_WATCH = "by_watch"
WATCH_ATTRIBUTE = "watch_shard"  # present only while an object needs watching (storage.watch)
TABLE_INDEXES: dict[str, tuple[str, str]] = {
    INDEX_BY_OWNER: ("owner_kind", "created_key"),
    INDEX_BY_KIND: ("kind", "created_key"),
    INDEX_BY_WATCH: (WATCH_ATTRIBUTE, "created_key"),
}

# S3 key prefixes, each with its own lifecycle rule in the stack.
UPLOAD_PARTS_PREFIX = "upload-parts/"
CACHED_CONTENT_PREFIX = "file-content/"
# Files of providers without a file store (Anthropic, Bedrock): `<prefix><deployment>/<id>`, and
# the gateway's notes on their batches (`<prefix><deployment>/batch-notes/` and `batch-pending/`,
# storage.kept_objects).
KEPT_FILES_PREFIX = "kept-files/"
# A batch plan's files (`<prefix><batch id>/`): its parts and their indexes (storage.plan_files).
PLAN_FILES_PREFIX = "batch-plans/"
UPLOAD_PARTS_EXPIRE_DAYS = 2
# The plan's finish deletes its files; this rule is the backstop for a plan that never ends as
# it should. Past the 24 h window and the longest a part may still run after it (a Bedrock job
# stopped at the window's end: at most its 168 h timeout).
PLAN_FILES_EXPIRE_DAYS = 14
CACHED_CONTENT_EXPIRE_DAYS = 7

# Amazon Bedrock batch inference: the records a job reads (`<prefix><deployment>/<job name>/`)
# and where the job writes its results; the stack's Bedrock service role reads the one and
# writes the other. The function environment names that role.
BEDROCK_INPUT_PREFIX = "bedrock-input/"
BEDROCK_OUTPUT_PREFIX = "bedrock-output/"
ENV_BEDROCK_ROLE_ARN = "GATEWAY_BEDROCK_ROLE_ARN"
# A job runs at most 168 hours (its timeout), and its results are kept as files once it is over.
BEDROCK_OBJECTS_EXPIRE_DAYS = 14
