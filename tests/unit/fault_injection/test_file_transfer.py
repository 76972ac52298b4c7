"""file_transfer: the provider upload, then the commit of its upstream id (one conditional
write), the reverse item and the parts' removal; a failure ends the file in `error`, also
conditionally. One failure per step, the run replayed as Lambda retries it: never a second,
forgotten provider copy, never a `processed` file turned `error`, never a transfer that
nothing finishes. Plus every failure branch of the transfer (issue 14)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from gateway.runtime.settings import reset_settings
from gateway.service import transfer as transfer_service
from gateway.service import transfer_failure
from gateway.storage import transitions
from gateway.storage.id_map import IdMap
from gateway.storage.s3 import s3_client
from handlers import batches_create, files_retrieve, transfer_failed, uploads_complete

from devserver.server import LocalAsyncRunner
from devserver.simulator import Simulator
from tests.unit.conftest import FakeContext, call, event
from tests.unit.fault_injection.faults import DynamoFaults
from tests.unit.test_uploads import (
    BUCKET,
    CHUNKS,
    stored_parts,
    transfer,
    upload_call,
    uploaded,
)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer_service, "RETRY_BASE_SECONDS", 0.0)


def completed(**body: Any) -> tuple[str, str, list[str]]:
    """A completed upload: (file id, upload id, part ids), its transfer not run yet."""
    upload, part_ids = uploaded(CHUNKS)
    status, done = upload_call(
        uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids, **body}
    )
    assert status == 200, done
    return done["file"]["id"], upload["id"], part_ids


def upstream_files(sim: Simulator) -> int:
    """Live files the provider holds: a copy the gateway forgot would show here."""
    return len(sim.state.files)


def stored(file_id: str) -> Any:
    record = IdMap().get(file_id)
    assert record is not None
    return record


def assert_processed_once(file_id: str, upload_id: str, sim: Simulator, before: int) -> None:
    record = stored(file_id)
    assert record.status == "processed" and record.upstream_id
    assert IdMap().gateway_id_for(record.provider, record.upstream_id) == file_id
    assert upstream_files(sim) == before + 1
    assert stored_parts(upload_id) == []


def file_status(file_id: str) -> dict[str, Any]:
    status, body, _ = call(
        files_retrieve.handler,
        event(
            "GET",
            f"/v1/files/{file_id}",
            resource="/v1/files/{file_id}",
            path_parameters={"file_id": file_id},
        ),
    )
    assert status == 200, body
    return body  # type: ignore[no-any-return]


# One failure per write step -----------------------------------------------------------------
def test_fails_at_noting_the_sent_copy(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    faults.fail("UpdateItem", 1)  # the write-ahead of the provider copy's id
    with pytest.raises(ClientError):  # the function fails: Lambda retries the event
        transfer(file_id)
    assert upstream_files(sim) == before  # the copy nobody noted was deleted first
    assert stored(file_id).status == "uploaded"
    assert transfer(file_id) == "processed"  # the retry
    assert_processed_once(file_id, upload_id, sim, before)


def test_noting_applied_but_its_answer_lost(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    faults.fail("UpdateItem", 1, when="after")
    with pytest.raises(BotoCoreError):
        transfer(file_id)
    assert upstream_files(sim) == before  # deleted: the noted id now names nothing (404)
    assert transfer(file_id) == "processed"  # the retry uploads again
    assert_processed_once(file_id, upload_id, sim, before)


def test_fails_at_commit_and_the_retry_reuses_the_copy(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    faults.fail("UpdateItem", 2)  # the commit
    with pytest.raises(ClientError):
        transfer(file_id)
    noted = transitions.sent_upstream(file_id)
    assert noted in sim.state.files and upstream_files(sim) == before + 1  # kept: it is noted
    assert stored(file_id).status == "uploaded"
    assert transfer(file_id) == "processed"  # the retry: no second upload
    assert_processed_once(file_id, upload_id, sim, before)
    assert stored(file_id).upstream_id == noted


def test_commit_applied_but_its_answer_lost(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    faults.fail("UpdateItem", 2, when="after")
    assert transfer(file_id) == "processed"  # it read the commit back and went on
    assert_processed_once(file_id, upload_id, sim, before)
    assert transfer(file_id) is None


def test_fails_after_commit_at_reverse_item(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    faults.fail("PutItem", 1)
    with pytest.raises(ClientError):
        transfer(file_id)
    record = stored(file_id)
    assert record.status == "processed" and IdMap().gateway_id_for("openai", record.upstream_id) is None
    assert transfer(file_id) is None  # the retry finishes the reverse item and the parts
    assert_processed_once(file_id, upload_id, sim, before)


def test_fails_after_commit_at_deleting_the_parts(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    failures = [1]

    def refuse(**_: Any) -> None:
        if failures:
            failures.pop()
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, "DeleteObjects")

    s3_client().meta.events.register("before-call.s3.DeleteObjects", refuse)
    with pytest.raises(ClientError):
        transfer(file_id)
    assert stored_parts(upload_id) != []
    assert transfer(file_id) is None
    assert_processed_once(file_id, upload_id, sim, before)


@pytest.mark.parametrize("when", ["before", "after"])
def test_fails_at_recording_the_error(
    faults: DynamoFaults, gateway: list[dict[str, Any]], sim: Simulator, when: str
) -> None:
    file_id, upload_id, _ = completed(md5="0" * 32)
    before = upstream_files(sim)
    faults.fail("UpdateItem", 1, when=when)  # type: ignore[arg-type]
    if when == "before":
        with pytest.raises(ClientError):
            transfer(file_id)
        assert transfer(file_id) == "error"  # the retry
    else:
        with pytest.raises(BotoCoreError):
            transfer(file_id)
        assert transfer(file_id) is None  # the error is stored: nothing left to do
    record = stored(file_id)
    assert record.status == "error" and "md5" in record.object["status_details"]
    assert upstream_files(sim) == before and stored_parts(upload_id) == []


# Lambda gives up ----------------------------------------------------------------------------
def test_retries_exhausted_end_the_file_in_error_through_the_on_failure_function(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local server runs the event as Lambda does: 3 attempts, then transfer_failed with
    Lambda's record. The retries reuse the first attempt's copy; transfer_failed deletes it."""
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)

    def throttled(record: Any) -> bool:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "UpdateItem")

    monkeypatch.setattr(transitions, "record_transferred", throttled)
    runner = LocalAsyncRunner()
    runner("file_transfer", {"file_id": file_id})
    assert runner.wait(60)
    record = stored(file_id)
    assert record.status == "error"
    details = record.object["status_details"]
    assert "failed on every attempt (3 attempts): ClientError" in details, details
    assert upstream_files(sim) == before and stored_parts(upload_id) == []
    status, error, _ = call(
        batches_create.handler,
        event(
            "POST",
            "/v1/batches",
            body={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
        ),
    )
    assert status == 400 and error["error"]["code"] == "file_error"


def failure_record(file_id: str, condition: str = "RetriesExhausted") -> dict[str, Any]:
    """As Lambda sends it (EventAgeExceeded: the function never ran, no response)."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": "2026-12-01T12:00:00.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-4d8a-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:file_transfer:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 3 if condition == "RetriesExhausted" else 0,
        },
        "requestPayload": {"file_id": file_id},
    }
    if condition == "RetriesExhausted":
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        record["responsePayload"] = {
            "errorMessage": "Task timed out after 900.00 seconds",
            "errorType": "Sandbox.Timedout",
        }
    return record


def test_an_expired_event_ends_the_file_in_error(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed()
    answer = transfer_failed.handler(failure_record(file_id, "EventAgeExceeded"), FakeContext())
    assert answer == {"file_id": file_id, "status": "error"}
    body = file_status(file_id)
    assert body["status"] == "error" and "before its event expired" in body["status_details"]
    assert stored_parts(upload_id) == []


def test_a_timed_out_transfer_names_the_timeout(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, _, _ = completed()
    assert transfer_failed.handler(failure_record(file_id), FakeContext())["status"] == "error"
    assert "(3 attempts): Sandbox.Timedout" in file_status(file_id)["status_details"]


def test_a_late_failure_record_never_turns_processed_into_error(
    gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, _, _ = completed()
    assert transfer(file_id) == "processed"
    assert transfer_failed.handler(failure_record(file_id), FakeContext())["status"] == "processed"
    assert stored(file_id).status == "processed"


def test_a_failure_record_without_a_file_id_is_dropped(aws: None) -> None:
    assert transfer_failed.handler({"requestContext": {}}, FakeContext()) == {"file_id": None, "status": None}


def test_a_duplicate_run_never_turns_processed_into_error(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B of a duplicated event read the file before run A recorded it; A then deleted the
    parts, so B fails on missing parts: its failure must not overwrite A's success."""
    file_id, upload_id, _ = completed()
    stale = stored(file_id)
    assert transfer(file_id) == "processed"  # run A
    monkeypatch.setattr(IdMap, "get", lambda self, gateway_id: stale)
    assert transfer(file_id) == "processed"  # run B: its failure did not win
    monkeypatch.undo()
    record = stored(file_id)
    assert record.status == "processed" and not record.object.get("status_details")
    assert stored_parts(upload_id) == []


def test_a_duplicate_run_between_note_and_commit_reuses_the_copy(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B arrives after run A noted its copy: B commits A's copy; A's commit then loses
    and must not delete the copy B recorded."""
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    commit = transitions.record_transferred
    runs: list[Any] = []

    def duplicate_first(record: Any) -> bool:
        if not runs:
            runs.append(None)
            runs.append(transfer(file_id))  # run B, start to end
        return commit(record)

    monkeypatch.setattr(transitions, "record_transferred", duplicate_first)
    assert transfer(file_id) == "processed"  # run A
    assert runs[1] == "processed"
    assert_processed_once(file_id, upload_id, sim, before)
    assert stored(file_id).upstream_id in sim.state.files


def test_a_duplicate_run_that_notes_first_wins_and_the_other_copy_goes(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs uploaded; run B noted its copy first: A's copy is deleted, B's recorded."""
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    note = transitions.note_sent
    runs: list[Any] = []

    def duplicate_first(record_id: str, upstream_id: str, replacing: str | None = None) -> bool:
        if not runs:
            runs.append(None)
            runs.append(transfer(file_id))  # run B, start to end
        return note(record_id, upstream_id, replacing)

    monkeypatch.setattr(transitions, "note_sent", duplicate_first)
    assert transfer(file_id) == "processed"  # run A: its copy not needed, the file is processed
    assert runs[1] == "processed"
    assert_processed_once(file_id, upload_id, sim, before)


# A transfer nothing finishes ------------------------------------------------------------------
def past_deadline(file_id: str) -> None:
    id_map = IdMap()
    record = stored(file_id)
    record.state["transfer"]["deadline"] = int(time.time()) - 1
    id_map.save_object(record)


def test_a_stale_transfer_ends_in_error_on_retrieve(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed()
    assert transfer_failure.finish_stale_transfer(file_id) is None  # not stale yet
    assert file_status(file_id)["status"] == "uploaded"
    past_deadline(file_id)
    body = file_status(file_id)
    assert body["status"] == "error" and "did not finish by its deadline" in body["status_details"]
    assert stored_parts(upload_id) == []
    assert transfer(file_id) is None  # a late event finds nothing to do
    batch = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, error, _ = call(batches_create.handler, event("POST", "/v1/batches", body=batch))
    assert status == 400 and error["error"]["code"] == "file_error"  # no longer 409 forever


def test_a_late_event_past_the_deadline_fails_instead_of_uploading(
    gateway: list[dict[str, Any]], sim: Simulator
) -> None:
    file_id, _, _ = completed()
    before = upstream_files(sim)
    past_deadline(file_id)
    assert transfer(file_id) == "error"
    assert upstream_files(sim) == before


def test_a_transfer_that_outlives_its_deadline_deletes_its_copy(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher failed the file while this run was uploading: its commit loses."""
    file_id, _, _ = completed()
    before = upstream_files(sim)
    send = transfer_service._send

    def send_then_watcher(*args: Any) -> Any:
        upstream = send(*args)
        past_deadline(file_id)
        assert transfer_failure.finish_stale_transfer(file_id) == "error"
        return upstream

    monkeypatch.setattr(transfer_service, "_send", send_then_watcher)
    assert transfer(file_id) == "error"
    assert stored(file_id).status == "error" and upstream_files(sim) == before


# Every failure branch (issue 14) ---------------------------------------------------------------
def test_md5_mismatch_leaves_no_provider_copy(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed(md5="0" * 32)
    before = upstream_files(sim)
    assert transfer(file_id) == "error"
    assert "does not match the md5 given" in stored(file_id).object["status_details"]
    assert upstream_files(sim) == before and stored_parts(upload_id) == []


def test_a_provider_5xx_is_retried(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    sim.add_fault(status=500, times=2, method="POST", path_contains="/files")
    assert transfer(file_id) == "processed"
    assert_processed_once(file_id, upload_id, sim, before)


def test_a_provider_5xx_on_every_attempt_ends_in_error(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    sim.add_fault(status=500, times=transfer_service.ATTEMPTS, method="POST", path_contains="/files")
    assert transfer(file_id) == "error"
    assert upstream_files(sim) == before and stored_parts(upload_id) == []


def test_the_provider_upload_is_cancelled_after_a_failure(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TRANSFER_SINGLE_REQUEST_MAX_BYTES", "1000")
    monkeypatch.setenv("GATEWAY_TRANSFER_PART_BYTES", "4000")
    reset_settings()
    file_id, upload_id, _ = completed()
    before, earlier_uploads = upstream_files(sim), set(sim.state.uploads)
    sim.add_fault(status=400, times=1, method="POST", path_contains="/parts")
    assert transfer(file_id) == "error"
    uploads = [u for name, u in sim.state.uploads.items() if name not in earlier_uploads]
    assert [u.status for u in uploads] == ["cancelled"]
    assert upstream_files(sim) == before and stored_parts(upload_id) == []


def test_missing_parts_end_in_error(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, part_ids = completed()
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"upload-parts/{upload_id}/{part_ids[1]}")
    assert transfer(file_id) == "error"
    assert f"parts missing from storage: {part_ids[1]}" in stored(file_id).object["status_details"]


def test_parts_of_another_size_end_in_error(gateway: list[dict[str, Any]], sim: Simulator) -> None:
    file_id, upload_id, part_ids = completed()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"upload-parts/{upload_id}/{part_ids[0]}", Body=b"short")
    assert transfer(file_id) == "error"
    declared = sum(map(len, CHUNKS))
    assert f"the upload declared {declared}" in stored(file_id).object["status_details"]


def test_the_file_deleted_mid_transfer_leaves_no_copy_and_stays_deleted(
    gateway: list[dict[str, Any]], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id, upload_id, _ = completed()
    before = upstream_files(sim)
    send = transfer_service._send

    def send_then_delete(*args: Any) -> Any:
        upstream = send(*args)
        IdMap().delete(stored(file_id))  # the client deletes the file meanwhile
        return upstream

    monkeypatch.setattr(transfer_service, "_send", send_then_delete)
    assert transfer(file_id) == "deleted"
    assert IdMap().get(file_id) is None
    assert upstream_files(sim) == before and stored_parts(upload_id) == []
