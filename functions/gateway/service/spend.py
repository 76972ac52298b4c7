"""Spend of settled batches between two dates (UTC, both inclusive), grouped for a report."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gateway.errors import InvalidRequestError
from gateway.models.spend import SpendGroup, SpendReport, SpendRow
from gateway.storage.settlements import SettlementStore

DEFAULT_DAYS = 30
_DAY_MICROS = 86_400 * 1_000_000
# Spend entries sort by a 16-digit microsecond key: a date past what it holds (year 2286)
# or before 1970 reads as the key range's end.
_LAST_MICROS = 10**16 - 1


def spend_report(
    group_by: SpendGroup,
    start_date: date | str | None,
    end_date: date | str | None,
    store: SettlementStore | None = None,
    today: date | None = None,
) -> SpendReport:
    end = _day(end_date, "end_date") if end_date else (today or datetime.now(UTC).date())
    start = _day(start_date, "start_date") if start_date else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidRequestError("start_date must not be after end_date.", param="start_date")
    totals: dict[str, dict[str, Decimal | int]] = defaultdict(
        lambda: {"spend": Decimal(0), "batches": 0, "input_tokens": 0, "output_tokens": 0}
    )
    bounds = _clamped(_micros(start)), _clamped(_micros(end) + _DAY_MICROS)  # end + 1 day may be no date
    for entry in (store or SettlementStore()).spend_entries(*bounds):
        settled_day = datetime.fromtimestamp(int(entry["settled_at"]), UTC).date().isoformat()
        group = {"key": entry["key_id"], "model": entry["model"], "day": settled_day}[group_by]
        row = totals[group]
        row["spend"] += Decimal(str(entry.get("cost", 0)))
        row["batches"] += 1
        row["input_tokens"] += int(entry.get("input_tokens", 0))
        row["output_tokens"] += int(entry.get("output_tokens", 0))
    rows = [
        SpendRow(
            group=group,
            spend=float(values["spend"]),
            batches=int(values["batches"]),
            input_tokens=int(values["input_tokens"]),
            output_tokens=int(values["output_tokens"]),
        )
        for group, values in sorted(totals.items())
    ]
    total = sum((Decimal(str(values["spend"])) for values in totals.values()), Decimal(0))
    return SpendReport(
        group_by=group_by,
        start_date=start.isoformat(),
        end_date=end.isoformat(),
        total_spend=float(total),
        data=rows,
    )


def _day(value: date | str, param: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequestError(
            f"{param} must be a date as YYYY-MM-DD, not '{value}'.", param=param
        ) from exc


def _micros(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _clamped(micros: int) -> int:
    return min(max(micros, 0), _LAST_MICROS)
