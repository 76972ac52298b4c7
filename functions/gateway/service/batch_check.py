"""POST /v1/batches/check (a gateway extension): what a create with the same body would do,
without creating anything. The same ownership, provider and file rules as a create; the
errors a create would fail the batch with (from what the upload's check kept), the most it can
cost, and how many provider batches the file needs against the provider's limits."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from gateway.http.auth import Caller
from gateway.models.batch_check import BatchCheck, BatchEstimate, ProviderLimits
from gateway.models.batches import BatchErrors, CreateBatchRequest
from gateway.providers.caps import BatchCaps, caps_for, default_caps
from gateway.runtime.settings import get_settings
from gateway.service import budget
from gateway.service.batch_input_check import BATCH_CHECK_STATE, batch_problems, require_endpoint
from gateway.service.batches import usable_input_file
from gateway.storage.id_map import IdMap


def provider_caps(provider: str, model: str = "") -> BatchCaps:
    """One provider batch's caps at `provider`'s deployment for `model` (`providers.caps`: the
    type's documented figures and the deployment's overrides), as a create's plan reads them."""
    deployment = get_settings().providers.get(provider)
    return caps_for(deployment, model) if deployment is not None else default_caps("openai", model)


def provider_limits(provider: str, model: str = "") -> ProviderLimits:
    return _limits(provider_caps(provider, model))


def _limits(caps: BatchCaps) -> ProviderLimits:
    return ProviderLimits(
        max_requests=caps.max_requests, max_bytes=caps.max_bytes, min_requests=caps.min_requests
    )


def _as_planned(provider: str, caps: BatchCaps) -> BatchCaps:
    """The caps a plan splits by: a part the watcher translates and sends itself holds at most
    what it sends in a pass (`plan.sync_send.part_max_bytes`)."""
    from gateway.service.plan import sync_send

    part_bytes = sync_send.part_max_bytes(sync_send.deployment_type(provider))
    return caps if part_bytes is None else replace(caps, max_bytes=min(caps.max_bytes, part_bytes))


def parts_needed(caps: BatchCaps, requests: int, size: int, tokens: int) -> int:
    """Provider batches a file needs at least: by requests, bytes and the enqueued-token quota."""
    by_tokens = math.ceil(tokens / caps.enqueued_tokens) if caps.enqueued_tokens else 1
    return max(1, math.ceil(requests / caps.max_requests), math.ceil(size / caps.max_bytes), by_tokens)


def check_batch(
    caller: Caller, provider: str | None, request: CreateBatchRequest, id_map: IdMap | None = None
) -> BatchCheck:
    input_file = usable_input_file(caller, provider, request, id_map or IdMap())
    require_endpoint(input_file.provider, request.endpoint)
    figures: dict[str, Any] = input_file.state.get(BATCH_CHECK_STATE) or {}
    problems = batch_problems(figures, request.endpoint)
    model, cost = budget.estimate_batch_cost(input_file)
    usage = budget.estimated_usage(input_file)
    caps = provider_caps(input_file.provider, str(figures.get("model") or ""))
    limits = _limits(caps)
    requests = int(figures.get("lines") or 0)
    size = int(figures.get("bytes") or input_file.object.get("bytes") or 0)
    parts = parts_needed(
        _as_planned(input_file.provider, caps), requests, size, int(figures.get("input_token_estimate") or 0)
    )
    return BatchCheck(
        input_file_id=input_file.id,
        provider=input_file.provider,
        endpoint=request.endpoint,
        valid=problems.count == 0,
        checked=bool(figures),
        requests=requests,
        bytes=size,
        errors=BatchErrors.model_validate(
            {"object": "list", "data": [problem.as_error() for problem in problems.listed]}
        ),
        error_count=problems.count,
        estimate=BatchEstimate(
            model=model,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost=float(cost) if cost is not None else None,
        ),
        parts=parts,
        limits=limits,
    )
