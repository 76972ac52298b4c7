"""Create: whether a batch's input needs a plan, and the planned batch's record.

A file within one provider batch's caps (requests, bytes, the enqueued-token quota) takes the
create path every batch took before plans existed (no extra read or write). A larger one is
recorded at once, `validating`, with its plan (`state.plan`: the part limits from the caps, the
input file's provider id); the watcher, invoked for it at once (`start`), splits and runs it
(service.plan.runner)."""

from __future__ import annotations

from typing import Any

from gateway.models.retry import RetryOptions
from gateway.providers.caps import BatchCaps
from gateway.providers.registry import client_for
from gateway.service.batch_input_check import BATCH_CHECK_STATE
from gateway.storage.id_map import ObjectRecord
from gateway.storage.watch import PLAN


def caps_for(input_file: ObjectRecord) -> BatchCaps:
    figures = input_file.state.get(BATCH_CHECK_STATE) or {}
    return client_for(input_file.provider).batch_caps(str(figures.get("model") or ""))


def plan_for(input_file: ObjectRecord, retry: RetryOptions | None = None) -> dict[str, Any] | None:
    """The plan of a batch on `input_file`, or None when one provider batch takes it (and no
    retry of its lines is asked: a retry runs as a part of its own)."""
    figures = input_file.state.get(BATCH_CHECK_STATE) or {}
    caps = caps_for(input_file)
    lines = int(figures.get("lines") or 0)
    size = int(figures.get("bytes") or input_file.object.get("bytes") or 0)
    tokens = int(figures.get("input_token_estimate") or 0)
    over_tokens = caps.enqueued_tokens is not None and tokens > caps.enqueued_tokens
    retrying = retry is not None and retry.asks_for_retry
    if lines <= caps.max_requests and size <= caps.max_bytes and not over_tokens and not retrying:
        return None
    return {
        "retry": retry.model_dump(mode="json") if retrying and retry is not None else None,
        "input_upstream_id": input_file.upstream_id,
        "limits": {
            "max_requests": caps.max_requests,
            "max_bytes": caps.max_bytes,
            "max_tokens": caps.enqueued_tokens,
        },
        # a provider's least per batch (Bedrock's 100 records a job) and the input's figures:
        # the split sizes parts alike, none under it (service.plan.minimum)
        "min_requests": caps.min_requests,
        "input_lines": lines,
        "input_bytes": size,
        "max_concurrent": caps.max_concurrent,
        "enqueued_tokens": caps.enqueued_tokens,
        "enqueued_requests": caps.enqueued_requests,
        "parts": None,
    }


def start(batch_id: str) -> None:
    """The plan's first steps at once (split, first submissions): the watcher invoked for this
    batch asynchronously, so the create answers without waiting. Best effort: a lost invocation
    leaves the plan to the next scheduled pass, as before."""
    from gateway.observability import logger
    from gateway.runtime import async_invoke

    try:
        async_invoke.invoke_async("batch_watcher", {"batch_id": batch_id})
    except Exception:
        logger.warning(
            "could not start a plan at once; the watcher's next pass starts it", extra={"batch_id": batch_id}
        )


def planned(record: ObjectRecord, plan: dict[str, Any]) -> ObjectRecord:
    """`record` (a create's fresh record) as a planned batch: no provider create of its own."""
    from gateway.storage import pending

    record.state = {name: value for name, value in record.state.items() if name != pending.PENDING} | {
        PLAN: plan
    }
    return record
