"""The isolation matrix: two virtual keys, each endpoint that takes an id x the other key's ids.

Through the official `openai` SDK against the local server. Another key's id must answer
404 exactly as an unknown id does (same envelope, the requested id in the message), lists
never show another key's objects, and the master key sees everyone's and filters by key.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

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
