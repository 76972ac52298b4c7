# ruff: noqa: F811  (pytest fixtures imported from create_support are parameters here)
"""batches.create, one injected failure per write step, then the request replayed with the same
Idempotency-Key as the SDK would: the client gets one batch, the provider holds one, and the
table holds no record that no call can finish."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.openai.client import ProviderClient
from gateway.service import adoption
from handlers import batches_cancel, batches_create, batches_list, batches_retrieve, files_create

from devserver.simulator import Simulator
from tests.unit.conftest import FakeContext, call, event
from tests.unit.fault_injection.create_support import (
    LINE,
    ShortContext,
    TableFaults,
    assert_settled,
    file_event,
    gateway,  # noqa: F401  (fixture)
    records,
    sim,  # noqa: F401  (fixture)
    table_faults,  # noqa: F401  (fixture)
    with_key,
)


def _input_file(provider: str | None = None) -> str:
    request = file_event(f"{uuid.uuid4().hex}.jsonl", LINE, provider=provider)
    status, body, _ = call(files_create.handler, request)
    assert status == 200, body
    return str(body["id"])


def _create(file_id: str, key: str | None, **fields: Any) -> tuple[int, Any, dict[str, list[str]]]:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    return call(batches_create.handler, with_key(event("POST", "/v1/batches", body=body), key))


def _upstream_batches(sim: Simulator, file_id: str) -> list[Any]:
    """The provider's batches made from this test's input file."""
    upstream_file = next(r["upstream_id"] for r in records("file") if r["pk"] == file_id)
    return [b for b in list(sim.state.batches.values()) if b.input_file_id == upstream_file]


def _retrieve(batch_id: str) -> tuple[int, Any, Any]:
    return call(
        batches_retrieve.handler,
        event(
            "GET",
            f"/v1/batches/{batch_id}",
            resource="/v1/batches/{batch_id}",
            path_parameters={"batch_id": batch_id},
        ),
    )


def _timeout_after_accept(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> list[str]:
    """The provider makes the batch, the gateway never hears back (its client times out)."""
    real = ProviderClient.create_batch
    accepted: list[str] = []

    def accept_then_time_out(self: ProviderClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        upstream = real(self, body, **kwargs)
        if len(accepted) < times:
            accepted.append(str(upstream["id"]))
            raise UpstreamTimeoutError(f"provider '{self.name}' did not answer in time")
        return upstream

    monkeypatch.setattr(ProviderClient, "create_batch", accept_then_time_out)
    return accepted


def _replayed_once(
    sim: Simulator, file_id: str, key: str, failed_status: int, **fields: Any
) -> dict[str, Any]:
    status, first, _headers = _create(file_id, key, **fields)
    assert status == failed_status, first
    status, batch, _ = _create(file_id, key, **fields)
    assert status == 200, batch
    again_status, again, _ = _create(file_id, key, **fields)
    assert (again_status, again["id"]) == (200, batch["id"])  # replayed, no third attempt
    assert len(_upstream_batches(sim, file_id)) == 1
    assert [r["pk"] for r in records("batch")] == [batch["id"]]
    assert_settled("batch")
    return batch


def test_idempotency_record_put_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    file_id = _input_file()
    table_faults.fail("put_item", "idempotency#")
    _replayed_once(gateway, file_id, "k-idem-put", 503)


def test_pending_record_put_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    file_id = _input_file()
    table_faults.fail("put_item", "batch_")
    _replayed_once(gateway, file_id, "k-pending-put", 503)


def test_provider_call_fails(gateway: Simulator) -> None:
    file_id = _input_file()
    gateway.add_fault(status=500, method="POST", path_contains="/v1/batches")
    _replayed_once(gateway, file_id, "k-provider-500", 502)


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_provider_times_out_after_accept(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    file_id = _input_file(provider)
    accepted = _timeout_after_accept(monkeypatch)
    batch = _replayed_once(gateway, file_id, f"k-timeout-{provider}", 504, metadata={"team": "a"})
    record = records("batch")[0]
    assert record["provider"] == provider
    assert record["upstream_id"] == accepted[0]  # adopted by its tag, not made again
    assert batch["metadata"] == {"team": "a"}  # the gateway's tag stays upstream


def test_provider_times_out_after_accept_with_metadata_full(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for the tag: adopted by what the create sent, created since the attempt."""
    file_id = _input_file()
    accepted = _timeout_after_accept(monkeypatch)
    full = {f"k{i}": "v" for i in range(16)}
    batch = _replayed_once(gateway, file_id, "k-timeout-full", 504, metadata=full)
    assert records("batch")[0]["upstream_id"] == accepted[0]
    assert batch["metadata"] == full


def test_reverse_claim_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    file_id = _input_file()
    table_faults.fail("put_item", "upstream#")
    _replayed_once(gateway, file_id, "k-claim", 503)


def test_finish_write_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    file_id = _input_file()
    table_faults.fail("update_item", "batch_")
    _replayed_once(gateway, file_id, "k-finish", 503)


def test_idempotency_record_save_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    """The batch is made and recorded, only the key's success is not: the retry is told to wait
    while the first attempt could still run, then gets the same batch."""
    file_id = _input_file()
    table_faults.fail("update_item", "idempotency#")
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    request = with_key(event("POST", "/v1/batches", body=body), "k-save")
    result = batches_create.handler(request, FakeContext())
    assert result["statusCode"] == 503
    status, busy, headers = _create(file_id, "k-save")
    assert status == 409 and busy["error"]["code"] == "idempotency_key_in_use"
    assert headers["x-should-retry"] == ["true"]

    # a first attempt that ran out of time blocks its key only until its function would have ended
    file_id = _input_file()
    table_faults.fail("update_item", "idempotency#")
    request = with_key(event("POST", "/v1/batches", body={**body, "input_file_id": file_id}), "k-save-2")
    assert batches_create.handler(request, ShortContext())["statusCode"] == 503
    time.sleep(0.01)
    status, batch, _ = _create(file_id, "k-save-2")
    assert status == 200, batch
    assert len(_upstream_batches(gateway, file_id)) == 1
    assert {r["pk"] for r in records("batch")} >= {batch["id"]}
    assert_settled("batch")


def test_provider_refuses_leaves_nothing(gateway: Simulator) -> None:
    file_id = _input_file()
    gateway.add_fault(status=400, method="POST", path_contains="/v1/batches")
    status, error, _ = _create(file_id, "k-refused")
    assert status == 400, error
    assert records("batch") == [] and _upstream_batches(gateway, file_id) == []
    status, _batch, _ = _create(file_id, "k-refused")
    assert status == 200 and len(_upstream_batches(gateway, file_id)) == 1


def test_without_key_a_stranded_batch_is_listed_and_adopted_by_retrieve(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = _input_file()
    accepted = _timeout_after_accept(monkeypatch)
    status, _, _ = _create(file_id, None)
    assert status == 504
    status, page, _ = call(batches_list.handler, event("GET", "/v1/batches"))
    assert status == 200 and [b["status"] for b in page["data"]] == ["validating"]
    batch_id = page["data"][0]["id"]
    status, batch, _ = _retrieve(batch_id)
    assert status == 200 and batch["id"] == batch_id
    assert records("batch")[0]["upstream_id"] == accepted[0]
    assert_settled("batch")


def test_cancel_of_a_batch_the_provider_never_got_ends_it_cancelled(gateway: Simulator) -> None:
    file_id = _input_file()
    gateway.add_fault(status=503, method="POST", path_contains="/v1/batches")
    status, _, _ = _create(file_id, None)
    assert status == 502
    [record] = records("batch")
    batch_id = record["pk"]
    status, cancelled, _ = call(
        batches_cancel.handler,
        event(
            "POST",
            f"/v1/batches/{batch_id}/cancel",
            resource="/v1/batches/{batch_id}/cancel",
            path_parameters={"batch_id": batch_id},
        ),
    )
    assert status == 200 and cancelled["status"] == "cancelled"
    status, again, _ = _retrieve(batch_id)
    assert status == 200 and again["status"] == "cancelled"
    assert _upstream_batches(gateway, file_id) == []


def test_cancel_of_a_stranded_batch_cancels_it_at_the_provider(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = _input_file()
    _timeout_after_accept(monkeypatch)
    assert _create(file_id, None)[0] == 504
    batch_id = records("batch")[0]["pk"]
    status, cancelled, _ = call(
        batches_cancel.handler,
        event(
            "POST",
            f"/v1/batches/{batch_id}/cancel",
            resource="/v1/batches/{batch_id}/cancel",
            path_parameters={"batch_id": batch_id},
        ),
    )
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert status == 200 and cancelled["status"] in {"cancelling", "cancelled"}
    [upstream] = _upstream_batches(gateway, file_id)
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert upstream.status in {"cancelling", "cancelled"}
    assert_settled("batch")


def test_a_batch_the_provider_never_got_is_given_up_as_failed(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = _input_file()
    gateway.add_fault(status=500, method="POST", path_contains="/v1/batches")
    assert _create(file_id, None)[0] == 502
    batch_id = records("batch")[0]["pk"]
    assert _retrieve(batch_id)[1]["status"] == "validating"  # the create may still be running
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    status, batch, _ = _retrieve(batch_id)
    assert status == 200 and batch["status"] == "failed"
    assert batch["errors"]["data"][0]["code"] == "provider_create_unconfirmed"
    assert "pending" not in records("batch")[0].get("state", "")


def test_provider_slower_than_the_create_deadline(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real timing: the provider makes the batch after the gateway gave up on it (504). A retry
    while it may still be at it is asked to come back; the next one adopts it."""
    monkeypatch.setattr(adoption, "API_DEADLINE_SECONDS", adoption._CONNECT_AND_WRITES_SECONDS + 1)
    assert adoption.create_timeout() == 1
    file_id = _input_file()
    gateway.add_fault(delay_seconds=2, method="POST", path_contains="/v1/batches")
    started = time.monotonic()
    status, error, _ = _create(file_id, "k-slow")
    assert status == 504 and time.monotonic() - started < 2, error
    status, wait, headers = _create(file_id, "k-slow")
    assert status == 409 and wait["error"]["code"] == "create_not_confirmed"
    assert headers["x-should-retry"] == ["true"] and int(headers["Retry-After"][0]) > 0
    deadline = time.monotonic() + 10
    while not _upstream_batches(gateway, file_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    status, batch, _ = _create(file_id, "k-slow")
    assert status == 200, batch
    assert len(_upstream_batches(gateway, file_id)) == 1
    assert [r["pk"] for r in records("batch")] == [batch["id"]]
    assert_settled("batch")


def test_the_watcher_entry_point_adopts_a_stranded_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the periodic watcher calls for each pending record it finds."""
    from gateway.service import batches
    from gateway.storage.id_map import IdMap

    file_id = _input_file()
    accepted = _timeout_after_accept(monkeypatch)
    assert _create(file_id, None)[0] == 504
    record = IdMap().get(records("batch")[0]["pk"])
    assert record is not None and record.upstream_id is None
    batch = batches.adopt_pending_batch(record)
    assert batch.id == record.id and records("batch")[0]["upstream_id"] == accepted[0]
    assert batches.adopt_pending_batch(record).id == record.id  # a second run changes nothing
    assert len(_upstream_batches(gateway, file_id)) == 1
    assert_settled("batch")
