"""The isolation matrix: two virtual keys, each endpoint that takes an id x the other key's ids.

Through the official `openai` SDK against the local server. Another key's id must answer
404 exactly as an unknown id does (same envelope, the requested id in the message), lists
never show another key's objects, and the master key sees everyone's and filters by key.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, error_of, wait_for_batch
from tests.integration.tenancy import (
    VirtualKey,
    generate_key,
    sdk,
    unknown_id,
    upload_input,
)


@dataclass(frozen=True)
class Tenant:
    key: VirtualKey
    client: openai.OpenAI
    input_file: str
    spare_file: str
    batch: str
    output_file: str
    upload: str

    @property
    def files(self) -> set[str]:
        return {self.input_file, self.spare_file, self.output_file}


def _start_tenant(gateway: LocalGateway, name: str) -> tuple[VirtualKey, openai.OpenAI, str, str, str]:
    key = generate_key(gateway, f"isolation-{name}")
    client = sdk(gateway, key.key)
    input_file = upload_input(client, f"{name}-input.jsonl").id
    spare_file = upload_input(client, f"{name}-spare.jsonl").id
    batch = client.batches.create(
        input_file_id=input_file, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return key, client, input_file, spare_file, batch.id


def _finish_tenant(started: tuple[VirtualKey, openai.OpenAI, str, str, str]) -> Tenant:
    key, client, input_file, spare_file, batch_id = started
    batch = wait_for_batch(client, batch_id)
    assert batch.status == "completed" and batch.output_file_id, batch
    upload = client.uploads.create(
        bytes=len(batch_jsonl(2)), filename="upload.jsonl", mime_type="application/jsonl", purpose="batch"
    ).id
    return Tenant(key, client, input_file, spare_file, batch_id, batch.output_file_id, upload)


@pytest.fixture(scope="module")
def tenants(local_gateway: LocalGateway) -> dict[str, Tenant]:
    started = {name: _start_tenant(local_gateway, name) for name in ("a", "b")}  # both batches run
    return {name: _finish_tenant(s) for name, s in started.items()}


# The matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdOperation:
    name: str
    id_prefix: str  # of an unknown id of the same kind
    targets: Callable[[Tenant], list[str]]  # the victim's ids to try
    call: Callable[[openai.OpenAI, str], object]


def _create_batch(client: openai.OpenAI, file_id: str) -> object:
    return client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def _file_ids(t: Tenant) -> list[str]:
    return [t.input_file, t.output_file]


OPERATIONS = (
    IdOperation("files.retrieve", "file-", _file_ids, lambda c, i: c.files.retrieve(i)),
    IdOperation("files.content", "file-", _file_ids, lambda c, i: c.files.content(i)),
    IdOperation("files.delete", "file-", _file_ids, lambda c, i: c.files.delete(i)),
    IdOperation("batches.create(input_file_id)", "file-", _file_ids, _create_batch),
    IdOperation("batches.retrieve", "batch_", lambda t: [t.batch], lambda c, i: c.batches.retrieve(i)),
    IdOperation("batches.cancel", "batch_", lambda t: [t.batch], lambda c, i: c.batches.cancel(i)),
    IdOperation(
        "uploads.parts.create",
        "upload_",
        lambda t: [t.upload],
        lambda c, i: c.uploads.parts.create(i, data=io.BytesIO(b"{}\n")),
    ),
    IdOperation(
        "uploads.complete",
        "upload_",
        lambda t: [t.upload],
        lambda c, i: c.uploads.complete(i, part_ids=[unknown_id("part_")]),
    ),
    IdOperation("uploads.cancel", "upload_", lambda t: [t.upload], lambda c, i: c.uploads.cancel(i)),
)


@pytest.mark.parametrize("attacker", ["a", "b"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_another_keys_id_answers_exactly_like_an_unknown_id(
    tenants: dict[str, Tenant], operation: IdOperation, attacker: str
) -> None:
    me, victim = tenants[attacker], tenants["b" if attacker == "a" else "a"]

    unknown = unknown_id(operation.id_prefix)
    with pytest.raises(openai.NotFoundError) as missing:
        operation.call(me.client, unknown)
    expected = error_of(missing.value)
    assert unknown in expected["message"]

    for target in operation.targets(victim):
        with pytest.raises(openai.NotFoundError) as foreign:
            operation.call(me.client, target)
        assert error_of(foreign.value) == {
            **expected,
            "message": expected["message"].replace(unknown, target),
        }


def test_the_victims_objects_survive_every_attempt(tenants: dict[str, Tenant]) -> None:
    for tenant in tenants.values():
        for file_id in tenant.files:
            assert tenant.client.files.retrieve(file_id).id == file_id
        assert tenant.client.files.content(tenant.output_file).content  # the output is readable
        assert tenant.client.batches.retrieve(tenant.batch).status == "completed"
        assert tenant.client.uploads.cancel(tenant.upload).status == "cancelled"


# Lists ------------------------------------------------------------------------------------


def test_lists_show_the_callers_objects_and_batch_outputs_and_nothing_else(
    tenants: dict[str, Tenant],
) -> None:
    for name, me in tenants.items():
        other = tenants["b" if name == "a" else "a"]
        files = {f.id for f in me.client.files.list(limit=2)}  # auto-pagination, 2 per page
        batches = {b.id for b in me.client.batches.list(limit=1)}
        assert files == me.files  # the batch's output file included
        assert batches == {me.batch}
        assert not files & other.files and other.batch not in batches


def test_the_master_key_sees_everyone_and_filters_by_key(
    local_gateway: LocalGateway, tenants: dict[str, Tenant]
) -> None:
    master = sdk(local_gateway, local_gateway.master_key)
    every_file = {f.id for f in master.files.list()}
    every_batch = {b.id for b in master.batches.list(limit=100)}
    for tenant in tenants.values():
        assert tenant.files <= every_file and tenant.batch in every_batch
        by_key = {"key_id": tenant.key.key_id}
        assert {f.id for f in master.files.list(limit=2, extra_query=by_key)} == tenant.files
        assert {b.id for b in master.batches.list(limit=1, extra_query=by_key)} == {tenant.batch}
        for file_id in tenant.files:  # and reads any of them
            assert master.files.retrieve(file_id).id == file_id


def test_only_the_master_key_may_filter_by_key(tenants: dict[str, Tenant]) -> None:
    a, b = tenants["a"], tenants["b"]
    for call in (
        lambda: a.client.files.list(extra_query={"key_id": b.key.key_id}),
        lambda: a.client.batches.list(extra_query={"key_id": b.key.key_id}),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            call()
        assert error_of(refused.value)["param"] == "key_id"


# Provider limits -----------------------------------------------------------------------------


def test_a_key_limited_to_openai_gets_403_naming_azure(local_gateway: LocalGateway) -> None:
    limited = generate_key(local_gateway, "openai-only", providers=["openai"])
    plain, prefixed = sdk(local_gateway, limited.key), sdk(local_gateway, limited.key, provider="azure")
    azure_header = {"custom-llm-provider": "azure"}
    own = upload_input(plain)  # on openai, the default
    attempts: dict[str, Callable[[], object]] = {
        "prefix files.retrieve(own id)": lambda: prefixed.files.retrieve(own.id),
        "header files.content(own id)": lambda: plain.files.content(own.id, extra_headers=azure_header),
        "prefix files.delete(unknown id)": lambda: prefixed.files.delete(unknown_id("file-")),
        "prefix files.create": lambda: upload_input(prefixed),
        "prefix files.list": lambda: prefixed.files.list(),
        "prefix batches.list": lambda: prefixed.batches.list(),
        "header files.create": lambda: upload_input(plain, extra_headers=azure_header),
        "header files.list": lambda: plain.files.list(extra_headers=azure_header),
        "field files.create": lambda: upload_input(plain, extra_body={"custom_llm_provider": "azure"}),
        "query files.list": lambda: plain.files.list(extra_query={"provider": "azure"}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(openai.PermissionDeniedError) as denied:
            attempt()
        error = error_of(denied.value)
        assert "'azure'" in error["message"], (name, error)
        assert error["code"] == "provider_not_allowed", (name, error)

    allowed = upload_input(sdk(local_gateway, limited.key, provider="openai"))
    assert plain.files.retrieve(allowed.id).id == allowed.id
    assert plain.files.retrieve(own.id).id == own.id


# Nothing a client sends names a gateway id ---------------------------------------------------


def _bedrock_lines(tag: str, count: int = 100) -> bytes:
    """A Bedrock batch input (100 records: Bedrock's minimum), its custom_ids and prompts the tenant's."""
    lines = [
        {
            "custom_id": f"{tag}-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "claude-3-5-haiku",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"{tag} question {n}"}],
            },
        }
        for n in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _bedrock_batch(client: openai.OpenAI, tag: str, **extra: Any) -> openai.types.Batch:
    uploaded = client.files.create(file=(f"{tag}.jsonl", _bedrock_lines(tag)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **extra
    )


def _bedrock_jobs_named_after(batch_id: str) -> list[str]:
    from gateway.providers.bedrock import jobs as bedrock_jobs

    bedrock = boto3.client("bedrock", region_name="us-east-1")
    token = bedrock_jobs.job_token(batch_id)
    summaries = bedrock.list_model_invocation_jobs(nameContains=token)["invocationJobSummaries"]
    return [str(job["jobArn"]).rsplit("/", 1)[1] for job in summaries if job["jobName"] == token]


def _bedrock_records_of(batch_id: str) -> bytes:
    """The records the gateway wrote for a batch's job (what the job runs)."""
    from gateway.providers.bedrock import client as bedrock
    from gateway.providers.bedrock import jobs as bedrock_jobs
    from gateway.providers.registry import client_for

    adapter = client_for("bedrock")
    assert isinstance(adapter, bedrock.BedrockClient)
    key = adapter._input_prefix(bedrock_jobs.job_token(batch_id)) + bedrock.RECORDS_FILE
    return bytes(adapter._s3.get_object(Bucket=adapter._bucket, Key=key)["Body"].read())


def test_a_tenant_naming_another_tenants_bedrock_batch_in_metadata_is_refused_and_changes_nothing(
    local_gateway: LocalGateway,
) -> None:
    """The attack: metadata={"gateway_batch_id": <the victim's batch id>} used to name the
    victim's Bedrock job, so the attacker's records replaced the victim's (the victim's job ran
    the attacker's prompts, billed to the victim)."""
    victim = sdk(local_gateway, generate_key(local_gateway, "bedrock-victim").key, provider="bedrock")
    attacker = sdk(local_gateway, generate_key(local_gateway, "bedrock-attacker").key, provider="bedrock")
    target = _bedrock_batch(victim, "victim")
    records = _bedrock_records_of(target.id)
    assert b"victim question 0" in records

    with pytest.raises(openai.BadRequestError) as refused:
        _bedrock_batch(attacker, "attacker", metadata={"gateway_batch_id": target.id})
    error = error_of(refused.value)
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "metadata",
        "reserved_metadata_key",
    )
    assert "gateway_batch_id" in error["message"]
    assert _bedrock_records_of(target.id) == records  # the victim's job still runs its own prompts
    assert _bedrock_jobs_named_after(target.id) == [_job_of(target.id)]  # one job, the victim's
    assert victim.batches.retrieve(target.id).metadata is None


def _job_of(batch_id: str) -> str:
    from gateway.storage.id_map import IdMap

    record = IdMap().get(batch_id)
    assert record is not None and record.upstream_id is not None
    return record.upstream_id


def test_one_tenant_runs_one_bedrock_file_twice_with_a_full_metadata_map(local_gateway: LocalGateway) -> None:
    """16 pairs of the client's leave no room for the gateway's tag: the job still takes its name
    from the gateway's id, so the second create makes a second job instead of meeting the first."""
    tenant = sdk(local_gateway, generate_key(local_gateway, "bedrock-full-metadata").key, provider="bedrock")
    full = {f"k{n}": f"v{n}" for n in range(16)}
    uploaded = tenant.files.create(file=("twice.jsonl", _bedrock_lines("twice")), purpose="batch")
    made = [
        tenant.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=full
        )
        for _ in range(2)
    ]
    assert made[0].id != made[1].id and all(batch.metadata == full for batch in made)
    jobs = [_bedrock_jobs_named_after(batch.id) for batch in made]
    assert jobs == [[_job_of(made[0].id)], [_job_of(made[1].id)]] and jobs[0] != jobs[1]


def test_the_bedrock_adapter_names_a_job_after_the_gateway_id_it_is_given_never_the_metadata(
    local_gateway: LocalGateway,
) -> None:
    from gateway.providers.registry import client_for
    from gateway.storage.id_map import IdMap

    victim = sdk(local_gateway, generate_key(local_gateway, "bedrock-victim").key, provider="bedrock")
    target = _bedrock_batch(victim, "victim")
    records = _bedrock_records_of(target.id)
    uploaded = victim.files.create(file=("other.jsonl", _bedrock_lines("other")), purpose="batch")
    upstream_file = IdMap().get(uploaded.id)
    assert upstream_file is not None
    own_id = unknown_id("batch_")
    made = client_for("bedrock").create_batch(
        {
            "input_file_id": upstream_file.upstream_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"gateway_batch_id": target.id},  # whatever the body says
        },
        gateway_id=own_id,
    )
    assert _bedrock_jobs_named_after(own_id) == [made["id"]] != [_job_of(target.id)]
    assert _bedrock_records_of(target.id) == records and b"other question 0" in _bedrock_records_of(own_id)
