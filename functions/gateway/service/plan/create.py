"""Create: whether a batch's input needs a plan, and the planned batch's record.

A file within one provider batch's caps (requests, bytes, the enqueued-token quota) takes the
create path every batch took before plans existed (no extra read or write). A larger one is
recorded at once, `validating`, with its plan (`state.plan`: the part limits from the caps, the
input file's provider id); the watcher, invoked for it at once (`start`), splits and runs it
(service.plan.runner). So is a file within the caps whose create would translate and send more
than it can before API Gateway's timeout (`sync_send`): a plan of one part, sent by the watcher."""

from __future__ import annotations

from typing import Any

from gateway.models.retry import RetryOptions
from gateway.providers.caps import BatchCaps
from gateway.providers.registry import client_for
from gateway.service.batch_input_check import BATCH_CHECK_STATE
from gateway.service.plan import sync_send
from gateway.storage.id_map import ObjectRecord
from gateway.storage.watch import PLAN


def caps_for(input_file: ObjectRecord) -> BatchCaps:
    figures = input_file.state.get(BATCH_CHECK_STATE) or {}
    return client_for(input_file.provider).batch_caps(str(figures.get("model") or ""))


def _too_large_to_send(input_file: ObjectRecord, caps: BatchCaps, lines: int, size: int) -> bool:
    """Whether the create would translate and send more than it can in time. A file under the
    provider's least per batch is not: its create refuses it at once, as it always did."""
    if caps.min_requests is not None and lines < caps.min_requests:
        return False
    provider_type = sync_send.deployment_type(input_file.provider)
    return provider_type is not None and sync_send.too_large_to_send(provider_type, size)


def _part_bytes(input_file: ObjectRecord, caps: BatchCaps) -> int:
    """A part's bytes: the provider's cap, or less where the watcher translates and sends parts
    itself and could not send one that large in a pass."""
    watcher_limit = sync_send.part_max_bytes(sync_send.deployment_type(input_file.provider))
    return caps.max_bytes if watcher_limit is None else min(caps.max_bytes, watcher_limit)


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
    within_caps = lines <= caps.max_requests and size <= caps.max_bytes and not over_tokens
    if within_caps and not retrying and not _too_large_to_send(input_file, caps, lines, size):
        return None
    return {
        "retry": retry.model_dump(mode="json") if retrying and retry is not None else None,
        "input_upstream_id": input_file.upstream_id,
        "limits": {
            "max_requests": caps.max_requests,
            "max_bytes": _part_bytes(input_file, caps),
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
