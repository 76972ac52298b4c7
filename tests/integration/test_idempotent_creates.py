"""The official SDK's own retries, carrying one Idempotency-Key, through the local server.

openai-python sends no Idempotency-Key by itself (its `_idempotency_header` is None): a client
passes one in `extra_headers`, and the SDK then sends the same header on each automatic retry
(it retries 408, 409, 429 and 5xx). Whatever fails on the first attempt, the client gets one
object and the provider holds one.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import openai
import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.openai.client import ProviderClient

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of, upload_batch_file


def _retrying(gateway: LocalGateway, key: str) -> openai.OpenAI:
    return client(gateway).with_options(max_retries=3, default_headers={"Idempotency-Key": key})


def _simulated_batches(gateway: LocalGateway, tag: str) -> list[Any]:
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return [b for b in state.batches.values() if (b.metadata or {}).get("tag") == tag]


def _simulated_files(gateway: LocalGateway, filename: str) -> list[Any]:
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        # uploaded as `<gateway file id>.<filename>`
        return [f for f in state.files.values() if f.filename.endswith("." + filename)]


@pytest.fixture
def faults(local_gateway: LocalGateway) -> Any:
    assert local_gateway.simulator is not None
    local_gateway.simulator.clear_faults()
    yield local_gateway.simulator
    local_gateway.simulator.clear_faults()


def test_sdk_retries_after_a_provider_error_make_one_batch(local_gateway: LocalGateway, faults: Any) -> None:
    sdk = _retrying(local_gateway, f"it-{uuid.uuid4().hex}")
    input_file = upload_batch_file(client(local_gateway))
    tag = uuid.uuid4().hex
    faults.add_fault(status=500, method="POST", path_contains="/v1/batches", times=2)
    batch = sdk.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tag": tag},
    )
    assert batch.metadata == {"tag": tag}
    assert len(_simulated_batches(local_gateway, tag)) == 1
    assert [b.id for b in client(local_gateway).batches.list(limit=100) if b.metadata == {"tag": tag}] == [
        batch.id
    ]


def test_sdk_retry_after_a_timeout_after_accept_adopts_the_batch(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ProviderClient.create_batch
    timed_out: list[str] = []

    def accept_then_time_out(self: ProviderClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        upstream = real(self, body, **kwargs)
        if not timed_out:
            timed_out.append(str(upstream["id"]))
            raise UpstreamTimeoutError(f"provider '{self.name}' did not answer in time")
        return upstream

    monkeypatch.setattr(ProviderClient, "create_batch", accept_then_time_out)
    sdk = _retrying(local_gateway, f"it-{uuid.uuid4().hex}")
    input_file = upload_batch_file(client(local_gateway))
    tag = uuid.uuid4().hex
    batch = sdk.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tag": tag},
    )
    assert timed_out and [b.id for b in _simulated_batches(local_gateway, tag)] == timed_out
    assert batch.metadata == {"tag": tag}  # the gateway's own tag is not shown
    assert client(local_gateway).batches.retrieve(batch.id).metadata == {"tag": tag}


def test_sdk_retries_after_a_provider_error_make_one_file(local_gateway: LocalGateway, faults: Any) -> None:
    sdk = _retrying(local_gateway, f"it-{uuid.uuid4().hex}")
    filename = f"{uuid.uuid4().hex}.jsonl"
    faults.add_fault(status=502, method="POST", path_contains="/v1/files")
    created = sdk.files.create(
        file=(filename, io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch"
    )
    assert created.filename == filename and created.status == "processed"
    assert len(_simulated_files(local_gateway, filename)) == 1
    again = sdk.files.create(
        file=(filename, io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch"
    )
    assert again.id == created.id


def test_same_key_with_another_body_is_a_409_the_sdk_does_not_retry(local_gateway: LocalGateway) -> None:
    sdk = _retrying(local_gateway, f"it-{uuid.uuid4().hex}")
    sdk.files.create(file=("a.jsonl", io.BytesIO(batch_jsonl(1)), "application/jsonl"), purpose="batch")
    with pytest.raises(openai.ConflictError) as conflict:
        sdk.files.create(file=("a.jsonl", io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch")
    assert error_of(conflict.value)["code"] == "idempotency_key_reused"
    assert conflict.value.response.headers["x-should-retry"] == "false"


def test_sdk_retry_after_a_failed_table_write_adopts_the_batch(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider made the batch, recording it failed (503): the retry finishes the record."""
    from tests.unit.fault_injection.create_support import TableFaults

    input_file = upload_batch_file(client(local_gateway))
    table_faults = TableFaults(monkeypatch)
    table_faults.fail("update_item", "batch_")
    sdk = _retrying(local_gateway, f"it-{uuid.uuid4().hex}")
    tag = uuid.uuid4().hex
    batch = sdk.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tag": tag},
    )
    assert table_faults.unused() == 0  # the first attempt did fail
    assert len(_simulated_batches(local_gateway, tag)) == 1
    assert client(local_gateway).batches.retrieve(batch.id).id == batch.id
