"""A finished batch is settled once: usage summed from its output file, cost at batch prices,
booked against its owner's budget in place of the hold taken at create.

Whoever first sees the batch finished (a retrieve, a list, the watcher) claims the work,
streams the output file line by line and commits; everyone else serves the settlement
once it is there (`usage` and `cost` stay null on the batch until then).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from gateway.formats.jsonl import split_lines
from gateway.http.auth import MASTER_KEY_ID
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch
from gateway.models.common import GatewayModel
from gateway.observability import batch_metrics, logger
from gateway.pricing import Cost, batch_cost, price_table, scope_of
from gateway.providers.registry import client_for
from gateway.service.usage import BatchUsage, UsageTally, tally_output
from gateway.storage.budgets import BudgetStore
from gateway.storage.id_map import ObjectRecord
from gateway.storage.settlements import SettlementStore

CLAIM_STALE_SECONDS = 300  # a settler that died frees the work after this long
_CHUNK_BYTES = 256 * 1024

OutputReader = Callable[[ObjectRecord, str], Iterable[bytes]]


class Settlement(GatewayModel):
    usage: BatchUsage
    cost: Cost | None
    succeeded: int
    failed: int
    model: str | None
    settled_at: int


def with_settlement(batch: Batch, settlement: dict[str, Any] | None) -> Batch:
    """The batch as clients see it once settled: openai's `usage` and the gateway's `cost`."""
    if not settlement:
        return batch
    settled = Settlement.model_validate(settlement)
    cost = settled.cost.model_dump(mode="json") if settled.cost else None
    return Batch.model_validate({**batch.model_dump(), "usage": settled.usage.model_dump(), "cost": cost})


def settle_if_finished(
    record: ObjectRecord,
    batch: Batch,
    *,
    read_output: OutputReader | None = None,
    store: SettlementStore | None = None,
    now: int | None = None,
) -> Batch:
    """`batch` with its settlement; settles it first when it is finished and nobody has."""
    if batch.status not in TERMINAL_BATCH_STATUSES:
        return batch
    if record.settlement:
        return with_settlement(batch, record.settlement)
    store = store or SettlementStore()
    now = int(time.time()) if now is None else now
    if not store.claim(record.id, now, CLAIM_STALE_SECONDS):
        record.settlement = store.settlement_of(record.id)  # None while another settles
        return with_settlement(batch, record.settlement)
    try:
        settlement = _settle(record, batch, read_output or _provider_output, store, now)
    except Exception:
        # the batch stays in the watcher's index (storage.watch): its next pass settles it
        logger.exception("batch settlement failed; a later call retries", extra={"batch_id": record.id})
        store.release_claim(record.id)
        return batch
    record.settlement = settlement
    return with_settlement(batch, settlement)


def _settle(
    record: ObjectRecord, batch: Batch, read_output: OutputReader, store: SettlementStore, now: int
) -> dict[str, Any]:
    upstream_output = _upstream_file_id(record, batch.output_file_id)
    tally = tally_output(read_output(record, upstream_output)) if upstream_output else UsageTally()
    model = str(record.state.get("model") or batch.model or "") or None
    cost = batch_cost(price_table(), model, tally.usage, scope_of(record.provider))
    if cost is None:
        logger.warning("no price for the batch's model: usage settled, cost null", extra={"model": model})
    settlement = Settlement(
        usage=tally.usage,
        cost=cost,
        succeeded=tally.succeeded,
        failed=tally.failed,
        model=model,
        settled_at=now,
    ).model_dump(mode="json")
    booked = cost.total if cost else Decimal(0)
    held = Decimal(str(record.state.get("hold") or 0))
    budgets = BudgetStore(store.table) if record.owner != MASTER_KEY_ID else None
    if budgets:
        budgets.close_ended_period(record.owner, now)  # the cost is the current period's spend
    budget_update = budgets.settlement_update(record.owner, record.id, held, booked) if budgets else None
    budget_fallback = (
        budgets.settlement_update(record.owner, record.id, held, booked, holding=False) if budgets else None
    )
    spend_entry = _spend_entry(record, model, tally.usage, cost, now)
    # Out of the watcher's index with the settlement when the table already holds the final
    # status; else (a refresh settles before it stores the status) the write that stores it
    # removes it, and a crash in between leaves the batch watched, not lost.
    unwatch = (record.stored or {}).get("status") in TERMINAL_BATCH_STATUSES
    if store.commit(record.id, settlement, spend_entry, budget_update, budget_fallback, unwatch=unwatch):
        logger.info("batch settled", extra={"batch_id": record.id, "cost": str(booked)})
        batch_metrics.finished(
            record.provider,
            batch.status,
            succeeded=tally.succeeded,
            failed=tally.failed,
            model=model,
            cost_usd=cost.total if cost else None,
        )
        return settlement
    return store.settlement_of(record.id) or settlement  # another caller committed first


def _spend_entry(
    record: ObjectRecord, model: str | None, usage: BatchUsage, cost: Cost | None, now: int
) -> dict[str, Any]:
    return {
        "created_key": f"{now * 1_000_000:016d}#{record.id}",
        "batch_id": record.id,
        "key_id": record.owner,
        "provider": record.provider,
        "model": model or "unknown",
        "cost": cost.total if cost else Decimal(0),
        "priced": cost is not None,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "settled_at": now,
    }


def never_ran(record: ObjectRecord, model: str | None, now: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settlement of a batch that failed before any provider saw it (no usage, no cost) and
    its spend entry's item, for the transaction that records the batch: it holds nothing of its
    owner's budget, so the budget is not touched, and it is final and settled in one write."""
    usage = BatchUsage()
    cost = Cost(input=Decimal(0), output=Decimal(0), total=Decimal(0))  # priced or not: nothing ran
    settlement = Settlement(
        usage=usage, cost=cost, succeeded=0, failed=0, model=model, settled_at=now
    ).model_dump(mode="json")
    return settlement, SettlementStore.spend_item(record.id, _spend_entry(record, model, usage, cost, now))


def _upstream_file_id(record: ObjectRecord, gateway_file_id: str | None) -> str | None:
    if gateway_file_id is None:
        return None
    known: dict[str, str] = record.state.get("files") or {}
    return next((upstream for upstream, gateway in known.items() if gateway == gateway_file_id), None)


def _provider_output(record: ObjectRecord, upstream_file_id: str) -> Iterator[bytes]:
    with client_for(record.provider).stream_file_content(upstream_file_id) as response:
        yield from split_lines(response.iter_bytes(_CHUNK_BYTES))
