"""/spend/report's dates: any date the pattern admits answers, never a 500."""

from __future__ import annotations

import pytest
from handlers import spend_report

from tests.unit.conftest import call, event
from tests.unit.test_key_budgets_and_spend import settle_entry

pytestmark = pytest.mark.usefixtures("aws")


def report(**query: str) -> tuple[int, dict[str, object]]:
    status, body, _ = call(spend_report.handler, event("GET", "/spend/report", query=query))
    return status, body


def test_the_last_date_there_is_reports_what_was_settled_up_to_it() -> None:
    settle_entry("batch_1", "key_a", "gpt-4o", "1.50", "2026-11-01", 100)
    status, body = report(start_date="2026-01-01", end_date="9999-12-31")
    assert status == 200, body
    assert (body["end_date"], body["total_spend"]) == ("9999-12-31", 1.5)
    status, body = report(end_date="9999-12-31")  # the 30 days up to it: nothing settled there
    assert status == 200, body
    assert (body["start_date"], body["data"]) == ("9999-12-02", [])


def test_dates_before_1970_read_from_the_first_entry() -> None:
    settle_entry("batch_1", "key_a", "gpt-4o", "2.00", "2026-11-01", 100)
    status, body = report(start_date="1000-01-01", end_date="2026-11-01")
    assert status == 200, body
    assert body["total_spend"] == 2.0
    status, body = report(start_date="1000-01-01", end_date="1000-01-31")
    assert status == 200 and body["data"] == []


@pytest.mark.parametrize("param", ["start_date", "end_date"])
def test_a_day_the_calendar_lacks_is_a_400_naming_its_param(param: str) -> None:
    status, body = report(**{param: "2026-02-30"})
    assert status == 400 and body["error"]["param"] == param  # type: ignore[index]
