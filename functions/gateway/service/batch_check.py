"""POST /v1/batches/check (a gateway extension): what a create with the same body would do,
without creating anything. The same ownership, provider and file rules as a create; the
errors a create would fail the batch with (from what the upload's check kept), the most it can
cost, and how many provider batches the file needs against the provider's limits."""

from __future__ import annotations

import math
from typing import Any

from gateway.auth import Caller
from gateway.models.batch_check import BatchCheck, BatchEstimate, ProviderLimits
from gateway.models.batches import BatchErrors, CreateBatchRequest
from gateway.service import budget
from gateway.service.batch_input_check import (
    BATCH_CHECK_STATE,
    MAX_BYTES,
    MAX_LINES,
    TYPE_LIMITS,
    batch_problems,
    require_endpoint,
)
from gateway.service.batches import usable_input_file
from gateway.settings import get_settings
from gateway.storage.id_map import IdMap

# Bedrock's batch inference job takes at least this many records (its quota page).
MIN_REQUESTS: dict[str, int] = {"bedrock": 100}


def provider_limits(provider: str) -> ProviderLimits:
    """One batch's limits at `provider`'s deployment: OpenAI's (and Azure's) unless its type
    translates to another API."""
    deployment = get_settings().providers.get(provider)
    kind = deployment.type if deployment is not None else "openai"
    max_requests, max_bytes = TYPE_LIMITS.get(kind, (MAX_LINES, MAX_BYTES))
    return ProviderLimits(max_requests=max_requests, max_bytes=max_bytes, min_requests=MIN_REQUESTS.get(kind))


def check_batch(
    caller: Caller, provider: str | None, request: CreateBatchRequest, id_map: IdMap | None = None
) -> BatchCheck:
    input_file = usable_input_file(caller, provider, request, id_map or IdMap())
    require_endpoint(input_file.provider, request.endpoint)
    figures: dict[str, Any] = input_file.state.get(BATCH_CHECK_STATE) or {}
    problems = batch_problems(figures, request.endpoint)
    model, cost = budget.estimate_batch_cost(input_file)
    usage = budget.estimated_usage(input_file)
    limits = provider_limits(input_file.provider)
    requests = int(figures.get("lines") or 0)
    size = int(figures.get("bytes") or input_file.object.get("bytes") or 0)
    parts = max(1, math.ceil(requests / limits.max_requests), math.ceil(size / limits.max_bytes))
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
