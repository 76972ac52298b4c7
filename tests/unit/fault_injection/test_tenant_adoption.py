# ruff: noqa: F811  (pytest fixtures imported from create_support are parameters here)
"""Adoption across tenants: a create whose answer was lost adopts only what the gateway can prove
is its own, and nothing a client sends names (or lets adoption find) another tenant's object.

Two virtual keys through the real handlers (moto, the provider simulator, the kept-file store
for Anthropic): a stranded create of one tenant next to another tenant's objects of the same
shape, a forged batch tag left by a create made before clients were refused the key.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.providers import registry
from gateway.providers.kept_file_endpoints import KeptFileEndpoints
from gateway.providers.openai.client import ProviderClient
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.service import adoption
from gateway.storage.id_map import IdMap
from gateway.storage.s3 import s3_client
from handlers import (
    batches_create,
    batches_retrieve,
    files_content,
    files_create,
    files_retrieve,
    keys_generate,
)

from devserver.simulator import Simulator
from tests.unit.conftest import FakeContext, call, event
from tests.unit.fault_injection.create_support import (
    LINE,
    file_event,
    items,
    records,
    sim,  # noqa: F401  (fixture)
)

PK = resources.TABLE_PARTITION_KEY


@pytest.fixture
def gateway(aws: None, sim: Simulator) -> Iterator[Simulator]:
    """moto with the bucket; OpenAI and Azure at the simulator, Anthropic with the kept-file store."""
    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {
            "openai": {"type": "openai", "api_base": sim.openai_api_base},
            "azure": {"type": "azure", "api_base": sim.azure_api_base},
            "anthropic": {"type": "anthropic", "api_base": sim.anthropic_api_base},
        }
    )
    reset_settings()
    registry.reset_clients()
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET,
        SecretString=json.dumps(
            {"openai": "sim-openai-key", "azure": "sim-azure-key", "anthropic": "sim-anthropic-key"}
        ),
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    sim.clear_faults()
    yield sim
    sim.clear_faults()
    registry.reset_clients()
    s3_client.cache_clear()


def _tenant(alias: str) -> str:
    body = {"key_alias": f"{alias}-{uuid.uuid4().hex[:6]}"}
    status, generated, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 200, generated
    return str(generated["key"])


def _by_id(handler: Any, path: str, resource: str, params: dict[str, str], key: str) -> tuple[int, Any, Any]:
    return call(handler, event("GET", path, resource=resource, path_parameters=params, key=key))


def _retrieve_file(file_id: str, key: str) -> tuple[int, Any]:
    status, body, _ = _by_id(
        files_retrieve.handler, f"/v1/files/{file_id}", "/v1/files/{file_id}", {"file_id": file_id}, key
    )
    return status, body


def _content(file_id: str, key: str) -> bytes:
    request = event(
        "GET",
        f"/v1/files/{file_id}/content",
        resource="/v1/files/{file_id}/content",
        path_parameters={"file_id": file_id},
        key=key,
    )
    result = files_content.handler(request, FakeContext())
    assert result["statusCode"] == 200, result
    body = result["body"]
    return base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()


def _retrieve_batch(batch_id: str, key: str) -> tuple[int, Any]:
    status, body, _ = _by_id(
        batches_retrieve.handler,
        f"/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}",
        {"batch_id": batch_id},
        key,
    )
    return status, body


def _line(custom_id: str) -> bytes:
    """A batch line of LINE's exact size, told apart by its custom_id (same length as LINE's 'r0')."""
    assert len(custom_id) == 2
    line = LINE.replace(b'"r0"', f'"{custom_id}"'.encode())
    assert len(line) == len(LINE)
    return line


def _answer_lost(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    """The provider (or the kept store) keeps the file; the gateway never hears back."""
    owner = KeptFileEndpoints if provider == "anthropic" else ProviderClient
    real = owner.create_file

    def keep_then_time_out(self: Any, **kwargs: Any) -> dict[str, Any]:
        real(self, **kwargs)
        raise UpstreamTimeoutError(f"provider '{provider}' did not answer in time")

    monkeypatch.setattr(owner, "create_file", keep_then_time_out)


def _never_reaches(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    """The upload fails before the provider (or the kept store) keeps anything."""
    owner = KeptFileEndpoints if provider == "anthropic" else ProviderClient

    def unavailable(self: Any, **kwargs: Any) -> dict[str, Any]:
        raise UpstreamError(f"provider '{provider}' answered 503")

    monkeypatch.setattr(owner, "create_file", unavailable)


def _upload(filename: str, content: bytes, key: str, provider: str) -> tuple[int, Any]:
    status, body, _ = call(
        files_create.handler, file_event(filename, content, api_key=key, provider=provider)
    )
    return status, body


def _pending_file_id() -> str:
    pending = [r for r in records("file") if not r.get("upstream_id")]
    assert len(pending) == 1, pending
    return str(pending[0][PK])


def assert_every_claim_is_its_owners() -> None:
    """No provider object is attached to another create's gateway id: every reverse item names a
    record whose own upload (its gateway id in the provider file's name) or own create (its id in
    the batch's tag) made the provider object."""
    objects = {item[PK]: item for item in items() if item.get("kind") in {"file", "batch"}}
    for item in items():
        if not item[PK].startswith("upstream#"):
            continue
        record = objects.get(item["gateway_id"])
        if record is None or record["kind"] != "file" or record.get("purpose") != "batch":
            continue  # a batch's output registered under its own new id
        _, provider, upstream_id = item[PK].split("#", 2)
        upstream = registry.client_for(provider).retrieve_file(upstream_id)
        assert upstream["filename"] == adoption.upstream_filename(
            record[PK], json.loads(record["object"])["filename"]
        )


# Files (B13) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
def test_a_stranded_upload_never_adopts_another_tenants_file_of_the_same_name_and_size(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """Both uploads reached the provider and both answers were lost; the other tenant's file is
    the older one (the first a name-and-size match would take). Each adopts its own."""
    victim, attacker = _tenant("victim"), _tenant("attacker")
    _answer_lost(monkeypatch, provider)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 5)  # the victim uploaded 5 s earlier
    assert _upload("requests.jsonl", _line("vv"), victim, provider)[0] == 504
    monkeypatch.setattr(time, "time", real_time)
    victim_file = _pending_file_id()
    assert _upload("requests.jsonl", _line("aa"), attacker, provider)[0] == 504
    [attacker_file] = [r[PK] for r in records("file") if not r.get("upstream_id") and r[PK] != victim_file]
    monkeypatch.undo()

    status, adopted = _retrieve_file(attacker_file, attacker)
    assert status == 200 and adopted["status"] == "processed", adopted
    assert adopted["filename"] == "requests.jsonl"  # the client's own name, not the upstream one
    assert _content(attacker_file, attacker) == _line("aa")
    status, own = _retrieve_file(victim_file, victim)
    assert status == 200 and own["status"] == "processed" and own["filename"] == "requests.jsonl"
    assert _content(victim_file, victim) == _line("vv")
    assert_every_claim_is_its_owners()


@pytest.mark.parametrize("provider", ["openai", "azure", "anthropic"])
def test_an_upload_the_provider_never_got_is_given_up_next_to_another_tenants_stranded_file(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    victim, attacker = _tenant("victim"), _tenant("attacker")
    _answer_lost(monkeypatch, provider)
    assert _upload("requests.jsonl", _line("vv"), victim, provider)[0] == 504
    victim_file = _pending_file_id()
    _never_reaches(monkeypatch, provider)
    assert _upload("requests.jsonl", _line("aa"), attacker, provider)[0] == 502
    [attacker_file] = [r[PK] for r in records("file") if not r.get("upstream_id") and r[PK] != victim_file]
    monkeypatch.undo()

    status, waiting = _retrieve_file(attacker_file, attacker)
    assert status == 200 and waiting["status"] == "uploaded", waiting  # nothing of its own yet
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    status, given_up = _retrieve_file(attacker_file, attacker)
    assert status == 200 and given_up["status"] == "error", given_up
    status, own = _retrieve_file(victim_file, victim)
    assert status == 200 and own["status"] == "processed"
    assert _content(victim_file, victim) == _line("vv")
    assert_every_claim_is_its_owners()


# Batches (B12 and the rule) --------------------------------------------------------------------


def _batch_body(file_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }


def _create_batch(key: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, answer, _ = call(batches_create.handler, event("POST", "/v1/batches", body=body, key=key))
    return status, answer


def test_a_clients_gateway_batch_id_metadata_is_refused_naming_it(gateway: Simulator) -> None:
    tenant = _tenant("tenant")
    status, uploaded = _upload("in.jsonl", LINE, tenant, "openai")
    assert status == 200, uploaded
    before = len(gateway.state.batches)
    status, error = _create_batch(
        tenant, _batch_body(uploaded["id"], metadata={"team": "a", adoption.BATCH_TAG: "batch_someone"})
    )
    assert status == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert (error["error"]["param"], error["error"]["code"]) == ("metadata", "reserved_metadata_key")
    assert adoption.BATCH_TAG in error["error"]["message"]
    assert records("batch") == [] and len(gateway.state.batches) == before  # nothing written or sent


def _stranded_batch(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch, key: str, *, provider_gets_it: bool
) -> str:
    status, uploaded = _upload(f"{uuid.uuid4().hex}.jsonl", LINE, key, "openai")
    assert status == 200, uploaded
    if provider_gets_it:
        real = ProviderClient.create_batch

        def accept_then_time_out(self: ProviderClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            real(self, body, **kwargs)
            raise UpstreamTimeoutError("provider did not answer in time")

        monkeypatch.setattr(ProviderClient, "create_batch", accept_then_time_out)
    else:
        gateway.add_fault(status=503, method="POST", path_contains="/v1/batches")
    status, _ = _create_batch(key, _batch_body(uploaded["id"]))
    assert status == (504 if provider_gets_it else 502)
    monkeypatch.undo()
    gateway.clear_faults()
    [item] = [r for r in records("batch") if not r.get("upstream_id")]
    return str(item[PK])


def _forged_batch(gateway: Simulator, victim_batch: str, claimed_by: str) -> str:
    """A provider batch tagged with the victim's id by another tenant's create (made before the
    key was refused), attached to that tenant's batch: the newest the provider lists."""
    provider = openai.OpenAI(base_url=gateway.openai_api_base, api_key="sim-openai-key", max_retries=0)
    upstream_file = provider.files.create(file=("forged.jsonl", LINE), purpose="batch")
    forged = provider.batches.create(
        input_file_id=upstream_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={adoption.BATCH_TAG: victim_batch},
    )
    assert IdMap().claim_upstream("openai", forged.id, claimed_by) == claimed_by
    return forged.id


def test_a_forged_tag_claimed_by_another_batch_does_not_block_the_victims_adoption(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _tenant("victim")
    victim_batch = _stranded_batch(gateway, monkeypatch, victim, provider_gets_it=True)
    [real_upstream] = [
        b.id
        for b in gateway.state.batches.values()
        if (b.metadata or {}).get(adoption.BATCH_TAG) == victim_batch
    ]
    forged = _forged_batch(gateway, victim_batch, "batch_ofTheAttacker000000000")

    status, batch = _retrieve_batch(victim_batch, victim)
    assert status == 200, batch
    assert batch["id"] == victim_batch and batch["metadata"] is None  # the tag stays the gateway's
    stored = IdMap().get(victim_batch)
    assert stored is not None and stored.upstream_id == real_upstream != forged
    assert IdMap().gateway_id_for("openai", forged) == "batch_ofTheAttacker000000000"


def test_a_forged_tag_never_keeps_a_stranded_create_from_being_given_up(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _tenant("victim")
    victim_batch = _stranded_batch(gateway, monkeypatch, victim, provider_gets_it=False)
    forged = _forged_batch(gateway, victim_batch, "batch_ofTheAttacker000000000")

    status, batch = _retrieve_batch(victim_batch, victim)
    assert status == 200 and batch["status"] == "validating", batch
    monkeypatch.setattr(adoption, "ABANDON_AFTER_SECONDS", 0)
    status, batch = _retrieve_batch(victim_batch, victim)
    assert status == 200 and batch["status"] == "failed", batch
    assert batch["errors"]["data"][0]["code"] == "provider_create_unconfirmed"
    stored = IdMap().get(victim_batch)
    assert stored is not None and stored.upstream_id is None and "pending" not in stored.state
    assert IdMap().gateway_id_for("openai", forged) == "batch_ofTheAttacker000000000"


def test_a_provider_file_another_gateway_id_holds_is_never_attached(
    gateway: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even the record's own upload, once another gateway id holds it (the reverse item), is not
    attached: not by adoption, and not when handed to the attach step directly."""
    from gateway.errors import ServiceUnavailableError
    from gateway.service import files

    tenant = _tenant("tenant")
    _answer_lost(monkeypatch, "openai")
    assert _upload("requests.jsonl", LINE, tenant, "openai")[0] == 504
    monkeypatch.undo()
    record = IdMap().get(_pending_file_id())
    assert record is not None
    upstream = adoption.find_upstream_file(IdMap(), record)
    assert upstream is not None
    assert IdMap().claim_upstream("openai", str(upstream["id"]), "file-ofAnotherKey0000000000") != record.id

    assert adoption.find_upstream_file(IdMap(), record) is None
    status, waiting = _retrieve_file(record.id, tenant)
    assert status == 200 and waiting["status"] == "uploaded", waiting
    with pytest.raises(ServiceUnavailableError):
        files._finish(IdMap(), record, upstream)
    stored = IdMap().get(record.id)
    assert stored is not None and stored.upstream_id is None
