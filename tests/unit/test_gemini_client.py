"""The Gemini adapter against the simulator's Gemini form, time driven by a SteppedClock: a batch
through its states, results read back under the client's custom_ids, cancel midway, expiry,
quota, keys and errors mapped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.errors import ConflictError, UpstreamError, UpstreamRequestError
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused
from gateway.providers.gemini.client import GeminiClient

from devserver.simulator import Simulator, SteppedClock
from devserver.simulator.limits import SimulatorLimits
from tests.unit import stepped_simulator

PHASE = 10.0
MODEL = "gemini-2.5-flash"

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


def line(custom_id: str, text: str = "hi", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": text}], **body},
    }


def adapter(sim: Simulator, keys: list[str] | None = None) -> GeminiClient:
    keys = keys or ["sim-gemini-key"]
    deployment = ProviderDeployment(name="gemini", type="gemini", api_base=sim.gemini_api_base)
    served: list[bool] = []

    def key_source(refresh: bool) -> str:
        served.append(refresh)
        return keys[min(len(served), len(keys)) - 1]

    return GeminiClient(deployment, key_source, timeout=5)


def create(
    client: GeminiClient, lines: list[dict[str, Any]], gateway_id: str = "batch_1", **extra: Any
) -> dict[str, Any]:
    content = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
    uploaded = client.create_file(filename="in.jsonl", content=content, purpose="batch")
    body = {
        "input_file_id": uploaded["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **extra,
    }
    return client.create_batch(body, gateway_id=gateway_id)


def lines_of(client: GeminiClient, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    raw = client.file_content(file_id).decode().splitlines()
    return {item["custom_id"]: item for item in map(json.loads, raw)}


def test_a_batch_runs_through_its_states_and_its_results_keep_the_custom_ids(
    sim: Simulator, clock: SteppedClock, kept_bucket: None
) -> None:
    client = adapter(sim)
    batch = create(
        client,
        [line("first", "Hello"), line("second", "Bye", max_tokens=50), line("third-sim-fail-server_error")],
        metadata={"gateway_batch_id": "batch_1"},
    )
    assert batch["status"] == "validating" and batch["request_counts"]["total"] == 3
    assert batch["metadata"] == {"gateway_batch_id": "batch_1"} and batch["model"] == MODEL
    [upstream] = sim.gemini.batches.values()
    assert upstream.display_name == "gw-batch_1"
    assert upstream.lines[1].request["generationConfig"] == {"maxOutputTokens": 50}
    clock.step(PHASE * 1.5)
    assert client.retrieve_batch(batch["id"])["status"] == "in_progress"
    clock.step(PHASE)
    done = client.retrieve_batch(batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    output = lines_of(client, done["output_file_id"])
    assert sorted(output) == ["first", "second"]
    completion = output["first"]["response"]["body"]
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"].endswith("to: Hello")
    assert completion["usage"]["completion_tokens_details"]["reasoning_tokens"] == 16
    errors = lines_of(client, done["error_file_id"])
    assert errors["third-sim-fail-server_error"]["response"]["status_code"] == 500
    assert errors["third-sim-fail-server_error"]["response"]["body"]["error"]["code"] == "server_error"
    assert client.retrieve_batch(batch["id"]) == done  # the files are kept once
    assert not sim.gemini.files  # the input and responses files at Gemini are deleted once kept


def test_a_cancel_midway_keeps_the_requests_that_ran(
    sim: Simulator, clock: SteppedClock, kept_bucket: None
) -> None:
    client = adapter(sim)
    batch = create(client, [line(f"r{n}") for n in range(4)])
    clock.step(PHASE * 1.6)  # two of four requests have run
    cancelling = client.cancel_batch(batch["id"])
    assert cancelling["status"] == "cancelled"
    assert cancelling["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert sorted(lines_of(client, cancelling["output_file_id"])) == ["r0", "r1"]
    assert cancelling["error_file_id"] is None
    with pytest.raises(ConflictError):
        client.cancel_batch(batch["id"])


def test_an_expired_request_gets_an_error_line_and_the_batch_expires(
    sim: Simulator, clock: SteppedClock, kept_bucket: None
) -> None:
    client = adapter(sim)
    batch = create(client, [line("ok"), line("late-sim-expire")])
    clock.step(PHASE * 3)
    expired = client.retrieve_batch(batch["id"])
    assert expired["status"] == "expired"
    assert expired["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert lines_of(client, expired["error_file_id"])["late-sim-expire"]["error"]["code"] == "batch_expired"


def test_a_line_gemini_cannot_take_is_a_400_naming_it_before_anything_is_sent(
    sim: Simulator, kept_bucket: None
) -> None:
    client = adapter(sim)
    with pytest.raises(UpstreamRequestError) as refused:
        create(client, [line("a"), line("b", logprobs=True)])
    assert refused.value.status_code == 400 and refused.value.code == "untranslatable_line"
    assert refused.value.message.startswith("line 2: body.logprobs")
    assert not sim.gemini.batches and not sim.gemini.files


def test_the_quota_refuses_a_create_and_forgets_its_pending_note(
    sim: Simulator, clock: SteppedClock, kept_bucket: None
) -> None:
    client = adapter(sim)
    sim.set_limits(SimulatorLimits(concurrent_jobs=1))
    create(client, [line("a")], gateway_id="batch_first")
    with pytest.raises(QuotaRefused) as refused:
        create(client, [line("b")], gateway_id="batch_second")
    assert refused.value.status_code == 429
    assert client.notes.get_pending("batch_second") is None
    clock.step(PHASE * 3)  # the first has ended: the same create now passes
    assert create(client, [line("b")], gateway_id="batch_second")["status"] == "validating"


def test_a_rotated_key_is_read_again_and_a_wrong_or_missing_key_is_the_gateways_error(
    sim: Simulator, kept_bucket: None
) -> None:
    rotated = adapter(sim, ["old-key", "sim-gemini-key"])
    assert create(rotated, [line("a")])["status"] == "validating"  # the upload sent twice
    with pytest.raises(UpstreamError) as rejected:
        adapter(sim, ["wrong-key"]).list_batches(limit=5)
    assert rejected.value.code == "upstream_authentication_failed"
    with pytest.raises(UpstreamError) as unconfigured:
        adapter(sim, [""]).list_batches(limit=5)
    assert unconfigured.value.code == "provider_not_configured"
    with pytest.raises(UpstreamRequestError) as missing:
        rotated.retrieve_batch("nosuchbatch")
    assert missing.value.status_code == 404


def test_list_pages_the_gateway_batches_only(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim)
    ids = [create(client, [line("a")], gateway_id=f"batch_{n}")["id"] for n in range(3)]
    foreign = sim.gemini.create_batch(
        MODEL,
        {"batch": {"displayName": "someone else", "inputConfig": {"fileName": next(iter(sim.gemini.files))}}},
    )
    first = client.list_batches(limit=2)
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = client.list_batches(limit=2, after=first["last_id"])
    assert [b["id"] for b in rest["data"]] == [ids[0]] and not rest["has_more"]
    assert foreign["name"].removeprefix("batches/") not in {b["id"] for b in first["data"] + rest["data"]}


def test_one_input_size_cap_everywhere_the_gateway_checks_it() -> None:
    from gateway.providers import caps
    from gateway.providers.gemini import client as gemini

    assert caps.DOCUMENTED["gemini"].max_bytes.value == gemini.MAX_INPUT_BYTES


def test_an_id_that_is_not_a_gemini_batch_id_reaches_nothing(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim)
    for odd in ("..", "a/b", "x?y", ""):
        with pytest.raises(UpstreamRequestError) as missing:
            client.retrieve_batch(odd)
        assert missing.value.status_code == 404


def test_a_create_google_refused_leaves_no_pending_note(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim)
    sim.add_fault(status=400, method="POST", path_contains=":batchGenerateContent")
    with pytest.raises(UpstreamRequestError):
        create(client, [line("a")], gateway_id="batch_refused")
    assert client.notes.get_pending("batch_refused") is None
    sim.add_fault(status=500, method="POST", path_contains="/upload/v1beta/files")
    with pytest.raises(UpstreamError):
        create(client, [line("a")], gateway_id="batch_no_upload")
    assert client.notes.get_pending("batch_no_upload") is None
    sim.add_fault(status=500, method="POST", path_contains=":batchGenerateContent")
    with pytest.raises(UpstreamError):  # a 5xx: Google may have made it, the note stays for adoption
        create(client, [line("a")], gateway_id="batch_unknown")
    assert client.notes.get_pending("batch_unknown") is not None
