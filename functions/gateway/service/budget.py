"""Budgets at batches.create: estimate the batch's highest cost, hold it, or refuse.

The estimate comes from what the upload check recorded of the input file (its model, a
token-per-4-bytes bound of its input, the output tokens its requests cap, and a configured
default for requests that set no cap), priced at batch prices. The hold is replaced by the
actual cost when the batch settles (service.settlement).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.http.auth import MASTER_KEY_ID, Caller
from gateway.observability import batch_metrics
from gateway.pricing import batch_cost, price_table, scope_of
from gateway.runtime.settings import get_settings
from gateway.service.batch_input_check import BATCH_CHECK_STATE
from gateway.service.usage import BatchUsage
from gateway.storage.budgets import Budget, BudgetExceededError, BudgetStore
from gateway.storage.id_map import ObjectRecord

# The most one batch may hold, in USD: far above any real batch (50,000 requests of 128
# choices of 100,000 tokens at o1-pro's $300 per million batch price is about $200 million),
# and an amount the budget item keeps exactly.
MAX_HOLD_USD = 1_000_000_000_000
MAX_TOKENS_REQUIRED = frozenset({"anthropic", "bedrock"})  # their lines get default_max_tokens
HOLD_STATE = "hold"  # a batch record's state: what its create holds of its owner's budget
MODEL_STATE = "model"  # ... and the model it runs (what it is priced at)


def priced_model(provider: str, model: str | None) -> str | None:
    deployment = get_settings().providers.get(provider)
    return deployment.base_model(model) if deployment and model else model


def _provider_type(provider: str) -> str | None:
    deployment = get_settings().providers.get(provider)
    return deployment.type if deployment is not None else None


def _uncapped_request_tokens(provider: str) -> int:
    """What a request that sets no output cap may produce: the max_tokens the translation gives
    it where the provider requires one (Anthropic, Bedrock), else the configured default."""
    deployment = get_settings().providers.get(provider)
    if deployment is not None and deployment.type in MAX_TOKENS_REQUIRED:
        return deployment.default_max_tokens
    return get_settings().default_output_tokens_per_request


def estimated_usage(input_file: ObjectRecord) -> BatchUsage | None:
    """The most tokens a batch on `input_file` can use (None when it was not checked)."""
    check: dict[str, Any] = input_file.state.get(BATCH_CHECK_STATE) or {}
    if not check:
        return None
    output_tokens = int(check.get("output_token_limit", 0)) + int(
        check.get("lines_without_output_limit", 0)
    ) * _uncapped_request_tokens(input_file.provider)
    if _provider_type(input_file.provider) in MAX_TOKENS_REQUIRED:  # Claude thinks beyond the default
        output_tokens += int(check.get("uncapped_thinking_budget", 0))
    return BatchUsage(input_tokens=int(check.get("input_token_estimate", 0)), output_tokens=output_tokens)


def estimate_batch_cost(input_file: ObjectRecord) -> tuple[str | None, Decimal | None]:
    """The model the batch runs and the most it can cost (None when it cannot be told)."""
    check: dict[str, Any] = input_file.state.get(BATCH_CHECK_STATE) or {}
    model = priced_model(input_file.provider, check.get("model"))
    usage = estimated_usage(input_file)
    if usage is None or model is None:
        return model, None
    try:
        cost = batch_cost(price_table(), model, usage, scope_of(input_file.provider))
    except InvalidOperation:  # more digits than any amount has: caps no provider would take
        return model, Decimal("Infinity")
    return model, cost.total if cost else None


def hold_for_batch(
    caller: Caller, batch_id: str, estimate: Decimal, store: BudgetStore | None = None
) -> None:
    """Holds a batch's estimate against its owner's budget (once per batch), or refuses it."""
    if caller.is_master:
        return
    try:
        (store or BudgetStore()).hold(caller.key_id, estimate, batch_id)
    except BudgetExceededError as exceeded:
        batch_metrics.budget_refused()
        raise _budget_exceeded(exceeded.budget, exceeded.estimate) from exceeded


def release_hold(record: ObjectRecord, store: BudgetStore | None = None) -> None:
    """Gives back the hold of a batch whose create the provider refused (it will never run)."""
    held = Decimal(str(record.state.get(HOLD_STATE) or 0))
    if record.owner != MASTER_KEY_ID and held:
        (store or BudgetStore()).release(record.owner, record.id, held)


def batch_estimate(
    caller: Caller, input_file: ObjectRecord, store: BudgetStore | None = None
) -> tuple[str | None, Decimal]:
    """The model a batch on `input_file` runs, and what it will hold of the caller's budget (0 for
    the master key). A key with a budget cannot start a batch whose cost cannot be estimated."""
    model, estimate = estimate_batch_cost(input_file)
    if caller.is_master:
        return model, Decimal(0)
    store = store or BudgetStore()
    if estimate is None:
        budget = store.get(caller.key_id)
        if budget is not None and budget.max_budget is not None:
            batch_metrics.budget_refused()
            raise InvalidRequestError(
                f"This key has a budget, and the cost of a batch on {input_file.id} cannot be estimated "
                f"(model {model or 'unknown'} has no price, or the file was not checked at upload). "
                "Add the model's price (model_prices) or use a key without a budget.",
                param="input_file_id",
                code="budget_unknown_cost",
            )
        estimate = Decimal(0)
    if estimate > MAX_HOLD_USD:
        raise InvalidRequestError(
            f"The batch on {input_file.id} may cost more than ${MAX_HOLD_USD:,} at batch prices (its "
            "requests' max_tokens, n and size), the most one batch may hold of a key's budget.",
            param="input_file_id",
            code="budget_estimate_too_large",
        )
    return model, estimate


def _budget_exceeded(budget: Budget, estimate: Decimal) -> InvalidRequestError:
    resets = (
        f"; it resets at {datetime.fromtimestamp(budget.reset_at, UTC).isoformat()}"
        if budget.reset_at
        else ""
    )
    return InvalidRequestError(
        f"Budget exceeded: this batch may cost up to ${estimate:.6f} at batch prices, and key "
        f"{budget.key_id} has spent ${budget.spend:.6f} and holds ${budget.holds:.6f} for running "
        f"batches of its ${budget.max_budget:.2f} budget{resets}.",
        param="input_file_id",
        code="budget_exceeded",
    )
