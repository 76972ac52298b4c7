"""Each function's role allows exactly what its code calls: no more, no less.

The evidence: one scenario drives every route through the local gateway (real handlers, moto,
the provider simulator) with the master key and with a virtual key, while tests/infra/
code_usage.py books each AWS call to the function that made it. The roles come from the
synthesized template. Both directions fail: a call no statement allows, and an allowed action
(on a table, index, key prefix, secret or function) that no call needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import pytest
from gateway import routes
from gateway.providers.batch_notes import BatchNotes
from gateway.runtime import resources
from gateway.runtime.settings import get_settings
from gateway.service import books, content_delivery
from gateway.storage.dynamo import dynamodb_client, marshal
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.s3 import s3_client
from gateway.storage.upload_parts import part_key

from devserver.server import SIM_OPENAI_KEY, LocalGateway
from infra import DATA_STACK_NAME
from tests.infra.code_usage import (
    ANY,
    BEDROCK_JOBS,
    BEDROCK_MODEL,
    BEDROCK_ROLE,
    BUCKET,
    BUS,
    IDEMPOTENCY,
    INDEX,
    OBJECTS,
    QUEUE,
    TABLE,
    Usage,
    Use,
    record_usage,
)
from tests.infra.conftest import Synth
from tests.infra.template_tools import (
    as_list,
    functions_by_handler,
    import_value,
    joined,
    role_id_of,
    statements_of_role,
)
from tests.integration.helpers import batch_jsonl
from tests.integration.receiver import webhook_receiver
from tests.integration.tenancy import generate_key, key_api, sdk, upload_input

_OTHERS = (*routes.ASYNC_FUNCTIONS, *routes.SCHEDULED_FUNCTIONS, *routes.QUEUE_CONSUMERS)
FUNCTIONS: dict[str, str] = {
    **{route.name: route.handler for route in routes.ROUTES},
    **{function.name: function.handler for function in _OTHERS},
}
GRANTS: dict[str, frozenset[str]] = {
    **{route.name: route.grants for route in routes.ROUTES},
    **{function.name: function.permissions for function in _OTHERS},
}
# Functions the scenario cannot run, each with the reason. A function missing from the scenario
# and from this list fails test_every_function_is_exercised.
NOT_EXERCISED: dict[str, str] = {
    "transfer_failed": "Lambda calls it after file_transfer's retries are exhausted; provoked in "
    "tests/unit/fault_injection/test_file_transfer.py (retries exhausted, expired event)",
}
# Grants for a failure path the scenario does not provoke, each with the reason.
ERROR_PATHS: dict[tuple[str, Use], str] = {
    (
        "batches_list",
        Use("bedrock:GetModelInvocationJob", BEDROCK_JOBS),
    ): "a retrieve of an unfinished batch the provider's newest 100 jobs miss (service/listing.py)",
    (
        "file_transfer",
        Use("lambda:InvokeFunction", "function:transfer_failed"),
    ): "Lambda's service invokes the on-failure destination with the failed function's role",
    (
        "files_content",
        Use("s3:AbortMultipartUpload", OBJECTS + resources.CACHED_CONTENT_PREFIX),
    ): "a multipart store of large content that fails midway (tests/unit/test_content_cache.py)",
    (
        "webhook_deliver",
        Use("sqs:SendMessage", QUEUE + "dead"),
    ): "an event no attempt delivered within webhook_retry_hours (tests/unit/test_webhook_dispatch.py)",
}
# What Lambda's event source mapping (its poller) does on the consumer's queue with the
# consumer's role: granted by the stack's SqsEventSource, called by no code of the function.
POLLED: dict[str, set[Use]] = {
    consumer.name: {
        Use(action, QUEUE + "deliveries")
        for action in (
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        )
    }
    for consumer in routes.QUEUE_CONSUMERS
}
# The gateway-kept files' failure and adoption paths (Anthropic deployments), each shown elsewhere.
_KEPT = OBJECTS + resources.KEPT_FILES_PREFIX
_ABORT = "a multipart write of a kept file that fails midway (tests/unit/test_kept_files.py)"
_ADOPT_FILE = "a create retried after its kept file was written but not recorded (adoption lists the store)"
_ADOPT_BATCH = (
    "a batch Anthropic made whose create never heard back (tests/integration/test_anthropic_batches.py::"
    "test_a_create_whose_answer_was_lost_is_adopted_not_repeated)"
)
ERROR_PATHS |= {
    **{
        (name, Use("s3:AbortMultipartUpload", _KEPT)): _ABORT
        for name in (
            "files_create",
            "file_transfer",
            "batches_retrieve",
            "batches_list",
            "batches_cancel",
            "batch_watcher",
        )
    },
    ("files_create", Use("s3:GetObject", _KEPT)): _ADOPT_FILE,
    ("files_create", Use("s3:ListBucket", BUCKET)): _ADOPT_FILE,
    ("files_retrieve", Use("s3:ListBucket", BUCKET)): _ADOPT_FILE,
    ("files_delete", Use("s3:GetObject", _KEPT)): _ADOPT_FILE,
    ("files_delete", Use("s3:ListBucket", BUCKET)): _ADOPT_FILE,
    ("file_transfer", Use("s3:DeleteObject", _KEPT)): "a duplicate transfer run deletes its own copy",
    **{
        (name, Use("s3:ListBucket", BUCKET)): _ADOPT_BATCH
        for name in ("batches_create", "batches_retrieve", "batches_list", "batches_cancel")
    },
    ("batches_cancel", Use("s3:PutObject", _KEPT)): "a cancel that finds the batch ended keeps its results",
    ("batch_watcher", Use("bedrock:GetModelInvocationJob", BEDROCK_JOBS)): "a job the provider's pages "
    "missed is retrieved on its own (tests/unit/fault_injection/test_watcher.py::"
    "test_one_list_call_per_page_and_a_retrieve_only_for_what_the_pages_missed)",
}
# Grants whose code lands in another branch: tolerated while no call uses them, checked once one does.
AWAITING_CODE: dict[str, str] = {
    IDEMPOTENCY: "Powertools Idempotency on the create routes (issue 10, helper H2's branch)",
}
ALWAYS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LEADING_KEYS = "dynamodb:LeadingKeys"
ITEM_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
TABLE_ARN = import_value(f"{DATA_STACK_NAME}-TableArn")
BUCKET_ARN = import_value(f"{DATA_STACK_NAME}-BucketArn")
SECRET_EXPORTS = {
    routes.SECRET_MASTER_KEY: f"{DATA_STACK_NAME}-MasterKeySecretArn",
    routes.SECRET_PROVIDER_KEYS: f"{DATA_STACK_NAME}-ProviderKeysSecretArn",
    routes.SECRET_KEY_PEPPER: f"{DATA_STACK_NAME}-KeyPepperSecretArn",
}
# Small enough that a batch's output file is cached in S3 and served by presigned URL.
SCENARIO_INLINE_LIMIT = 64
PART = b'{"custom_id": "p", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


# -- the scenario ------------------------------------------------------------------------


def _as_virtual_key_on_master_routes(gateway: LocalGateway, key: str) -> None:
    """The key management routes refuse a virtual key: they must look it up to know it is one."""
    headers = {"Authorization": f"Bearer {key}"}
    for method, path in (
        ("POST", "/key/generate"),
        ("GET", "/key/info"),
        ("GET", "/key/list"),
        ("POST", "/key/update"),
        ("POST", "/key/delete"),
        ("GET", "/spend/report"),
    ):
        response = httpx.request(method, gateway.url + path, headers=headers, json={}, timeout=30)
        assert response.status_code in (400, 403), (path, response.text)  # validation may come first


@contextmanager
def _slow_batches(gateway: LocalGateway) -> Iterator[None]:
    """Batch phases long enough for a list to find a batch running and a cancel to land."""
    config = gateway.simulator.config
    saved, config.batch_phase_seconds = config.batch_phase_seconds, 5.0
    try:
        yield
    finally:
        config.batch_phase_seconds = saved


def _wait_upstream(gateway: LocalGateway, batch_id: str) -> None:
    """Until the provider (not the gateway) says the batch completed."""
    record = IdMap().get(batch_id)
    assert record is not None and record.upstream_id
    provider = openai.OpenAI(base_url=gateway.simulator.openai_api_base, api_key=SIM_OPENAI_KEY)
    deadline = time.monotonic() + 30
    while provider.batches.retrieve(record.upstream_id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)


BATCH_EVENT_TYPES = [
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "batch.in_progress",
    "batch.progress",
]


@contextmanager
def _listening(client: openai.OpenAI) -> Iterator[None]:
    """An endpoint of the caller for every batch event while the batches run (its first answer a
    500: webhook_deliver queues a retry), deleted after."""
    with webhook_receiver(answers=[500]) as receiver:
        endpoint = client.webhooks.create(url=receiver.url, name="events", event_types=BATCH_EVENT_TYPES)  # type: ignore[arg-type]
        try:
            yield
            deadline = time.monotonic() + 10
            while len(receiver.deliveries) < 2 and time.monotonic() < deadline:  # one failed, one retried
                time.sleep(0.05)
        finally:
            client.webhooks.delete(endpoint.id)


def _wait_anthropic_upstream(gateway: LocalGateway, batch_id: str) -> None:
    """Until the simulated Anthropic says the Message Batch ended."""
    record = IdMap().get(batch_id)
    assert record is not None and record.upstream_id
    deadline = time.monotonic() + 30
    while gateway.simulator.state.anthropic._batch(record.upstream_id).status(time.time()) != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _watcher(gateway: LocalGateway, client: openai.OpenAI) -> None:
    """Batches nobody polls (OpenAI's, Anthropic's: its results kept) and a transfer past its
    deadline: one watcher pass finishes them."""
    assert gateway.watcher is not None
    with _listening(client):
        batch = client.batches.create(
            input_file_id=upload_input(client).id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        kept = sdk(gateway, gateway.master_key, provider="anthropic")
        anthropic_batch = kept.batches.create(
            input_file_id=upload_input(kept).id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        on_bedrock = sdk(gateway, gateway.master_key, provider="bedrock")
        bedrock_batch = on_bedrock.batches.create(
            input_file_id=on_bedrock.files.create(
                file=("w.jsonl", _bedrock_input("claude-3-5-haiku")), purpose="batch"
            ).id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        _wait_upstream(gateway, batch.id)
        _wait_anthropic_upstream(gateway, anthropic_batch.id)
        _wait_for_job(bedrock_batch.id)
        upload_id, now = f"upload_{time.time_ns()}", int(time.time())
        IdMap().put(
            ObjectRecord(
                id=f"file-stale{time.time_ns()}",
                kind="file",
                owner="master",
                provider="openai",
                created_at=now,
                object={
                    "id": "file-stale",
                    "object": "file",
                    "bytes": len(PART),
                    "created_at": now,
                    "filename": "stale.jsonl",
                    "purpose": "batch",
                    "status": "uploaded",
                },
                state={"transfer": {"upload_id": upload_id, "deadline": now - 1}},
            )
        )
        s3_client().put_object(
            Bucket=get_settings().bucket_name, Key=part_key(upload_id, "part_1"), Body=PART
        )
        report = gateway.watcher.run_once()
        assert report["changed"] >= 3 and report["files_finished"] >= 1, report
    # a note a dead create left (no record names it), taken as past its grace: the pass deletes it
    BatchNotes("anthropic").put_pending(f"batch_stray{time.time_ns()}", {"total": 1, "attempted_at": 0})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(books, "NOTE_GRACE_SECONDS", -60.0)
        report = gateway.watcher.run_once()
    assert report["kept_removed"] >= 1, report
    assert client.batches.retrieve(batch.id).status == "completed"
    for kept_batch in (anthropic_batch, bedrock_batch):  # ended, their results kept
        stored = IdMap().get(kept_batch.id)
        assert stored is not None and stored.status == "completed" and stored.object["output_file_id"]


def _files_and_batches(gateway: LocalGateway, client: openai.OpenAI) -> None:
    with _listening(client):
        _files_and_batches_heard(gateway, client)


def _files_and_batches_heard(gateway: LocalGateway, client: openai.OpenAI) -> None:
    uploaded = upload_input(client)
    assert uploaded.id in {f.id for f in client.files.list()}
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert client.files.content(uploaded.id).read()  # small: inline
    # A stored status behind the provider's: the retrieve refreshes and saves it.
    id_map = IdMap()
    record = id_map.get(uploaded.id)
    assert record is not None
    record.object["status"] = "uploaded"
    # written raw: the gateway's own snapshot writes never move a status backwards
    dynamodb_client().put_item(TableName=id_map.table, Item=marshal(record.to_item()))
    assert client.files.retrieve(uploaded.id).status == "processed"
    with _slow_batches(gateway):
        cancelled = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert cancelled.id in {b.id for b in client.batches.list()}  # refreshed upstream
        # stored counts behind the provider's: the cancel records them moved, a batch.progress
        behind = IdMap().get(cancelled.id)
        assert behind is not None
        behind.object["request_counts"] = {"total": 999, "completed": 0, "failed": 0}
        dynamodb_client().put_item(TableName=IdMap().table, Item=marshal(behind.to_item()))
        client.batches.cancel(cancelled.id)
    finished, newest = (
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(2)
    )
    _wait_upstream(gateway, finished.id)
    _wait_upstream(gateway, newest.id)
    # The list is first to see the newest completed, the retrieve the other: each registers an
    # output file and saves the batch.
    assert [(b.id, b.status) for b in client.batches.list(limit=1).data] == [(newest.id, "completed")]
    done = client.batches.retrieve(finished.id)
    assert done.status == "completed" and done.output_file_id, done
    output = done.output_file_id
    assert client.files.retrieve(output).id == output
    # Over the (lowered) inline limit: cached in S3, then served from the cache.
    for _ in range(2):
        response = httpx.get(
            f"{client.base_url}files/{output}/content",
            headers={"Authorization": f"Bearer {client.api_key}"},
            timeout=30,
        )
        assert response.status_code == 302, response.text
    client.files.delete(output)  # and its cached copy
    client.files.delete(uploaded.id)


def _uploads(gateway: LocalGateway, client: openai.OpenAI, usage: Usage) -> None:
    content = batch_jsonl(3)
    upload = client.uploads.create(
        bytes=len(content), filename="u.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    part = client.uploads.parts.create(upload.id, data=content)
    usage.invoke_failures = 1  # the transfer cannot be started: complete rolls back, answers 503
    with pytest.raises(openai.InternalServerError):
        client.uploads.complete(upload.id, part_ids=[part.id])
    completed = client.uploads.complete(upload.id, part_ids=[part.id])
    assert completed.status == "completed"
    assert gateway.wait_for_async(30)  # the transfer
    cancelled = client.uploads.create(
        bytes=len(PART), filename="c.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    client.uploads.parts.create(cancelled.id, data=PART)
    assert client.uploads.cancel(cancelled.id).status == "cancelled"
    # An upload past its hour: the next call marks it expired and removes its parts.
    expiring = client.uploads.create(
        bytes=2 * len(PART), filename="e.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    client.uploads.parts.create(expiring.id, data=PART)
    id_map = IdMap()
    record = id_map.get(expiring.id)
    assert record is not None
    record.object["expires_at"] = int(time.time()) - 1
    id_map.save_object(record)
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(expiring.id, data=PART)


def _anthropic(gateway: LocalGateway, caller: str) -> None:
    """Files the gateway keeps and a Message Batch, through /anthropic/v1."""
    client = sdk(gateway, caller, provider="anthropic")
    claude_lines = batch_jsonl(2, model="claude-sonnet-4-5")  # priced: a budget key can hold for it
    uploaded = client.files.create(file=("input.jsonl", claude_lines, "application/jsonl"), purpose="batch")
    assert client.files.retrieve(uploaded.id).status == "processed"
    assert client.files.content(uploaded.id).read()
    with _slow_batches(gateway):
        cancelled = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(cancelled.id).status == "cancelling"
    first, second = (
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(2)
    )
    assert {first.id, second.id} <= {b.id for b in client.batches.list(limit=3)}  # unfinished: refreshed
    deadline = time.monotonic() + 30
    while client.batches.retrieve(first.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done = client.batches.retrieve(first.id)
    assert done.output_file_id is not None
    assert client.files.content(done.output_file_id).read()
    client.files.delete(done.output_file_id)
    # Through the Uploads API: the transfer writes the kept file.
    content = batch_jsonl(2)
    upload = client.uploads.create(
        bytes=len(content), filename="k.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    part = client.uploads.parts.create(upload.id, data=content)
    assert client.uploads.complete(upload.id, part_ids=[part.id]).status == "completed"
    assert gateway.wait_for_async(30)


def _bedrock_input(model: str, count: int = 100) -> bytes:
    lines = [
        {
            "custom_id": f"b-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"Q{n}"}], "max_tokens": 8},
        }
        for n in range(count)  # 100: Bedrock's minimum
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _wait_for_job(batch_id: str) -> None:
    """Until Bedrock (the simulator, not the gateway) says the job completed."""
    import boto3

    record = IdMap().get(batch_id)
    assert record is not None and record.upstream_id
    bedrock = boto3.client("bedrock")  # AWS_ENDPOINT_URL_BEDROCK: the simulator
    deadline = time.monotonic() + 30
    while bedrock.get_model_invocation_job(jobIdentifier=record.upstream_id)["status"] != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _bedrock(gateway: LocalGateway, caller: str, model: str) -> None:
    """A Bedrock batch inference job per batch, through /bedrock/v1: created (the records written,
    the service role passed), cancelled, listed and retrieved once finished (results read back)."""
    client = sdk(gateway, caller, provider="bedrock")
    uploaded = client.files.create(file=("b.jsonl", _bedrock_input(model)), purpose="batch")
    with _slow_batches(gateway):
        cancelled = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
        assert client.batches.cancel(cancelled.id).status in ("cancelling", "cancelled")
    retrieved, *listed = (
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(3)
    )
    _wait_for_job(retrieved.id)
    done = client.batches.retrieve(retrieved.id)  # finished: its results read back
    assert done.status == "completed" and done.output_file_id is not None
    assert client.files.content(done.output_file_id).read()
    for batch in listed:
        _wait_for_job(batch.id)
    # Two unfinished on the page: one provider list call, which finds both finished.
    page = client.batches.list(limit=2).data
    assert [(b.id, b.status) for b in page] == [(b.id, "completed") for b in reversed(listed)]


def _bedrock_plan(gateway: LocalGateway, caller: str, model: str) -> None:
    """A Bedrock batch over one job's records (the adapter's caps at 100 a job): the watcher,
    invoked by the create, splits it into part files and submits each as a job (records written,
    the role passed, tagged); its pass stops the running jobs after a cancel and merges what
    they kept."""
    from dataclasses import replace

    from gateway.providers.bedrock import client as bedrock_adapter

    assert gateway.watcher is not None
    client = sdk(gateway, caller, provider="bedrock")
    uploaded = client.files.create(file=("plan.jsonl", _bedrock_input(model, 200)), purpose="batch")
    documented = bedrock_adapter.caps_for
    bedrock_adapter.caps_for = lambda deployment, model: replace(
        documented(deployment, model), max_requests=100
    )
    try:
        with _slow_batches(gateway):
            planned = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            # started at once: the watcher invoked for it splits it and submits both parts as jobs
            assert gateway.wait_for_async(30)
            parts = (client.batches.retrieve(planned.id).model_extra or {})["parts"]
            assert [part["status"] for part in parts] == ["running", "running"], parts
            assert client.batches.cancel(planned.id).status == "cancelling"
            gateway.watcher.run_once()  # the running jobs stopped
        deadline = time.monotonic() + 30
        while (stored := IdMap().get(planned.id)) is not None and stored.status != "cancelled":
            assert time.monotonic() < deadline, stored.object
            gateway.watcher.run_once()  # the stopped jobs' results read, merged, settled
            time.sleep(0.1)
    finally:
        bedrock_adapter.caps_for = documented


def _webhooks(client: openai.OpenAI) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        created = client.webhooks.create(url=receiver.url, name="iam", event_types=["batch.completed"])
        assert client.webhooks.retrieve(created.id).id == created.id
        assert [endpoint.id for endpoint in client.webhooks.list().data] == [created.id]
        client.webhooks.update(created.id, name="iam-renamed")
        client.webhooks.rotate_secret(created.id)
        assert client.webhooks.test(created.id, event_type="batch.completed").status_code == 500
        attempts = client.get(f"/webhook_endpoints/{created.id}/deliveries", cast_to=object)["data"]  # type: ignore[index]
        retried = client.post(
            f"/webhook_endpoints/{created.id}/deliveries/{attempts[0]['id']}/retry", cast_to=object, body={}
        )
        assert retried["status_code"] == 200  # type: ignore[index]
        assert client.webhooks.event_types.list().data
        client.webhooks.delete(created.id)


def _paused_plan(client: openai.OpenAI) -> None:
    """A batch over its provider's caps (OpenAI's adapter taking one request per batch): run as
    parts, paused, resumed and cancelled."""
    from dataclasses import replace

    from gateway.providers.openai import client as openai_adapter

    documented = openai_adapter.caps_for
    openai_adapter.caps_for = lambda deployment, model: replace(documented(deployment, model), max_requests=1)
    try:
        planned = client.batches.create(
            input_file_id=upload_input(client).id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    finally:
        openai_adapter.caps_for = documented
    paused = client.post(f"/batches/{planned.id}/pause", cast_to=object, body={})
    assert isinstance(paused, dict) and paused["paused"] is True, paused
    resumed = client.post(f"/batches/{planned.id}/resume", cast_to=object, body={})
    assert isinstance(resumed, dict) and resumed["paused"] is False, resumed
    client.batches.cancel(planned.id)  # the watcher's next pass ends it


def _bad_file(client: openai.OpenAI) -> None:
    """A file with problems: checked (nothing created), then its batch failed at create (the
    record, its settlement, spend entry and event in one transaction)."""
    bad = client.files.create(file=("bad.jsonl", b'{"test": "data"}\n'), purpose="batch")
    body = {"input_file_id": bad.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    checked = client.post("/batches/check", body=body, cast_to=object)
    assert isinstance(checked, dict) and checked["valid"] is False, checked
    failed = client.batches.create(**body)  # type: ignore[arg-type]
    assert failed.status == "failed", failed


def run_scenario(gateway: LocalGateway, usage: Usage) -> None:
    httpx.get(f"{gateway.url}/health", timeout=30).raise_for_status()
    httpx.get(f"{gateway.url}/console", timeout=30).raise_for_status()
    httpx.get(f"{gateway.url}/console/app.js", timeout=30).raise_for_status()
    key = generate_key(gateway, "iam-evidence", metadata={"purpose": "least privilege"}, max_budget=100)
    for params in ({"key": key.key_id}, {"key": key.key}):
        assert key_api(gateway, "GET", "/key/info", params=params).status_code == 200
    assert key_api(gateway, "GET", "/key/list").status_code == 200
    for named in (key.key, key.key_id):  # by the key itself, or by its id (looked up)
        updated = key_api(
            gateway, "POST", "/key/update", json={"key": named, "metadata": {"n": 1}, "max_budget": 90}
        )
        assert updated.status_code == 200, updated.text
    _as_virtual_key_on_master_routes(gateway, key.key)
    for caller in (gateway.master_key, key.key):
        client = sdk(gateway, caller)
        _bad_file(client)
        _paused_plan(client)
        _files_and_batches(gateway, client)
        _uploads(gateway, client, usage)
        _anthropic(gateway, caller)
    # Bedrock: by the master key and by a key without a budget; a foundation model and an
    # inference profile.
    _bedrock(gateway, gateway.master_key, "claude-3-5-haiku")
    _bedrock(gateway, generate_key(gateway, "iam-evidence-bedrock").key, "claude-sonnet-4")
    assert key_api(gateway, "GET", "/spend/report", params={"group_by": "model"}).status_code == 200
    _bedrock_plan(gateway, gateway.master_key, "claude-3-5-haiku")
    _bedrock_plan(gateway, generate_key(gateway, "iam-evidence-plan").key, "claude-sonnet-4")
    _watcher(gateway, sdk(gateway, gateway.master_key))
    _webhooks(sdk(gateway, key.key))
    assert sdk(gateway, gateway.master_key).webhooks.list().data == []  # everyone's: by kind
    deleted = key_api(gateway, "POST", "/key/delete", json={"keys": [key.key]})
    assert deleted.status_code == 200, deleted.text
    by_alias = generate_key(gateway, "iam-evidence-alias")
    deleted = key_api(gateway, "POST", "/key/delete", json={"key_aliases": [by_alias.alias]})
    assert deleted.status_code == 200, deleted.text


@pytest.fixture(scope="module")
def usage(local_gateway: LocalGateway) -> Iterator[Usage]:
    saved = content_delivery.MAX_INLINE_CONTENT_BYTES
    content_delivery.MAX_INLINE_CONTENT_BYTES = SCENARIO_INLINE_LIMIT
    try:
        with record_usage(local_gateway) as recorded:
            run_scenario(local_gateway, recorded)
    finally:
        content_delivery.MAX_INLINE_CONTENT_BYTES = saved
    yield recorded


# -- what the template allows --------------------------------------------------------------


def _scope(
    resource: Any, statement: dict[str, Any], function_names: dict[str, str], template: dict[str, Any]
) -> str:
    conditions = statement.get("Condition", {})
    if resource == TABLE_ARN:
        keys = conditions.get("ForAllValues:StringLike", {}).get(LEADING_KEYS)
        return IDEMPOTENCY if keys == ["idempotency#*"] else TABLE
    if resource == BUCKET_ARN:
        return BUCKET
    for index in resources.TABLE_INDEXES:
        if resource == joined(TABLE_ARN, f"/index/{index}"):
            return INDEX + index
    for prefix in (
        resources.UPLOAD_PARTS_PREFIX,
        resources.CACHED_CONTENT_PREFIX,
        resources.KEPT_FILES_PREFIX,
        resources.PLAN_FILES_PREFIX,
        resources.BEDROCK_INPUT_PREFIX,
        resources.BEDROCK_OUTPUT_PREFIX,
    ):
        if resource == joined(BUCKET_ARN, f"/{prefix}*"):
            return OBJECTS + prefix
    if resource == "*":
        return ANY
    bedrock = _bedrock_scope(resource)
    if bedrock is not None:
        return bedrock
    for capability, export in SECRET_EXPORTS.items():
        if resource == import_value(export):
            return capability
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id = resource["Fn::GetAtt"][0]
        if logical_id in function_names:
            return f"function:{function_names[logical_id]}"
        if str(logical_id).startswith("BedrockBatchRole"):
            return BEDROCK_ROLE
        kind = template["Resources"][logical_id]["Type"]
        if kind == "AWS::Events::EventBus":
            return BUS
        if kind == "AWS::SQS::Queue":
            return QUEUE + ("dead" if "DeadLetters" in logical_id else "deliveries")
        raise AssertionError(f"a resource this test cannot name: {logical_id}")
    raise AssertionError(f"a resource this test cannot name: {resource}")


def _bedrock_scope(resource: Any) -> str | None:
    """A Bedrock ARN (an Fn::Join of the pseudo parameters): the jobs, or a model by its id."""
    if not isinstance(resource, dict) or "Fn::Join" not in resource:
        return None
    text = "".join(part for part in resource["Fn::Join"][1] if isinstance(part, str))
    if text.endswith(":model-invocation-job/*"):
        return BEDROCK_JOBS
    for kind in (":foundation-model/", ":inference-profile/"):
        if kind in text:
            return BEDROCK_MODEL + text.split(kind, 1)[1]
    return None


def allowed(synth: Synth, name: str) -> set[Use]:
    functions = functions_by_handler(synth.api_json)
    function_names = {functions[handler][0]: function for function, handler in FUNCTIONS.items()}
    statements = statements_of_role(synth.api_json, role_id_of(functions[FUNCTIONS[name]][1]))
    uses = set()
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action in ALWAYS:
                continue
            for resource in as_list(statement["Resource"]):
                uses.add(Use(action, _scope(resource, statement, function_names, synth.api_json)))
    return uses


def denials(synth: Synth, name: str) -> list[dict[str, Any]]:
    _, properties = functions_by_handler(synth.api_json)[FUNCTIONS[name]]
    return statements_of_role(synth.api_json, role_id_of(properties), effect="Deny")


def _named(uses: set[Use]) -> list[str]:
    return sorted(f"{use.action} on {use.scope}" for use in uses)


# -- the checks ------------------------------------------------------------------------------


def test_the_recording_understood_every_call(usage: Usage) -> None:
    assert usage.unknown == []
    assert usage.uses, "nothing was recorded"


def test_every_function_is_exercised(usage: Usage) -> None:
    missing = {name for name in FUNCTIONS if not usage.invocations.get(name)} - set(NOT_EXERCISED)
    assert missing == set(), f"exercise these in run_scenario or list them in NOT_EXERCISED: {missing}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_role_allows_exactly_what_the_code_calls(synth: Synth, usage: Usage, name: str) -> None:
    if name in NOT_EXERCISED:
        pytest.skip(NOT_EXERCISED[name])
    used = usage.uses.get(name, set())
    granted = allowed(synth, name)
    unused = {
        use
        for use in granted - used - POLLED.get(name, set())
        if use.scope not in AWAITING_CODE and (name, use) not in ERROR_PATHS
    }
    assert (_named(used - granted), _named(unused)) == ([], []), (
        "(called but not allowed: grant it in routes.py, allowed but never called: drop the grant)"
    )


def test_only_key_management_writes_key_items(synth: Synth, usage: Usage) -> None:
    writers = {name for name, keys in usage.written_keys.items() if any(k.startswith("key#") for k in keys)}
    holders = {name for name, grants in GRANTS.items() if routes.TABLE_KEY_ITEMS in grants}
    assert writers == holders == {"keys_generate", "keys_update", "keys_delete"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_that_writes_without_key_items_is_denied_key_items(synth: Synth, name: str) -> None:
    writes = {use.action for use in allowed(synth, name) if use.scope == TABLE and use.action in ITEM_WRITES}
    denied = denials(synth, name)
    if not writes or routes.TABLE_KEY_ITEMS in GRANTS[name]:
        assert denied == []
        return
    (statement,) = denied
    assert set(as_list(statement["Action"])) == ITEM_WRITES
    assert as_list(statement["Resource"]) == [TABLE_ARN]
    assert statement["Condition"] == {"ForAnyValue:StringLike": {LEADING_KEYS: ["key#*"]}}


def test_every_function_that_talks_to_a_provider_is_denied_key_items(synth: Synth, usage: Usage) -> None:
    provider_facing = {name for name, grants in GRANTS.items() if routes.SECRET_PROVIDER_KEYS in grants}
    assert len(provider_facing) >= 8
    for name in provider_facing:
        writes = {use.action for use in allowed(synth, name) if use.action in ITEM_WRITES}
        conditions = [s["Condition"] for s in denials(synth, name)]
        assert conditions == ([{"ForAnyValue:StringLike": {LEADING_KEYS: ["key#*"]}}] if writes else []), name


def test_idempotency_records_are_the_only_items_the_idempotency_grant_reaches(synth: Synth) -> None:
    holders = {name for name, grants in GRANTS.items() if routes.TABLE_IDEMPOTENCY in grants}
    assert holders == {
        "files_create",
        "batches_create",
        "uploads_create",
        "uploads_complete",
        "keys_generate",
    }
    for name in holders:
        idempotency = {use.action for use in allowed(synth, name) if use.scope == IDEMPOTENCY}
        assert idempotency == {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        }, name


def test_the_recorder_books_calls_no_grant_covers(synth: Synth) -> None:
    """The check can fail: a Query on the table itself is allowed to nobody, a Scan is unknown."""
    from tests.infra import code_usage

    probe = Usage()
    uses = code_usage.uses_of(
        "dynamodb",
        "Query",
        {"TableName": "t", "KeyConditionExpression": "pk = :p"},
        missing=False,
        usage=probe,
        function="files_retrieve",
    )
    assert uses == {Use("dynamodb:Query", TABLE)}
    assert uses - allowed(synth, "files_retrieve") == uses
    code_usage.uses_of("dynamodb", "Scan", {}, missing=False, usage=probe, function="files_retrieve")
    assert probe.unknown == ["files_retrieve: dynamodb Scan"]
