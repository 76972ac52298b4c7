"""Every AWS request the gateway's functions make, booked to the function making it, with what
AWS bills it by: a Lambda invocation's duration, DynamoDB's consumed units, S3's request classes
and bytes, Secrets Manager calls, SQS messages, EventBridge entries, EMF bytes.

It wraps each function handler of a running local gateway (routes, the asynchronous ones, the
webhook consumer, the watcher) and botocore's `BaseClient._make_api_call` (every client, whatever
session made it). DynamoDB calls ask for `ReturnConsumedCapacity=TOTAL`; moto answers it with
rough figures (a put of any size is 1 unit, an update 0.5, an empty Query 1, a transaction
nothing), so a write's units are the larger of moto's and DynamoDB's rule for the items in the
request (1 unit per KB, twice in a transaction), and a read's follow DynamoDB's rule for the
items it returned (0.5 unit per 4 KB eventually consistent, 1 strongly consistent, 2 in a
transaction). Item sizes are their JSON size: near DynamoDB's (names plus values).
"""

from __future__ import annotations

import contextvars
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import botocore.signers
from gateway.observability import metrics
from gateway.routes import ASYNC_FUNCTIONS, QUEUE_CONSUMERS, ROUTES, SCHEDULED_FUNCTIONS
from gateway.webhooks import queue as webhook_queue

from devserver.server import LocalGateway, reset_function_caches

MEMORY_MB: dict[str, int] = {
    **{f.name: f.memory_mb for f in ROUTES},
    **{f.name: f.memory_mb for f in ASYNC_FUNCTIONS},
    **{f.name: f.memory_mb for f in SCHEDULED_FUNCTIONS},
    **{f.name: f.memory_mb for f in QUEUE_CONSUMERS},
}
ROUTED = {route.name for route in ROUTES}

_CAPACITY_OPERATIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "ListMultipartUploads",
}
_S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


@dataclass
class FunctionUse:
    invocations: int = 0
    milliseconds: list[float] = field(default_factory=list)
    read_units: float = 0.0
    write_units: float = 0.0
    s3_put_class: int = 0
    s3_get_class: int = 0
    s3_bytes_in: int = 0
    s3_bytes_out: int = 0
    secrets_calls: int = 0
    sqs_requests: int = 0
    events_entries: int = 0
    bedrock_calls: int = 0
    response_bytes: int = 0
    emf_bytes: int = 0
    other_calls: dict[str, int] = field(default_factory=dict)


@dataclass
class Meter:
    functions: dict[str, FunctionUse] = field(default_factory=dict)
    unattributed: int = 0  # calls outside any function (the local server's own)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def use(self, name: str) -> FunctionUse:
        with self._lock:
            return self.functions.setdefault(name, FunctionUse())

    def reset(self) -> None:
        with self._lock:
            self.functions.clear()
            self.unattributed = 0


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def _write_units(operation: str, params: dict[str, Any]) -> float:
    """DynamoDB's rule for the items the request writes: 1 unit per KB (rounded up), twice in
    a transaction; a delete or update at least 1."""
    if operation == "TransactWriteItems":
        total = 0.0
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            if kind != "ConditionCheck":
                total += 2 * max(1, math.ceil(_size(body.get("Item") or body) / 1024))
        return total
    if operation == "BatchWriteItem":
        return sum(
            max(1, math.ceil(_size(request.get("PutRequest", {}).get("Item") or {}) / 1024))
            for requests in params.get("RequestItems", {}).values()
            for request in requests
        )
    return max(1, math.ceil(_size(params.get("Item") or {}) / 1024))


def _read_units(operation: str, params: dict[str, Any], response: dict[str, Any]) -> float:
    """DynamoDB's rule for what a read returned: per 4 KB (rounded up, a Query's items summed),
    half a unit eventually consistent, one strongly consistent, two in a transaction; at least
    one such 4 KB per request (an empty Query costs it too)."""
    per_4kb = 1.0 if params.get("ConsistentRead") else 0.5
    items: list[Any]
    if operation == "TransactGetItems":
        items = [entry.get("Item") or {} for entry in response.get("Responses") or []]
        return sum(2 * max(1, math.ceil(_size(item) / 4096)) for item in items) or 2.0
    if operation == "BatchGetItem":
        items = [item for found in (response.get("Responses") or {}).values() for item in found]
        return sum(per_4kb * max(1, math.ceil(_size(item) / 4096)) for item in items) or per_4kb
    items = response.get("Items") or [] if "Items" in response else [response.get("Item") or {}]
    return per_4kb * max(1, math.ceil(sum(_size(item) for item in items) / 4096))


def _reported_units(response: dict[str, Any]) -> float:
    consumed = response.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    return sum(float(entry.get("CapacityUnits") or 0) for entry in entries)


def _book(use: FunctionUse, service: str, operation: str, params: dict[str, Any], response: Any) -> None:
    response = response if isinstance(response, dict) else {}
    if service == "dynamodb":
        reported = _reported_units(response)
        if operation in _WRITES:
            use.write_units += max(reported, _write_units(operation, params))
        else:
            use.read_units += _read_units(operation, params, response)
    elif service == "s3":
        if operation in _S3_PUT_CLASS:
            use.s3_put_class += 1
        elif operation not in _S3_FREE:
            use.s3_get_class += 1
        body = params.get("Body")
        if isinstance(body, bytes | bytearray):
            use.s3_bytes_in += len(body)
        elif hasattr(body, "tell") and hasattr(body, "seek"):
            use.s3_bytes_in += int(params.get("ContentLength") or 0)
        if operation == "GetObject":
            use.s3_bytes_out += int(response.get("ContentLength") or 0)
    elif service == "secretsmanager":
        use.secrets_calls += 1
    elif service == "sqs":
        use.sqs_requests += 1
    elif service == "events":
        use.events_entries += len(params.get("Entries") or [])
    elif service == "bedrock":
        use.bedrock_calls += 1
    else:
        key = f"{service}:{operation}"
        use.other_calls[key] = use.other_calls.get(key, 0) + 1


@contextmanager
def metering(gateway: LocalGateway) -> Iterator[Meter]:
    """Book every AWS call the gateway's functions make while the block runs. The first
    invocation of each function starts cold (its caches dropped: secrets read again), the next
    ones warm, as one execution environment per function would."""
    meter = Meter()
    started: set[str] = set()
    original_call = botocore.client.BaseClient._make_api_call
    original_presign = botocore.signers.RequestSigner.generate_presigned_url

    def metered_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = _current.get()
        service = client.meta.service_model.service_name
        if function is None:
            meter.unattributed += 1
            return original_call(client, operation, params)
        if service == "dynamodb" and operation in _CAPACITY_OPERATIONS:
            params = {**params, "ReturnConsumedCapacity": "TOTAL"}
        response = None
        try:
            response = original_call(client, operation, params)
            return response
        finally:
            _book(meter.use(function), service, operation, params, response)

    def metered_presign(
        signer: Any, request_dict: Any, operation_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        function = _current.get()
        if function is not None and operation_name == "GetObject":
            meter.use(function).s3_get_class += 1  # the client follows the redirect: one GET
        return original_presign(signer, request_dict, operation_name, *args, **kwargs)

    def emf_sink(line: str) -> None:
        function = _current.get()
        if function is not None:
            meter.use(function).emf_bytes += len(line) + 1

    def wrap(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def metered_handler(event: Any, context: Any) -> Any:
            if name not in started:
                started.add(name)
                reset_function_caches()
            token = _current.set(name)
            began = time.perf_counter()
            try:
                result = handler(event, context)
            finally:
                use = meter.use(name)
                use.invocations += 1
                use.milliseconds.append((time.perf_counter() - began) * 1000)
                _current.reset(token)
            if name in ROUTED and isinstance(result, dict):
                use.response_bytes += len(str(result.get("body") or ""))
            return result

        return metered_handler

    saved_sender = webhook_queue._local_sender
    assert saved_sender is not None

    def metered_sender(queue: str, body: str, delay_seconds: float) -> None:
        function = _current.get()
        if function is not None:
            meter.use(function).sqs_requests += 1  # SendMessage
        saved_sender(queue, body, delay_seconds)

    api = gateway.api
    saved_handlers = dict(api._handlers)
    for route in api.routes:
        handler = api.handler_for(route.name)
        if handler is not None:
            api._handlers[route.name] = wrap(route.name, handler)
    runner = gateway.async_runner
    saved_resolver = runner._resolver

    def metered_resolver(name: str) -> Any:
        handler = saved_resolver(name)
        return None if handler is None else wrap(name, handler)

    deliveries, watcher = gateway.webhook_queue, gateway.watcher
    assert deliveries is not None and watcher is not None
    saved_consumer, saved_watcher = deliveries._consumer, watcher.handler
    deliveries._consumer = wrap("webhook_deliver", saved_consumer)
    watcher.handler = wrap("batch_watcher", saved_watcher)
    webhook_queue.use_local_queue(metered_sender)
    runner._resolver = metered_resolver
    botocore.client.BaseClient._make_api_call = metered_call  # type: ignore[method-assign]
    botocore.signers.RequestSigner.generate_presigned_url = metered_presign  # type: ignore[method-assign]
    metrics.set_sink(emf_sink)
    try:
        yield meter
    finally:
        gateway.wait_for_async(30)
        metrics.set_sink(None)
        botocore.signers.RequestSigner.generate_presigned_url = original_presign  # type: ignore[method-assign]
        botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
        webhook_queue.use_local_queue(saved_sender)
        deliveries._consumer, watcher.handler = saved_consumer, saved_watcher
        runner._resolver = saved_resolver
        api._handlers.clear()
        api._handlers.update(saved_handlers)
