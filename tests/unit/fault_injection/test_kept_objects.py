"""What the gateway keeps in its bucket converges: a note a dead create left, and a kept file no
record names, are found by the books (`stray_notes`, `unnamed_kept_files`) past their grace and
removed by one watcher pass; a note whose create may still adopt, or that a create writes again
meanwhile, and a kept file a record names (even one named after the sweep listed it), never are.

Through the real handlers on moto, with Anthropic at the provider simulator (its notes and files
kept in the bucket). Time is driven: the clock is moved past the graces, never waited for.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers import registry
from gateway.providers.anthropic.client import AnthropicClient
from gateway.providers.batch_notes import BatchNotes
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.service import books, kept_sweep, translate, watcher
from gateway.service.deadline import Deadline
from gateway.service.plan import merged_files
from gateway.storage.id_map import IdMap
from gateway.storage.kept_objects import KeptBucket
from gateway.storage.s3 import s3_client
from handlers import batches_create, files_create

from devserver.simulator import Simulator
from tests import books_check
from tests.unit.conftest import MASTER_KEY, call, event
from tests.unit.fault_injection.create_support import file_event, records
from tests.unit.fault_injection.create_support import sim as sim

DEPLOYMENT = "anthropic"
LINE = (
    json.dumps(
        {
            "custom_id": "r0",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
        }
    ).encode()
    + b"\n"
)
PAST_NOTE_GRACE = books.NOTE_GRACE_SECONDS + 60
PAST_FILE_GRACE = books.KEPT_FILE_GRACE_SECONDS + 60


@pytest.fixture
def gateway(aws: None, sim: Simulator) -> Iterator[Simulator]:
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {DEPLOYMENT: {"type": "anthropic", "api_base": sim.anthropic_api_base}}
    )
    reset_settings()
    registry.reset_clients()
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET,
        SecretString=json.dumps({DEPLOYMENT: "sim-anthropic-key"}),
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield sim
    registry.reset_clients()
    s3_client.cache_clear()


def keys(folder: str) -> list[str]:
    prefix = f"{resources.KEPT_FILES_PREFIX}{DEPLOYMENT}/{folder}"
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.DEFAULT_BUCKET_NAME, Prefix=prefix)
    return [str(item["Key"]) for item in listed.get("Contents") or ()]


def upload() -> str:
    status, body, _ = call(files_create.handler, file_event("in.jsonl", LINE, provider=DEPLOYMENT))
    assert status == 200, body
    return str(body["id"])


def create_that_dies_after_its_note(monkeypatch: pytest.MonkeyPatch) -> str:
    """A create whose process dies once its note is written ahead, before the provider hears of
    it (the gateway sees a timeout); it is never retried. Its gateway batch id."""
    file_id = upload()
    real = AnthropicClient._json

    def dies_before_the_post(self: AnthropicClient, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path.endswith("/batches"):
            raise UpstreamTimeoutError("the create's process died")
        return real(self, method, path, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(AnthropicClient, "_json", dies_before_the_post)
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        status, answer, _ = call(
            batches_create.handler, event("POST", "/v1/batches", body=body, key=MASTER_KEY)
        )
    assert status >= 500, answer
    [record] = records("batch")
    return str(record[resources.TABLE_PARTITION_KEY])


def pending_note_key(gateway_id: str) -> str:
    return BatchNotes(DEPLOYMENT).pending_prefix + gateway_id + ".json"


def test_a_dead_creates_note_is_reported_then_removed_by_one_pass(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_id = create_that_dies_after_its_note(monkeypatch)
    note = pending_note_key(gateway_id)
    assert keys("batch-pending/") == [note]
    assert "stray_notes" not in books.audit()  # its create may still be adopted: its own
    with books_check.clock_forward(PAST_NOTE_GRACE) as now:
        with monkeypatch.context() as patch:  # a pass that gives the create up, sweeping nothing
            patch.setattr(kept_sweep, "sweep", lambda *args, **kwargs: kept_sweep.SweepReport())
            watcher.run_pass(Deadline.after(60))
        assert books.audit(now=now()).get("stray_notes") == [note]
        report = watcher.run_pass(Deadline.after(60))
        assert report.kept_removed == 1
        assert "stray_notes" not in books.audit(now=now())
    assert keys("batch-pending/") == []
    with books_check.clock_forward(PAST_NOTE_GRACE):  # repeated: nothing left to do
        assert watcher.run_pass(Deadline.after(60)).kept_removed == 0


def test_a_note_whose_create_may_still_adopt_is_never_removed(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the grace, yet its record is still pending (no pass gave it up yet): kept."""
    gateway_id = create_that_dies_after_its_note(monkeypatch)
    with books_check.clock_forward(PAST_NOTE_GRACE) as now:
        report = kept_sweep.sweep(IdMap(), Deadline.after(60))
        assert report.removed == 0 and report.listed == 2  # the note and the input file
        assert "stray_notes" not in books.audit(now=now())
    assert keys("batch-pending/") == [pending_note_key(gateway_id)]


def test_a_note_written_again_after_the_listing_is_never_removed(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep decided on the note it listed; a create writes the note again before the delete
    (a part submitted again under the same id): the conditional delete leaves the new note."""
    gateway_id = create_that_dies_after_its_note(monkeypatch)
    real_delete = KeptBucket.delete_if_unchanged

    def written_again_first(self: KeptBucket, kept: Any) -> bool:
        BatchNotes(DEPLOYMENT).put_pending(gateway_id, {"total": 1, "attempted_at": int(time.time())})
        return real_delete(self, kept)

    with books_check.clock_forward(PAST_NOTE_GRACE):
        with monkeypatch.context() as patch:
            patch.setattr(kept_sweep, "sweep", lambda *args, **kwargs: kept_sweep.SweepReport())
            watcher.run_pass(Deadline.after(60))  # the record is given up
        monkeypatch.setattr(KeptBucket, "delete_if_unchanged", written_again_first)
        assert kept_sweep.sweep(IdMap(), Deadline.after(60)).removed == 0
    assert BatchNotes(DEPLOYMENT).get_pending(gateway_id) is not None
    monkeypatch.undo()  # the pass after the test removes it: the record is given up for good


def merged(batch_id: str) -> str:
    file_id = merged_files.keep(DEPLOYMENT, batch_id, "output", io.BytesIO(b'{"id": "line"}\n'))
    assert file_id is not None
    return file_id


def kept_file_key(file_id: str) -> str:
    return f"{resources.KEPT_FILES_PREFIX}{DEPLOYMENT}/files/{file_id}"


def test_an_unnamed_merged_file_is_removed_after_the_grace_a_named_one_never(gateway: Simulator) -> None:
    unnamed, named = merged("batch_merge_lost"), merged("batch_merge_named")
    named_as = translate.register_provider_file(
        IdMap(), DEPLOYMENT, named, owner="master", purpose=translate.OUTPUT_PURPOSE
    )
    with books_check.clock_forward(books.KEPT_FILE_GRACE_SECONDS - 60) as now:  # within the grace
        assert "unnamed_kept_files" not in books.audit(now=now())
        assert kept_sweep.sweep(IdMap(), Deadline.after(60)).removed == 0
    with books_check.clock_forward(PAST_FILE_GRACE) as now:
        assert books.audit(now=now()).get("unnamed_kept_files") == [kept_file_key(unnamed)]
        assert kept_sweep.sweep(IdMap(), Deadline.after(60)).removed == 1
        assert "unnamed_kept_files" not in books.audit(now=now())
        assert kept_sweep.sweep(IdMap(), Deadline.after(60)).removed == 0  # repeated: nothing more
    assert keys("files/") == [kept_file_key(named)]
    record = IdMap().get(named_as)
    assert record is not None and record.upstream_id == named


def test_a_file_named_after_the_listing_is_never_removed(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep listed the merged file unnamed; its batch's step names it before the removal."""
    file_id = merged("batch_named_late")
    real_remove = kept_sweep._remove
    named_as: list[str] = []

    def named_first(id_map: IdMap, bucket: KeptBucket, kept: Any, now: float) -> bool:
        named_as.append(translate.register_provider_file(id_map, DEPLOYMENT, file_id, owner="master"))
        return real_remove(id_map, bucket, kept, now)

    monkeypatch.setattr(kept_sweep, "_remove", named_first)
    with books_check.clock_forward(PAST_FILE_GRACE) as now:
        assert kept_sweep.sweep(IdMap(), Deadline.after(60)).removed == 0
        assert "unnamed_kept_files" not in books.audit(now=now())
    assert keys("files/") == [kept_file_key(file_id)] and len(named_as) == 1


def test_a_deleted_files_kept_object_goes_with_it(gateway: Simulator) -> None:
    """files_delete removes the kept object before the record: nothing is left to sweep."""
    from handlers import files_delete

    file_id = upload()
    [kept] = keys("files/")
    status, body, _ = call(
        files_delete.handler,
        event(
            "DELETE",
            f"/v1/files/{file_id}",
            resource="/v1/files/{file_id}",
            path_parameters={"file_id": file_id},
        ),
    )
    assert status == 200, body
    assert kept not in keys("files/")
    with books_check.clock_forward(PAST_FILE_GRACE) as now:
        assert "unnamed_kept_files" not in books.audit(now=now())
