# ruff: noqa: F811  (pytest fixtures imported from create_support are parameters here)
"""files.create, one injected failure per write step, then the upload replayed with the same
Idempotency-Key as the SDK would: the client gets one file, the provider holds one, and the
table holds no record that no call can finish."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.openai.client import ProviderClient
from gateway.service import adoption
from handlers import files_content, files_create, files_delete, files_list, files_retrieve

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
)


def _upstream_files(sim: Simulator, filename: str) -> list[Any]:
    """The provider's files of a client's `filename` (uploaded as `<gateway file id>.<filename>`)."""
    return [f for f in list(sim.state.files.values()) if f.filename.endswith("." + filename)]


def _create(filename: str, key: str | None, content: bytes = LINE) -> tuple[int, Any, dict[str, list[str]]]:
    return call(files_create.handler, file_event(filename, content, key=key))


def _by_id(handler: Any, method: str, file_id: str, suffix: str = "") -> tuple[int, Any, Any]:
    return call(
        handler,
        event(
            method,
            f"/v1/files/{file_id}{suffix}",
            resource="/v1/files/{file_id}" + suffix,
            path_parameters={"file_id": file_id},
        ),
    )


def _timeout_after_accept(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The provider stores the file, the gateway never hears back (its client times out)."""
    real = ProviderClient.create_file
    accepted: list[str] = []

    def accept_then_time_out(self: ProviderClient, **kwargs: Any) -> dict[str, Any]:
        upstream = real(self, **kwargs)
        if not accepted:
            accepted.append(str(upstream["id"]))
            raise UpstreamTimeoutError(f"provider '{self.name}' did not answer in time")
        return upstream

    monkeypatch.setattr(ProviderClient, "create_file", accept_then_time_out)
    return accepted


def _replayed_once(sim: Simulator, key: str, failed_status: int) -> tuple[str, dict[str, Any]]:
    filename = f"{uuid.uuid4().hex}.jsonl"
    status, first, _ = _create(filename, key)
    assert status == failed_status, first
    status, created, _ = _create(filename, key)
    assert status == 200, created
    again_status, again, _ = _create(filename, key)
    assert (again_status, again["id"]) == (200, created["id"])  # replayed, no third upload
    assert (created["filename"], created["bytes"], created["status"]) == (filename, len(LINE), "processed")
    assert len(_upstream_files(sim, filename)) == 1
    assert [r["pk"] for r in records("file")] == [created["id"]]
    assert_settled("file")
    return filename, created


def test_idempotency_record_put_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    table_faults.fail("put_item", "idempotency#")
    _replayed_once(gateway, "f-idem-put", 503)


def test_pending_record_put_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    table_faults.fail("put_item", "file-")
    _replayed_once(gateway, "f-pending-put", 503)


def test_provider_call_fails(gateway: Simulator) -> None:
    gateway.add_fault(status=500, method="POST", path_contains="/v1/files")
    _replayed_once(gateway, "f-provider-500", 502)


def test_provider_times_out_after_accept(gateway: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = _timeout_after_accept(monkeypatch)
    _replayed_once(gateway, "f-timeout", 504)
    assert records("file")[0]["upstream_id"] == accepted[0]  # adopted, not uploaded again


def test_reverse_claim_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    table_faults.fail("put_item", "upstream#")
    _replayed_once(gateway, "f-claim", 503)


def test_finish_write_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    table_faults.fail("update_item", "file-")
    _replayed_once(gateway, "f-finish", 503)


def test_idempotency_record_save_fails(gateway: Simulator, table_faults: TableFaults) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    table_faults.fail("update_item", "idempotency#")
    assert files_create.handler(file_event(filename, LINE, key="f-save"), FakeContext())["statusCode"] == 503
    status, busy, headers = _create(filename, "f-save")
    assert status == 409 and busy["error"]["code"] == "idempotency_key_in_use"
    assert headers["x-should-retry"] == ["true"]

    filename = f"{uuid.uuid4().hex}.jsonl"
    table_faults.fail("update_item", "idempotency#")
    result = files_create.handler(file_event(filename, LINE, key="f-save-2"), ShortContext())
    assert result["statusCode"] == 503
    time.sleep(0.01)
    status, created, _ = _create(filename, "f-save-2")
    assert status == 200, created
    assert len(_upstream_files(gateway, filename)) == 1
    assert_settled("file")


def test_same_key_with_other_bytes_is_refused_even_after_a_failure(gateway: Simulator) -> None:
    """The key's own record is gone after a 5xx; the write-ahead record still knows the request."""
    filename = f"{uuid.uuid4().hex}.jsonl"
    gateway.add_fault(status=500, method="POST", path_contains="/v1/files")
    assert _create(filename, "f-other")[0] == 502
    other = LINE.replace(b'"r0"', b'"r1"') if isinstance(LINE, bytes) else LINE.replace('"r0"', '"r1"')
    status, error, headers = _create(filename, "f-other", content=LINE + other)
    assert status == 409 and error["error"]["code"] == "idempotency_key_reused"
    assert headers["x-should-retry"] == ["false"]
    assert _upstream_files(gateway, filename) == []


def test_provider_refuses_leaves_nothing(gateway: Simulator) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    gateway.add_fault(status=400, method="POST", path_contains="/v1/files")
    status, error, _ = _create(filename, "f-refused")
    assert status == 400, error
    assert records("file") == []


def test_without_key_a_stranded_file_is_listed_and_adopted_by_retrieve(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    accepted = _timeout_after_accept(monkeypatch)
    assert _create(filename, None)[0] == 504
    status, page, _ = call(files_list.handler, event("GET", "/v1/files"))
    assert status == 200 and [(f["filename"], f["status"]) for f in page["data"]] == [(filename, "uploaded")]
    file_id = page["data"][0]["id"]
    status, error, _ = _by_id(files_content.handler, "GET", file_id, "/content")
    assert status == 409 and error["error"]["code"] == "file_not_ready"
    status, file, _ = _by_id(files_retrieve.handler, "GET", file_id)
    assert status == 200 and file["status"] == "processed"
    assert records("file")[0]["upstream_id"] == accepted[0]
    assert_settled("file")


def test_delete_of_a_stranded_file_deletes_it_at_the_provider(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    _timeout_after_accept(monkeypatch)
    assert _create(filename, None)[0] == 504
    file_id = records("file")[0]["pk"]
    status, deleted, _ = _by_id(files_delete.handler, "DELETE", file_id)
    assert status == 200 and deleted["deleted"] is True
    assert _upstream_files(gateway, filename) == [] and records("file") == []


def test_a_file_the_provider_never_got_is_given_up_as_error(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    filename = f"{uuid.uuid4().hex}.jsonl"
    gateway.add_fault(status=500, method="POST", path_contains="/v1/files")
    assert _create(filename, None)[0] == 502
    file_id = records("file")[0]["pk"]
    assert _by_id(files_retrieve.handler, "GET", file_id)[1]["status"] == "uploaded"
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    status, file, _ = _by_id(files_retrieve.handler, "GET", file_id)
    assert status == 200 and file["status"] == "error" and "Upload it again" in file["status_details"]
    assert "pending" not in records("file")[0].get("state", "")
