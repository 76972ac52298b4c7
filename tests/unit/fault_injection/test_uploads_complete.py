"""uploads.complete: the claim (written ahead), the file record, the transfer's invocation,
the upload marked completed. A failure at any step answers 5xx; the SDK's retry of the same
complete finishes the job: one file, transferred once, the upload completed."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from gateway.runtime import async_invoke
from gateway.storage.id_map import IdMap
from handlers import uploads_cancel, uploads_complete

from devserver.simulator import Simulator
from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.test_uploads import (
    CHUNKS,
    stored_parts,
    transfer,
    upload_call,
    uploaded,
)


def files_of(upload_id: str) -> list[str]:
    """The file records made from this upload."""
    items = boto3.client("dynamodb").scan(TableName=IdMap().table)["Items"]
    return [
        item["pk"]["S"]
        for item in items
        if item.get("kind", {}).get("S") == "file" and upload_id in item.get("state", {}).get("S", "")
    ]


def live_upstream_files(sim: Simulator) -> int:
    return len(sim.state.files)


def complete(upload_id: str, part_ids: list[str]) -> tuple[int, Any]:
    return upload_call(uploads_complete.handler, upload_id, "complete", {"part_ids": part_ids})  # type: ignore[no-any-return]


def assert_finished(invoked: list[dict[str, Any]], upload_id: str, done: Any, sim: Simulator) -> None:
    """One file, the upload completed naming it, its transfer invoked and run once upstream."""
    assert done["status"] == "completed", done
    file_id = done["file"]["id"]
    assert files_of(upload_id) == [file_id]
    assert {"function": "file_transfer", "file_id": file_id} in invoked
    before = live_upstream_files(sim)
    for call in invoked:  # every invocation Lambda would deliver, duplicates included
        transfer(call["file_id"])
    assert live_upstream_files(sim) == before + 1
    record = IdMap().get(file_id)
    assert record is not None and record.status == "processed" and record.upstream_id
    assert stored_parts(upload_id) == []


@pytest.mark.parametrize("when", ["before", "after"])
def test_fails_at_claim(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator, when: str
) -> None:
    upload, part_ids = uploaded(CHUNKS)
    faults.fail("UpdateItem", 1, when=when)  # type: ignore[arg-type]
    status, _ = complete(upload["id"], part_ids)
    assert status >= 500
    status, done = complete(upload["id"], part_ids)
    assert status == 200, done
    assert_finished(gateway, upload["id"], done, sim)


@pytest.mark.parametrize("when", ["before", "after"])
def test_fails_after_claim_at_file_put(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator, when: str
) -> None:
    upload, part_ids = uploaded(CHUNKS)
    faults.fail("PutItem", 1, when=when)  # type: ignore[arg-type]
    status, _ = complete(upload["id"], part_ids)
    assert status >= 500
    status, done = complete(upload["id"], part_ids)
    assert status == 200, done
    assert_finished(gateway, upload["id"], done, sim)


def test_fails_at_transfer_invoke(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    upload, part_ids = uploaded(CHUNKS)

    def refuse(name: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("Lambda Invoke throttled")

    async_invoke.use_local_runner(refuse)
    status, error = complete(upload["id"], part_ids)
    assert status == 503 and error["error"]["code"] == "service_unavailable"
    async_invoke.use_local_runner(lambda name, payload: gateway.append({"function": name, **payload}))
    status, done = complete(upload["id"], part_ids)
    assert status == 200, done
    assert_finished(gateway, upload["id"], done, sim)


@pytest.mark.parametrize("when", ["before", "after"])
def test_fails_at_marking_the_upload_completed(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator, when: str
) -> None:
    upload, part_ids = uploaded(CHUNKS)
    faults.fail("UpdateItem", 2, when=when)  # type: ignore[arg-type]
    status, _ = complete(upload["id"], part_ids)
    assert status >= 500
    status, done = complete(upload["id"], part_ids)
    if when == "after":  # the first attempt did complete it: the retry is told so, as OpenAI does
        assert status == 400 and done["error"]["code"] == "upload_not_pending"
        record = IdMap().get(upload["id"])
        assert record is not None
        done = record.object
    else:
        assert status == 200, done
    assert_finished(gateway, upload["id"], done, sim)


def test_cancel_of_a_stranded_completion_finishes_it_and_refuses(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    """A client that gives up after the 5xx and cancels: the completion already claimed the
    upload, so cancel finishes it (nothing stranded) and answers that it is completed."""
    upload, part_ids = uploaded(CHUNKS)
    faults.fail("PutItem", 1)
    status, _ = complete(upload["id"], part_ids)
    assert status >= 500
    status, error = upload_call(uploads_cancel.handler, upload["id"], "cancel")
    assert status == 400 and error["error"]["code"] == "upload_not_pending"
    assert "completed" in error["error"]["message"]
    record = IdMap().get(upload["id"])
    assert record is not None
    assert_finished(gateway, upload["id"], record.object, sim)


def test_concurrent_completes_make_one_file(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    """A second complete arriving right after the first one's claim finishes the job itself;
    the first then finds its steps done: both answer the same completed upload."""
    from gateway.service import uploads

    upload, part_ids = uploaded(CHUNKS)
    original = uploads.transitions.claim_completion
    second: list[Any] = []

    def claim_then_race(record_id: str, completion: dict[str, Any]) -> bool:
        won = original(record_id, completion)
        if not second:
            second.append(None)
            second.append(complete(upload["id"], part_ids))
        return won

    uploads.transitions.claim_completion = claim_then_race  # type: ignore[assignment]
    try:
        status, done = complete(upload["id"], part_ids)
    finally:
        uploads.transitions.claim_completion = original  # type: ignore[assignment]
    assert status == 200, done
    other_status, other = second[1]
    assert other_status == 200 and other["file"]["id"] == done["file"]["id"], other
    assert_finished(gateway, upload["id"], done, sim)
