"""The notes on Anthropic batches: written ahead, and claimed by the one batch that matches."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from gateway.providers.batch_notes import CLAIM_WINDOW_SECONDS, BatchNotes
from gateway.storage.s3 import s3_client

BUCKET = "notes-test"


@pytest.fixture
def notes(aws: None) -> Iterator[BatchNotes]:
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield BatchNotes("anthropic", bucket=BUCKET)
    s3_client.cache_clear()


def test_a_note_is_read_back(notes: BatchNotes) -> None:
    assert notes.get("msgbatch_1") is None
    notes.put("msgbatch_1", {"input_file_id": "kfile-1", "total": 2})
    assert notes.get("msgbatch_1") == {"input_file_id": "kfile-1", "total": 2}


def test_the_one_pending_note_of_the_batchs_size_and_time_is_claimed(notes: BatchNotes) -> None:
    notes.put_pending(
        "batch_a", {"metadata": {"gateway_batch_id": "batch_a"}, "total": 3, "attempted_at": 1000}
    )
    notes.put_pending(
        "batch_b", {"metadata": {"gateway_batch_id": "batch_b"}, "total": 5, "attempted_at": 1000}
    )
    assert notes.claim_pending("msgbatch_x", 1000 + CLAIM_WINDOW_SECONDS + 1, 3) is None  # too late
    assert notes.claim_pending("msgbatch_x", 999, 3) is None  # made before the attempt
    claimed = notes.claim_pending("msgbatch_x", 1010, 3)
    assert claimed is not None and claimed["metadata"] == {"gateway_batch_id": "batch_a"}
    assert notes.get("msgbatch_x") == claimed
    notes.forget_pending("batch_a")
    assert notes.claim_pending("msgbatch_y", 1010, 3) is None  # forgotten once its batch has a note


def test_an_ambiguous_match_is_claimed_by_nobody(notes: BatchNotes) -> None:
    for name in ("batch_a", "batch_b"):
        notes.put_pending(name, {"metadata": {"gateway_batch_id": name}, "total": 3, "attempted_at": 1000})
    assert notes.claim_pending("msgbatch_x", 1010, 3) is None
    assert notes.get("msgbatch_x") is None
