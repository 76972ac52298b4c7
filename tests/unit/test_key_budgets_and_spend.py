"""Key budgets through /key/generate, /key/update and /key/info; /spend/report's sums."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from gateway.runtime import resources
from gateway.storage.budgets import BudgetStore
from gateway.storage.settlements import SettlementStore
from handlers import keys_generate, keys_info, keys_update, spend_report

from tests.unit.conftest import call, event

pytestmark = pytest.mark.usefixtures("aws")


def generate(**body: object) -> dict[str, object]:
    status, generated, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 200, generated
    return generated


def test_a_key_is_generated_with_a_budget_that_info_shows() -> None:
    generated = generate(key_alias="team-a", max_budget=25, budget_duration="30d")
    assert (generated["max_budget"], generated["budget_duration"], generated["spend"]) == (25.0, "30d", 0.0)
    assert generated["budget_reset_at"] is not None
    BudgetStore().hold(str(generated["key_id"]), Decimal("2.5"), "batch_x")
    status, body, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": str(generated["key"])}))
    assert status == 200
    assert (body["info"]["holds"], body["info"]["max_budget"]) == (2.5, 25.0)


def test_update_changes_only_the_budget_fields_it_sends() -> None:
    generated = generate(max_budget=5, budget_duration="1h")
    key = str(generated["key"])
    status, body, _ = call(
        keys_update.handler, event("POST", "/key/update", body={"key": key, "max_budget": 50})
    )
    assert status == 200 and (body["max_budget"], body["budget_duration"]) == (50.0, "1h")
    status, body, _ = call(
        keys_update.handler, event("POST", "/key/update", body={"key": key, "key_alias": "renamed"})
    )
    assert status == 200 and body["max_budget"] == 50.0
    status, body, _ = call(
        keys_update.handler, event("POST", "/key/update", body={"key": key, "max_budget": None})
    )
    assert status == 200 and body["max_budget"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [({"max_budget": -1}, "max_budget"), ({"budget_duration": "soon"}, "budget_duration")],
)
def test_a_bad_budget_is_a_400_naming_it(body: dict[str, object], param: str) -> None:
    status, error, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 400 and error["error"]["param"] == param


def settle_entry(batch_id: str, key_id: str, model: str, cost: str, day: str, tokens: int) -> None:
    settled_at = int(datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC).timestamp())
    entry = {
        "created_key": f"{settled_at * 1_000_000:016d}#{batch_id}",
        "batch_id": batch_id,
        "key_id": key_id,
        "model": model,
        "cost": Decimal(cost),
        "input_tokens": tokens,
        "output_tokens": tokens // 2,
        "settled_at": settled_at,
    }
    # the batch item must exist for the settlement's condition
    from gateway.storage.id_map import IdMap, ObjectRecord

    IdMap().put(
        ObjectRecord(id=batch_id, kind="batch", owner=key_id, provider="openai", created_at=1, object={})
    )
    assert SettlementStore().commit(batch_id, {"cost": cost}, entry, None)


def test_spend_report_sums_by_key_model_and_day_within_the_dates() -> None:
    settle_entry("batch_1", "key_a", "gpt-4o", "1.50", "2026-11-01", 100)
    settle_entry("batch_2", "key_a", "gpt-4o-mini", "0.25", "2026-11-02", 10)
    settle_entry("batch_3", "key_b", "gpt-4o", "2.00", "2026-11-02", 40)
    settle_entry("batch_4", "key_b", "gpt-4o", "9.00", "2026-11-03", 40)  # after end_date
    query = {"start_date": "2026-11-01", "end_date": "2026-11-02"}

    def report(group_by: str) -> dict[str, object]:
        status, body, _ = call(
            spend_report.handler, event("GET", "/spend/report", query={**query, "group_by": group_by})
        )
        assert status == 200, body
        return body

    by_key = report("key")
    assert by_key["total_spend"] == 3.75
    assert [(row["group"], row["spend"], row["batches"]) for row in by_key["data"]] == [
        ("key_a", 1.75, 2),
        ("key_b", 2.0, 1),
    ]
    assert [(row["group"], row["spend"]) for row in report("model")["data"]] == [
        ("gpt-4o", 3.5),
        ("gpt-4o-mini", 0.25),
    ]
    by_day = report("day")["data"]
    assert [(row["group"], row["spend"], row["input_tokens"]) for row in by_day] == [
        ("2026-11-01", 1.5, 100),
        ("2026-11-02", 2.25, 50),
    ]


def test_spend_report_needs_the_master_key_and_valid_dates() -> None:
    generated = generate()
    status, body, _ = call(spend_report.handler, event("GET", "/spend/report", key=str(generated["key"])))
    assert status == 403 and body["error"]["code"] == "master_key_required"
    status, body, _ = call(
        spend_report.handler,
        event("GET", "/spend/report", query={"start_date": "2026-11-05", "end_date": "2026-11-01"}),
    )
    assert status == 400 and body["error"]["param"] == "start_date"
    status, body, _ = call(spend_report.handler, event("GET", "/spend/report", query={"group_by": "team"}))
    assert status == 400 and body["error"]["param"] == "group_by"


@pytest.mark.parametrize("absurd", [1e300, 1e200, 1e10, -1e-7, "NaN", "Infinity", "-Infinity"])
def test_an_absurd_max_budget_is_a_400_naming_the_bound(absurd: float | str) -> None:
    value = float(absurd)
    key = str(generate(max_budget=5)["key"])
    for handler, path, body in (
        (keys_generate.handler, "/key/generate", {"max_budget": value}),
        (keys_update.handler, "/key/update", {"key": key, "max_budget": value}),
    ):
        status, error, _ = call(handler, event("POST", path, body=body))
        assert status == 400 and error["error"]["param"] == "max_budget", error
        assert error["error"]["type"] == "invalid_request_error"
        if value > 0 and value != float("inf"):
            assert "1000000000" in error["error"]["message"]
    status, info, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": key}))
    assert status == 200 and info["info"]["max_budget"] == 5.0  # the key keeps working


def test_a_max_budget_is_kept_to_the_micro_dollar_in_plain_digits() -> None:
    tiny = generate(max_budget=1e-7)  # exponent form on the wire: was a 503
    assert tiny["max_budget"] == 0.0
    key = str(generate(max_budget=0.1234567)["key"])
    status, updated, _ = call(
        keys_update.handler, event("POST", "/key/update", body={"key": key, "max_budget": 999_999_999.25})
    )
    assert status == 200 and updated["max_budget"] == 999_999_999.25
    generated = generate(max_budget=0.1234567)
    assert generated["max_budget"] == 0.123456  # a finer fraction is dropped
    for item in boto3.client("dynamodb").scan(TableName=resources.DEFAULT_TABLE_NAME)["Items"]:
        for typed in item.values():
            assert "N" not in typed or "e" not in typed["N"].lower(), item


def test_a_batch_estimate_beyond_what_a_key_may_hold_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.errors import InvalidRequestError
    from gateway.http.auth import Caller
    from gateway.service import budget
    from gateway.storage.id_map import ObjectRecord

    absurd = {"model": "gpt-4o-mini", "input_token_estimate": 1, "output_token_limit": 10**40}
    record = ObjectRecord(
        id="file-x",
        kind="file",
        owner="k",
        provider="openai",
        created_at=1,
        object={},
        state={"batch_check": absurd},
    )
    with pytest.raises(InvalidRequestError) as refused:
        budget.batch_estimate(Caller(key_id="k"), record)
    assert refused.value.code == "budget_estimate_too_large" and refused.value.param == "input_file_id"
    assert budget.batch_estimate(Caller(key_id="master", is_master=True), record)[1] == 0
