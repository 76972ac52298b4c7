"""X-Ray traces through Powertools' Tracer: botocore patched (every DynamoDB, S3, Secrets Manager,
SQS, EventBridge and Bedrock call a subsegment), a subsegment per provider call, and annotations
to find one batch's calls: the gateway id, the x-request-id, the provider and the status.

Off unless the function runs in Lambda with tracing on (Powertools' own rule: off outside Lambda
and with POWERTOOLS_TRACE_DISABLED=true, as the tests and the local server set it). Off, nothing
here imports the X-Ray SDK, so a function that needs no boto3 (health) does not load it.
An annotation takes only values from this module's callers that are ids, names from the
configuration or numbers: never a key, a secret or a request's content.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Tracer

from gateway.observability.metric_names import SERVICE

# The gateway's own ids (gateway.formats.ids): a prefix and 24 letters or digits. Only such a value is
# annotated as a gateway id, whatever else a client puts in a path.
_GATEWAY_ID = re.compile(r"\A(?:file-|batch_|upload_|we_|whdl_|key_)[A-Za-z0-9]{24}\Z")
# An x-request-id is API Gateway's request id (a UUID) or Lambda's.
_REQUEST_ID = re.compile(r"\A[A-Za-z0-9-]{1,64}\Z")


class _About(threading.local):
    gateway_id: str | None = None


_about = _About()


@lru_cache(maxsize=1)
def tracer() -> Tracer | None:
    """The Tracer, built on first use when tracing is on, else None."""
    if Tracer._is_tracer_disabled():
        return None
    return Tracer(service=SERVICE, patch_modules=("botocore",))


def enabled() -> bool:
    return tracer() is not None


def is_gateway_id(value: object) -> bool:
    return isinstance(value, str) and _GATEWAY_ID.match(value) is not None


def annotate(key: str, value: str) -> None:
    """An annotation on the current (sub)segment; nothing when tracing is off."""
    active = tracer()
    if active is not None:
        active.put_annotation(key=key, value=value)


def annotate_request(request_id: str, gateway_id: str | None) -> None:
    if _REQUEST_ID.match(request_id):
        annotate("x_request_id", request_id)
    about(gateway_id)


def about(gateway_id: str | None) -> None:
    """The gateway object this thread now works on: annotated here and on each provider call."""
    _about.gateway_id = gateway_id if is_gateway_id(gateway_id) else None
    if _about.gateway_id is not None:
        annotate("gateway_id", _about.gateway_id)


@contextmanager
def subsegment(name: str) -> Iterator[Any]:
    """A subsegment, with the gateway id being worked on; None inside when tracing is off."""
    active = tracer()
    if active is None:
        yield None
        return
    with active.provider.in_subsegment(name=name) as segment:
        if _about.gateway_id is not None:
            segment.put_annotation("gateway_id", _about.gateway_id)
        yield segment
