"""Money through the official SDK: batch files checked at upload, usage and cost settled once,
budgets that hold (issue "Money")."""

from __future__ import annotations

import io
import json

import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, error_of, wait_for_batch
from tests.integration.tenancy import generate_key, key_api, sdk, unique


def simulator_batch_count(gateway: LocalGateway) -> int:
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return len(state.batches)


def upload(client: openai.OpenAI, content: bytes, name: str = "input.jsonl") -> openai.types.FileObject:
    return client.files.create(file=(name, io.BytesIO(content), "application/jsonl"), purpose="batch")


def key_info(gateway: LocalGateway, key_id: str) -> dict[str, object]:
    response = key_api(gateway, "GET", "/key/info", params={"key": key_id})
    assert response.status_code == 200, response.text
    return dict(response.json()["info"])


def test_a_file_that_is_not_json_lines_is_refused_at_upload_with_its_first_ten_problems(
    local_gateway: LocalGateway,
) -> None:
    client = sdk(local_gateway, local_gateway.master_key)
    good = json.loads(batch_jsonl(1))
    lines = [json.dumps(good)] + ["{not json"] * 12
    with pytest.raises(openai.BadRequestError) as refused:
        upload(client, ("\n".join(lines) + "\n").encode(), name=unique("bad") + ".jsonl")
    error = error_of(refused.value)
    assert (error["code"], error["param"]) == ("invalid_json_line", "file")
    assert error["message"].startswith(
        "The file is not JSON Lines of request objects: it has 12 problems: line 2: "
    )
    assert "line 11: " in error["message"] and "line 12: " not in error["message"]


def test_a_bad_batch_file_through_the_uploads_api_is_kept_and_its_batch_fails_before_the_provider(
    local_gateway: LocalGateway,
) -> None:
    client = sdk(local_gateway, local_gateway.master_key)
    content = batch_jsonl(2) + batch_jsonl(1)  # request-0 twice
    name = unique("dup") + ".jsonl"
    upload = client.uploads.upload_file_chunked(
        file=content,
        filename=name,
        bytes=len(content),
        mime_type="application/jsonl",
        purpose="batch",
    )
    assert upload.file is not None
    assert local_gateway.wait_for_async(30)
    file = client.files.retrieve(upload.file.id)
    assert file.status == "processed"  # as OpenAI: the lines are checked when a batch is validated
    before = simulator_batch_count(local_gateway)
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    (error,) = batch.errors.data
    assert (error.code, error.line, error.param) == ("duplicate_custom_id", 3, "custom_id")
    assert error.message is not None and "also used on line 1" in error.message
    assert simulator_batch_count(local_gateway) == before


def test_a_key_over_its_budget_cannot_start_a_batch_and_the_provider_never_sees_it(
    local_gateway: LocalGateway,
) -> None:
    key = generate_key(local_gateway, "poor", max_budget=0.000001)
    client = sdk(local_gateway, key.key)
    file = upload(client, batch_jsonl(3))
    before = simulator_batch_count(local_gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    error = error_of(refused.value)
    assert (error["code"], error["param"]) == ("budget_exceeded", "input_file_id")
    assert "$0.00 budget" in error["message"] and "may cost up to $" in error["message"]
    assert simulator_batch_count(local_gateway) == before
    assert client.batches.list().data == []  # nothing left behind
    assert key_info(local_gateway, key.key_id)["holds"] == 0


def test_a_finished_batch_carries_usage_and_cost_and_its_key_spends_exactly_that(
    local_gateway: LocalGateway,
) -> None:
    key = generate_key(local_gateway, "rich", max_budget=100)
    client = sdk(local_gateway, key.key)
    file = upload(client, batch_jsonl(3))
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    holding = key_info(local_gateway, key.key_id)
    assert float(holding["holds"]) > 0 and holding["spend"] == 0  # type: ignore[arg-type]
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed"
    assert done.usage is not None and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    cost = done.to_dict()["cost"]
    assert cost["currency"] == "USD" and cost["total"] > 0
    assert cost["total"] == pytest.approx(cost["input"] + cost["output"])
    settled = key_info(local_gateway, key.key_id)
    assert settled["spend"] == pytest.approx(cost["total"]) and settled["holds"] == 0
    again = client.batches.retrieve(batch.id)  # settled once: the same figures, no second booking
    assert again.to_dict()["cost"] == cost
    assert key_info(local_gateway, key.key_id)["spend"] == pytest.approx(cost["total"])
    listed = {b.id: b for b in client.batches.list().data}
    assert listed[batch.id].to_dict()["cost"] == cost
    report = key_api(local_gateway, "GET", "/spend/report", params={"group_by": "key"}).json()
    assert any(
        row["group"] == key.key_id and row["spend"] == pytest.approx(cost["total"]) for row in report["data"]
    )


def test_a_cancelled_batch_gives_back_its_hold(local_gateway: LocalGateway) -> None:
    key = generate_key(local_gateway, "cancel", max_budget=100)
    client = sdk(local_gateway, key.key)
    file = upload(client, batch_jsonl(50))
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert float(key_info(local_gateway, key.key_id)["holds"]) > 0  # type: ignore[arg-type]
    client.batches.cancel(batch.id)
    done = wait_for_batch(client, batch.id)
    assert done.status == "cancelled"
    info = key_info(local_gateway, key.key_id)
    assert info["holds"] == 0
    assert info["spend"] == pytest.approx(done.to_dict()["cost"]["total"])
