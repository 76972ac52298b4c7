"""What one provider batch may hold, and the provider's quota on batches in progress.

Each provider type's defaults are the figures its documentation states, each with the page it
comes from (`DOCUMENTED`); a deployment overrides any of them in its settings (`batch_caps`,
`config.BatchCapsOverride`), e.g. an OpenAI organisation above usage tier 1 or a Bedrock
account whose quotas were raised. The plan of parts (`gateway.service.plan`) splits a batch by
`max_requests` and `max_bytes`, never makes a part smaller than `min_requests`, and submits parts
while the quota allows (`enqueued_tokens`, `enqueued_requests`, `max_concurrent`); a part the
provider refuses anyway waits and is submitted again (`errors.QuotaRefused`, `quota_refused`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gateway.providers.config import ProviderDeployment

MB = 1000 * 1000
MIB = 1024 * 1024

OPENAI_BATCH_GUIDE = "https://platform.openai.com/docs/guides/batch#rate-limits"
OPENAI_RATE_LIMITS = "https://platform.openai.com/docs/guides/rate-limits#usage-tiers"
AZURE_BATCH_LIMITS = (
    "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits#global-batch-limits"
)
AZURE_BATCH_QUOTA = (
    "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits#global-batch-quota"
)
ANTHROPIC_BATCH_LIMITS = (
    "https://platform.claude.com/docs/en/build-with-claude/batch-processing#batch-limitations"
)
ANTHROPIC_RATE_LIMITS = "https://platform.claude.com/docs/en/api/rate-limits#message-batches-api"
BEDROCK_QUOTAS = "https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock"
VERTEX_BATCH_LIMITS = (
    "https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini#quotas"
)
T = TypeVar("T")
GEMINI_BATCH_LIMITS = "https://ai.google.dev/gemini-api/docs/rate-limits#batch-mode"
BEDROCK_JOB_QUEUE_POST = (
    "https://aws.amazon.com/blogs/machine-learning/"
    "automate-amazon-bedrock-batch-inference-building-a-scalable-and-efficient-pipeline/"
)

# The error code OpenAI and Azure fail a batch with when its tokens pass the enqueued quota.
TOKEN_LIMIT_EXCEEDED = "token_limit_exceeded"


@dataclass(frozen=True)
class BatchCaps:
    max_requests: int  # lines in one provider batch (OpenAI 50_000, Anthropic 100_000, ...)
    max_bytes: int  # bytes of one provider batch input file
    enqueued_tokens: int | None  # the enqueued-token quota for this model/deployment (None: none)
    max_concurrent: int | None  # provider batches that may run at once (None: no cap)
    min_requests: int | None = None  # lines one provider batch needs at least (Bedrock's 100)
    # requests that may wait in the provider's queue over all batches in progress (Anthropic's)
    enqueued_requests: int | None = None


@dataclass(frozen=True)
class Documented:
    """A provider's figure and the page that states it."""

    value: int
    source: str


@dataclass(frozen=True)
class TypeDefaults:
    max_requests: Documented
    max_bytes: Documented
    # model (longest prefix of the model name wins) -> its enqueued-token quota
    enqueued_tokens: Mapping[str, Documented] = field(default_factory=dict)
    # the quota of a model the table does not list (the smallest listed: conservative)
    enqueued_tokens_otherwise: Documented | None = None
    max_concurrent: Documented | None = None
    min_requests: Documented | None = None
    enqueued_requests: Documented | None = None


def _per_model(source: str, figures: Mapping[str, int]) -> dict[str, Documented]:
    return {model: Documented(value, source) for model, value in figures.items()}


# OpenAI: the Batch API's enqueued prompt tokens per model at usage tier 1, the lowest paid
# tier, so that a gateway whose organisation is higher only submits less at once than it could
# (override `enqueued_tokens` per deployment for a higher tier).
_OPENAI_TIER1_ENQUEUED = _per_model(
    OPENAI_RATE_LIMITS,
    {
        "gpt-3.5-turbo": 2_000_000,
        "gpt-4": 100_000,
        "gpt-4-turbo": 90_000,
        "gpt-4o": 90_000,
        "gpt-4o-mini": 2_000_000,
        "gpt-4.1": 90_000,
        "gpt-4.1-mini": 2_000_000,
        "gpt-4.1-nano": 2_000_000,
        "gpt-5": 1_500_000,
        "gpt-5-mini": 5_000_000,
        "gpt-5-nano": 2_000_000,
        "o1": 90_000,
        "o1-mini": 2_000_000,
        "o3": 90_000,
        "o3-mini": 2_000_000,
        "o4-mini": 2_000_000,
        "text-embedding-3-small": 3_000_000,
        "text-embedding-3-large": 3_000_000,
        "text-embedding-ada-002": 3_000_000,
    },
)
# Azure OpenAI: the global batch enqueued-token quota per model of the "Default" subscription
# column (Enterprise/MCA-E subscriptions get more, credit-card and MSDN ones less: override).
# Source: AZURE_BATCH_QUOTA, "Batch quota" > "Global batch" (the include
# articles/ai-foundry/openai/includes/global-batch-limits.md of MicrosoftDocs/azure-ai-docs,
# ms.date 02/12/2025). `gpt-35-turbo` reads 1B there (100M is the credit-card column).
_AZURE_DEFAULT_ENQUEUED = _per_model(
    AZURE_BATCH_QUOTA,
    {
        "gpt-4": 30_000_000,
        "gpt-4-turbo": 80_000_000,
        "gpt-4o": 200_000_000,
        "gpt-4o-mini": 1_000_000_000,
        "gpt-4.1": 200_000_000,
        "gpt-4.1-mini": 1_000_000_000,
        "gpt-4.1-nano": 1_000_000_000,
        "gpt-5": 200_000_000,
        "o3-mini": 1_000_000_000,
        "o4-mini": 1_000_000_000,
        "gpt-35-turbo": 1_000_000_000,
    },
)

DOCUMENTED: dict[str, TypeDefaults] = {
    "openai": TypeDefaults(
        max_requests=Documented(50_000, OPENAI_BATCH_GUIDE),
        max_bytes=Documented(200 * MIB, OPENAI_BATCH_GUIDE),
        enqueued_tokens=_OPENAI_TIER1_ENQUEUED,
        enqueued_tokens_otherwise=Documented(90_000, OPENAI_RATE_LIMITS),
    ),
    "azure": TypeDefaults(
        # "Batch limits": maximum requests per file 100,000 (a file over it fails
        # `too_many_tasks`), maximum input file size 200 MB. Its third limit, 500 files per
        # resource, is not a batch's: a plan's part and merged files count against it.
        max_requests=Documented(100_000, AZURE_BATCH_LIMITS),
        max_bytes=Documented(200 * MIB, AZURE_BATCH_LIMITS),
        enqueued_tokens=_AZURE_DEFAULT_ENQUEUED,
        enqueued_tokens_otherwise=Documented(30_000_000, AZURE_BATCH_QUOTA),
    ),
    "anthropic": TypeDefaults(
        max_requests=Documented(100_000, ANTHROPIC_BATCH_LIMITS),
        max_bytes=Documented(256 * MIB, ANTHROPIC_BATCH_LIMITS),
        # tier 1's "batch requests in the processing queue" (all models together)
        enqueued_requests=Documented(100_000, ANTHROPIC_RATE_LIMITS),
    ),
    "bedrock": TypeDefaults(
        # "Records per batch inference job" and "Batch inference input file size" (one input
        # file per job here, so the job size of 5 GB never binds)
        max_requests=Documented(50_000, BEDROCK_QUOTAS),
        max_bytes=Documented(1_000 * MB, BEDROCK_QUOTAS),
        min_requests=Documented(100, BEDROCK_QUOTAS),
        # submitted and in-progress jobs per model per Region
        max_concurrent=Documented(10, BEDROCK_JOB_QUEUE_POST),
    ),
    "gemini": TypeDefaults(
        # Gemini documents no count of requests per batch: 100,000 keeps a batch's note (its
        # custom_ids) small; the input file is at most 2 GB; 100 batches run at once.
        max_requests=Documented(100_000, GEMINI_BATCH_LIMITS),
        max_bytes=Documented(2_000 * MB, GEMINI_BATCH_LIMITS),
        max_concurrent=Documented(100, GEMINI_BATCH_LIMITS),
    ),
    "vertex": TypeDefaults(
        # requests per Gemini batch job and its input file (jobs past the concurrency limit
        # queue at Vertex, so no quota on jobs in progress is set)
        max_requests=Documented(200_000, VERTEX_BATCH_LIMITS),
        max_bytes=Documented(1_000 * MB, VERTEX_BATCH_LIMITS),
    ),
}
BEDROCK_JOB_BYTES = Documented(5_000 * MB, BEDROCK_QUOTAS)  # all input files of one job


def default_caps(provider_type: str, model: str) -> BatchCaps:
    """The documented caps of a provider type for `model` (its base model at Azure)."""
    defaults = DOCUMENTED[provider_type]
    tokens = _longest_prefix(defaults.enqueued_tokens, model) or defaults.enqueued_tokens_otherwise
    return BatchCaps(
        max_requests=defaults.max_requests.value,
        max_bytes=defaults.max_bytes.value,
        enqueued_tokens=tokens.value if tokens else None,
        max_concurrent=_value(defaults.max_concurrent),
        min_requests=_value(defaults.min_requests),
        enqueued_requests=_value(defaults.enqueued_requests),
    )


def caps_for(deployment: ProviderDeployment, model: str) -> BatchCaps:
    """A deployment's caps for `model`: the documented defaults, then its own overrides."""
    caps = default_caps(deployment.type, deployment.base_model(model))
    override = deployment.batch_caps
    if override is None:
        return caps
    changes: dict[str, Any] = {
        name: getattr(override, name) for name in override.model_fields_set if name in _CAPS_FIELDS
    }
    per_model = override.enqueued_tokens_by_model
    if per_model:
        # the deployment's own model name first (an Azure deployment), then its base model
        chosen = per_model.get(model)
        if chosen is None:
            chosen = _longest_prefix(per_model, deployment.base_model(model))
        if chosen is not None:
            changes["enqueued_tokens"] = chosen
    return replace(caps, **changes)


def failed_for_quota(batch: Mapping[str, Any]) -> bool:
    """An OpenAI-shaped batch that ended `failed` because its tokens passed the enqueued quota
    (OpenAI's and Azure's `errors.data[].code` `token_limit_exceeded`)."""
    if batch.get("status") != "failed":
        return False
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, Mapping) else None
    return any(
        isinstance(error, Mapping) and error.get("code") == TOKEN_LIMIT_EXCEEDED for error in data or ()
    )


_CAPS_FIELDS = frozenset(
    {"max_requests", "max_bytes", "enqueued_tokens", "max_concurrent", "min_requests", "enqueued_requests"}
)


def _longest_prefix(table: Mapping[str, T], model: str) -> T | None:
    matches = (name for name in table if model == name or model.startswith(name + "-"))
    best = max(matches, key=len, default=None)
    return table[best] if best is not None else None


def _value(documented: Documented | None) -> int | None:
    return documented.value if documented is not None else None
