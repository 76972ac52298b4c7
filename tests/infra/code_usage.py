"""What each function's code calls on AWS, recorded while the real handlers serve requests.

`record_usage` wraps every handler of a running local gateway (and the asynchronous ones) so
that each AWS API call made while a handler runs is booked to that function: botocore's
`BaseClient._make_api_call` (every client, whatever session made it), presigned URLs (signed
with the function's role, used later by the client) and the local stand-in for Lambda's
`Invoke`; calls from a function's thread pool count as the function's. Before each invocation
the function caches are dropped, as on a cold start, so secrets and key look-ups show up in
every function that needs them.

Each call is turned into the IAM action it needs and the resource it names (`Use`), with an
AWS API to IAM mapping written here, independently of infra/functions.py.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import botocore.signers
from botocore.exceptions import ClientError
from gateway.runtime import async_invoke, resources
from gateway.webhooks import queue as webhook_queue

from devserver.server import LocalGateway, reset_function_caches
from infra.stateful import SECRET_SPECS

_current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)

# Resource scopes a Use names.
TABLE = "table"  # an item of the table (partition key not `idempotency#…`)
IDEMPOTENCY = "table:idempotency"  # an `idempotency#…` item
INDEX = "index:"  # + index name
BUCKET = "bucket"  # the bucket itself (ListBucket)
OBJECTS = "objects:"  # + key prefix
BUS = "event-bus"  # the gateway's EventBridge bus
QUEUE = "queue:"  # + "deliveries" (the webhook queue) or "dead" (its dead-letter queue)

_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
_S3_LIST = {"ListObjects", "ListObjectsV2"}
_DYNAMODB_ITEM_OPERATIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


@dataclass(frozen=True)
class Use:
    """One IAM action on one resource scope, as a function's code needed it."""

    action: str
    scope: str


@dataclass
class Usage:
    uses: dict[str, set[Use]] = field(default_factory=dict)
    invocations: dict[str, int] = field(default_factory=dict)
    # Partition keys each function wrote (Put/Update/Delete/BatchWriteItem).
    written_keys: dict[str, set[str]] = field(default_factory=dict)
    unattributed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    invoke_failures: int = 0  # the next asynchronous invocations that fail, as Invoke can
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, function: str, *uses: Use) -> None:
        with self._lock:
            self.uses.setdefault(function, set()).update(uses)

    def invoked(self, function: str) -> None:
        with self._lock:
            self.invocations[function] = self.invocations.get(function, 0) + 1


def _partition_keys(operation: str, params: dict[str, Any]) -> list[str]:
    pk = resources.TABLE_PARTITION_KEY
    if operation in _DYNAMODB_ITEM_OPERATIONS:
        item = params.get("Key") or params.get("Item") or {}
        return [item[pk]["S"]] if pk in item else []
    if operation == "BatchGetItem":
        return [key[pk]["S"] for request in params["RequestItems"].values() for key in request["Keys"]]
    if operation == "BatchWriteItem":
        keys = []
        for requests in params["RequestItems"].values():
            for request in requests:
                body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get(
                    "Key"
                )
                keys.append(body[pk]["S"])
        return keys
    return []


# A transaction is authorized as its items' own actions (IAM has no TransactWriteItems action).
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb_uses(operation: str, params: dict[str, Any], usage: Usage, function: str) -> set[Use]:
    if operation == "TransactWriteItems":
        uses: set[Use] = set()
        for entry in params["TransactItems"]:
            ((kind, item),) = entry.items()
            uses |= _dynamodb_uses(_TRANSACT_ACTIONS[kind], item, usage, function)
        return uses
    if operation == "Query":
        index = params.get("IndexName")
        return {Use("dynamodb:Query", INDEX + index if index else TABLE)}
    keys = _partition_keys(operation, params)
    if operation in _DYNAMODB_WRITES:
        with usage._lock:
            usage.written_keys.setdefault(function, set()).update(keys)
    if operation in _DYNAMODB_ITEM_OPERATIONS or operation in ("BatchWriteItem", "BatchGetItem"):
        idempotency = bool(keys) and all(key.startswith("idempotency#") for key in keys)
        return {Use(f"dynamodb:{operation}", IDEMPOTENCY if idempotency else TABLE)}
    usage.unknown.append(f"{function}: dynamodb {operation}")
    return set()


# Bedrock's resource scopes: the model invocation jobs, a model (by id), the service role passed.
BEDROCK_JOBS = "bedrock:jobs"
BEDROCK_MODEL = "bedrock-model:"  # + model id (an inference profile's and its foundation model's)
BEDROCK_ROLE = "role:bedrock-batch"
ANY = "*"
_PROFILE_PREFIX = re.compile(r"^[a-z]{2,4}\.(?=[a-z0-9-]+\.)")


def bedrock_uses(operation: str, params: dict[str, Any]) -> set[Use] | None:
    """IAM's view of a Bedrock model invocation job call (the Service Authorization Reference):
    a create names the job and the model, needs TagResource for its tags and PassRole for its role."""
    if operation == "CreateModelInvocationJob":
        model_id = params["modelId"]
        models = {model_id, _PROFILE_PREFIX.sub("", model_id)}
        uses = {Use("bedrock:CreateModelInvocationJob", BEDROCK_JOBS)}
        uses |= {Use("bedrock:CreateModelInvocationJob", BEDROCK_MODEL + m) for m in models}
        uses.add(Use("iam:PassRole", BEDROCK_ROLE))
        if params.get("tags"):
            uses.add(Use("bedrock:TagResource", BEDROCK_JOBS))
        return uses
    if operation in ("GetModelInvocationJob", "StopModelInvocationJob"):
        return {Use(f"bedrock:{operation}", BEDROCK_JOBS)}
    if operation == "ListModelInvocationJobs":
        return {Use("bedrock:ListModelInvocationJobs", ANY)}
    return None


def _object_scope(key: str) -> str:
    for prefix in (
        resources.UPLOAD_PARTS_PREFIX,
        resources.CACHED_CONTENT_PREFIX,
        resources.KEPT_FILES_PREFIX,
        resources.PLAN_FILES_PREFIX,
        resources.BEDROCK_INPUT_PREFIX,
        resources.BEDROCK_OUTPUT_PREFIX,
    ):
        if key.startswith(prefix):
            return OBJECTS + prefix
    return OBJECTS + key


def _s3_uses(operation: str, params: dict[str, Any], missing: bool) -> set[Use] | None:
    if operation in _S3_LIST:
        return {Use("s3:ListBucket", BUCKET)}
    action = _S3_ACTIONS.get(operation)
    if action is None:
        return None
    if operation == "DeleteObjects":
        keys = [entry["Key"] for entry in params["Delete"]["Objects"]]
    else:
        keys = [params["Key"]]
    uses = {Use(action, _object_scope(key)) for key in keys}
    if missing and operation in ("HeadObject", "GetObject"):
        # Without ListBucket S3 answers 403, not 404, for a missing object: a miss the code
        # relies on telling apart needs it.
        uses.add(Use("s3:ListBucket", BUCKET))
    return uses


def _secret_scope(secret_id: str) -> str:
    """`secret:<capability>` for the secret the function environment names by `secret_id`."""
    for spec in SECRET_SPECS:
        if os.environ.get(spec.env_var) == secret_id:
            return spec.capability
    return f"unknown secret {secret_id}"


def uses_of(
    service: str, operation: str, params: dict[str, Any], *, missing: bool, usage: Usage, function: str
) -> set[Use]:
    """The IAM actions one AWS API call needs; an unknown call is noted in `usage.unknown`."""
    if service == "dynamodb":
        return _dynamodb_uses(operation, params, usage, function)
    if service == "s3":
        uses = _s3_uses(operation, params, missing)
        if uses is not None:
            return uses
    if service == "secretsmanager" and operation == "GetSecretValue":
        return {Use("secretsmanager:GetSecretValue", _secret_scope(params["SecretId"]))}
    if service == "bedrock":
        bedrock = bedrock_uses(operation, params)
        if bedrock is not None:
            return bedrock
    if service == "lambda" and operation == "Invoke":
        return {Use("lambda:InvokeFunction", f"function:{params['FunctionName']}")}
    if service == "events" and operation == "PutEvents":
        return {Use("events:PutEvents", BUS)}
    usage.unknown.append(f"{function}: {service} {operation}")
    return set()


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


@contextmanager
def record_usage(gateway: LocalGateway) -> Iterator[Usage]:
    """Book every AWS call the gateway's functions make to the function making it."""
    usage = Usage()
    original_call = botocore.client.BaseClient._make_api_call
    original_presign = botocore.signers.RequestSigner.generate_presigned_url

    def recording_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = _current_function.get()
        service = client.meta.service_model.service_name
        if function is None:
            return original_call(client, operation, params)
        missing = False
        try:
            return original_call(client, operation, params)
        except ClientError as exc:
            missing = _is_missing(exc)
            raise
        finally:
            usage.add(
                function,
                *uses_of(service, operation, params, missing=missing, usage=usage, function=function),
            )

    def recording_presign(
        signer: Any, request_dict: Any, operation_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        function = _current_function.get()
        if function is not None:
            action = _S3_ACTIONS.get(operation_name)
            if action is None:
                usage.unknown.append(f"{function}: presigned s3 {operation_name}")
            else:
                usage.add(function, Use(action, _presigned_scope(request_dict)))
        return original_presign(signer, request_dict, operation_name, *args, **kwargs)

    def wrap(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def recording_handler(event: Any, context: Any) -> Any:
            reset_function_caches()  # a cold start: every secret and key is read again
            usage.invoked(name)
            token = _current_function.set(name)
            try:
                return handler(event, context)
            finally:
                _current_function.reset(token)

        return recording_handler

    api = gateway.api
    saved_handlers = dict(api._handlers)
    for route in api.routes:
        handler = api.handler_for(route.name)
        if handler is not None:
            api._handlers[route.name] = wrap(route.name, handler)
    runner = gateway.async_runner
    saved_resolver = runner._resolver

    def recording_resolver(name: str) -> Any:
        handler = saved_resolver(name)
        return None if handler is None else wrap(name, handler)

    def recording_runner(name: str, payload: dict[str, Any]) -> None:
        # The local stand-in for Lambda's Invoke (InvocationType=Event) of `name`.
        function = _current_function.get()
        if function is not None:
            usage.add(function, Use("lambda:InvokeFunction", f"function:{name}"))
        if usage.invoke_failures:
            usage.invoke_failures -= 1
            raise RuntimeError(f"injected: Invoke of {name} failed")
        runner(name, payload)

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit_in_context(executor: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        # A function's worker threads (batches.list refreshes in a pool) are still that function.
        return original_submit(executor, contextvars.copy_context().run, fn, *args, **kwargs)

    # The webhook queue (in-process under make serve, SQS in AWS): its sends are SendMessage
    # calls of the function sending; its consumer and the watcher are functions like the others.
    saved_sender = webhook_queue._local_sender
    assert saved_sender is not None

    def recording_sender(queue: str, body: str, delay_seconds: float) -> None:
        function = _current_function.get()
        if function is not None:
            usage.add(function, Use("sqs:SendMessage", QUEUE + queue))
        saved_sender(queue, body, delay_seconds)

    deliveries = gateway.webhook_queue
    watcher = gateway.watcher
    assert deliveries is not None and watcher is not None
    saved_consumer, saved_watcher = deliveries._consumer, watcher.handler
    deliveries._consumer = wrap("webhook_deliver", saved_consumer)
    watcher.handler = wrap("batch_watcher", saved_watcher)
    webhook_queue.use_local_queue(recording_sender)

    runner._resolver = recording_resolver
    concurrent.futures.ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign]
    botocore.client.BaseClient._make_api_call = recording_call  # type: ignore[method-assign]
    botocore.signers.RequestSigner.generate_presigned_url = recording_presign  # type: ignore[method-assign]
    async_invoke.use_local_runner(recording_runner)
    try:
        yield usage
    finally:
        gateway.wait_for_async(30)
        webhook_queue.use_local_queue(saved_sender)
        deliveries._consumer, watcher.handler = saved_consumer, saved_watcher
        async_invoke.use_local_runner(runner)
        concurrent.futures.ThreadPoolExecutor.submit = original_submit  # type: ignore[method-assign]
        botocore.signers.RequestSigner.generate_presigned_url = original_presign  # type: ignore[method-assign]
        botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
        runner._resolver = saved_resolver
        api._handlers.clear()
        api._handlers.update(saved_handlers)


def _presigned_scope(request_dict: dict[str, Any]) -> str:
    """The key prefix a presigned S3 request names (path or virtual host style alike)."""
    path = str(request_dict.get("url_path") or request_dict.get("url") or "")
    for prefix in (
        resources.UPLOAD_PARTS_PREFIX,
        resources.CACHED_CONTENT_PREFIX,
        resources.KEPT_FILES_PREFIX,
        resources.PLAN_FILES_PREFIX,
    ):
        if f"/{prefix}" in path:
            return OBJECTS + prefix
    return OBJECTS + path
