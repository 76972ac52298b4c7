"""Conditional writes on object records (storage/transitions.py): one winner per step."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway.runtime import resources
from gateway.storage import transitions
from gateway.storage.id_map import IdMap, ObjectRecord


def _upload(record_id: str, status: str = "pending", **fields: Any) -> ObjectRecord:
    record = ObjectRecord(
        id=record_id,
        kind="upload",
        owner="master",
        provider="openai",
        created_at=1000,
        object={"id": record_id, "object": "upload", "status": status},
        **fields,
    )
    IdMap().put(record)
    return record


def test_a_status_is_claimed_once(aws: None) -> None:
    _upload("upload_claim")
    assert transitions.current_status("upload_claim") == "pending"
    assert transitions.claim_status("upload_claim", "pending", "completing") is True
    assert transitions.current_status("upload_claim") == "completing"
    # The second claimant of the same step loses, and the status stays the winner's.
    assert transitions.claim_status("upload_claim", "pending", "cancelled") is False
    assert transitions.current_status("upload_claim") == "completing"
    # The status attribute leads during a claim; the stored object is untouched by it.
    stored = IdMap().get("upload_claim")
    assert stored is not None and stored.object["status"] == "pending"


def test_the_status_of_a_missing_record_is_none(aws: None) -> None:
    assert transitions.current_status("upload_missing") is None
    # A claim on a missing record fails its condition: it creates nothing.
    assert transitions.claim_status("upload_missing", "pending", "completing") is False
    assert IdMap().get("upload_missing") is None


def test_a_completion_is_pending_only_while_the_upload_is_completing(aws: None) -> None:
    completion = {"file_id": "file-x", "part_ids": ["part_1"]}
    assert transitions.pending_completion("upload_none") is None  # no record at all
    _upload("upload_done")
    assert transitions.pending_completion("upload_done") is None  # pending, nothing written ahead
    assert transitions.claim_completion("upload_done", completion) is True
    assert transitions.pending_completion("upload_done") == completion
    assert transitions.claim_completion("upload_done", {"file_id": "file-y"}) is False  # claimed once
    # a claimed status without its completion (a claim_status of the same step): nothing to finish
    _upload("upload_bare")
    assert transitions.claim_status("upload_bare", "pending", transitions.COMPLETING) is True
    assert transitions.pending_completion("upload_bare") is None
    # the completion kept after the upload moved on is no longer pending
    assert transitions.claim_status("upload_done", transitions.COMPLETING, "completed") is True
    assert transitions.pending_completion("upload_done") is None


def _file(record_id: str, **fields: Any) -> ObjectRecord:
    return ObjectRecord(
        id=record_id,
        kind="file",
        owner="master",
        provider="openai",
        created_at=1000,
        object={"id": record_id, "object": "file", "status": "uploaded"},
        **fields,
    )


def test_a_transferred_file_is_recorded_once(aws: None) -> None:
    IdMap().put(_file("file-moving", state={"transfer": {"parts": 2}}))
    done = _file("file-moving", upstream_id="file-up-1", ttl=5000, state={"upload_id": "upload_1"})
    done.object = {**done.object, "status": "processed"}
    assert transitions.record_transferred(done) is True

    stored = IdMap().get("file-moving")
    assert stored is not None
    assert (stored.upstream_id, stored.status, stored.ttl) == ("file-up-1", "processed", 5000)
    assert stored.state == {"upload_id": "upload_1"} and stored.object == done.object
    assert transitions.current_status("file-moving") == "processed"

    # A second transfer of the same file (a retried invocation) must not overwrite the first.
    again = _file("file-moving", upstream_id="file-up-2")
    assert transitions.record_transferred(again) is False
    stored = IdMap().get("file-moving")
    assert stored is not None and stored.upstream_id == "file-up-1"


def test_a_file_deleted_during_its_transfer_is_not_brought_back(aws: None) -> None:
    record = _file("file-deleted", upstream_id="file-up-9")
    assert transitions.record_transferred(record) is False
    assert IdMap().get("file-deleted") is None


def test_errors_other_than_a_lost_condition_propagate(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"
    )

    class Failing:
        def update_item(self, **params: Any) -> None:
            assert params["Key"] == {resources.TABLE_PARTITION_KEY: {"S": "upload_x"}}
            raise throttled

    monkeypatch.setattr(transitions, "dynamodb_client", lambda: Failing())
    with pytest.raises(ClientError) as raised:
        transitions.claim_status("upload_x", "pending", "completing")
    assert raised.value is throttled


def test_a_file_that_has_its_provider_copy_takes_no_other_transfer_outcome(aws: None) -> None:
    """`uploaded` with an upstream id (a provider still processing it): the transfer's writes,
    each conditional on no upstream id, leave it alone."""
    IdMap().put(_file("file-at-provider", upstream_id="file-up-0"))
    assert transitions.record_transferred(_file("file-at-provider", upstream_id="file-up-2")) is False
    failed = _file("file-at-provider")
    failed.object = {**failed.object, "status": "error"}
    assert transitions.record_failed(failed) is False
    assert transitions.note_sent("file-at-provider", "file-up-3") is False
    stored = IdMap().get("file-at-provider")
    assert stored is not None and (stored.upstream_id, stored.status) == ("file-up-0", "uploaded")
    assert transitions.sent_upstream("file-at-provider") is None


def test_a_noted_copy_is_read_back_and_nothing_is_noted_for_a_missing_record(aws: None) -> None:
    assert transitions.sent_upstream("file-nowhere") is None
    IdMap().put(_file("file-sending"))
    assert transitions.sent_upstream("file-sending") is None  # nothing sent yet
    assert transitions.note_sent("file-sending", "file-up-7") is True
    assert transitions.sent_upstream("file-sending") == "file-up-7"
    assert transitions.note_sent("file-sending", "file-up-8") is False  # one copy at a time
    assert transitions.note_sent("file-sending", "file-up-8", replacing="file-up-7") is True
    assert transitions.sent_upstream("file-sending") == "file-up-8"


def test_a_finished_completion_leaves_no_completion_behind(aws: None) -> None:
    record = _upload("upload_finishing")
    assert transitions.claim_completion("upload_finishing", {"file_id": "file-z"}) is True
    record.object = {**record.object, "status": "completed"}
    assert transitions.finish_completion(record) is True
    raw = boto3.client("dynamodb").get_item(
        TableName=IdMap().table, Key={resources.TABLE_PARTITION_KEY: {"S": "upload_finishing"}}
    )["Item"]
    assert "completion" not in raw and raw["status"]["S"] == "completed"


def test_put_new_creates_once(aws: None) -> None:
    assert IdMap().put_new(_file("file-once")) is True
    assert IdMap().put_new(_file("file-once", upstream_id="file-up-x")) is False  # it existed
    stored = IdMap().get("file-once")
    assert stored is not None and stored.upstream_id is None
