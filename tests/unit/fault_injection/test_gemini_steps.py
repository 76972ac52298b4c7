"""The Gemini adapter interrupted at each write step of a create and of keeping the results.

Each step fails once (before it happens, or after it happened with its answer lost); the retry
of the same create (same gateway batch id) and the next retrieve then finish the work: one
Gemini batch per gateway id, every request's result under its custom_id, no note left pending.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.batch_notes import BatchNotes
from gateway.providers.config import ProviderDeployment
from gateway.providers.gemini.client import GeminiClient
from gateway.providers.kept_files import KeptFiles

from devserver.simulator import Simulator, SteppedClock
from tests.unit import stepped_simulator
from tests.unit.fault_injection import provider_steps

PHASE = 10.0
GATEWAY_ID = "batch_interrupted"
CUSTOM_IDS = ["one", "two", "three-sim-fail-bad_thing"]

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


@pytest.fixture
def client(sim: Simulator, kept_bucket: None) -> Iterator[GeminiClient]:
    deployment = ProviderDeployment(name="gemini", type="gemini", api_base=sim.gemini_api_base)
    adapter = GeminiClient(deployment, lambda refresh: "sim-gemini-key", timeout=5)
    yield adapter
    adapter.close()


def fail_at(monkeypatch: pytest.MonkeyPatch, step: dict[str, Any]) -> list[bool]:
    return provider_steps.fail_at(monkeypatch, step, provider="gemini")


def is_create(method: str, path: str, **_: Any) -> bool:
    return path.endswith(":batchGenerateContent")


def files_note(upstream_id: str, note: dict[str, Any]) -> bool:
    return "files" in note


CREATE_STEPS: dict[str, dict[str, Any]] = {
    "pending note write": {"owner": BatchNotes, "name": "put_pending"},
    "upload to the Files API": {"owner": GeminiClient, "name": "_upload"},
    "batch create refused": {"owner": GeminiClient, "name": "_json", "when": is_create},
    "batch create answer lost": {"owner": GeminiClient, "name": "_json", "when": is_create, "after": True},
    "batch note write": {"owner": BatchNotes, "name": "put"},
    "pending note delete": {"owner": BatchNotes, "name": "forget_pending"},
}
RESULT_STEPS: dict[str, dict[str, Any]] = {
    "output file write": {"owner": KeptFiles, "name": "put_file"},
    "error file write after the output file": {
        "owner": KeptFiles,
        "name": "put_file",
        "second": True,
    },
    "note of the kept files": {"owner": BatchNotes, "name": "put", "when": files_note},
}


def create(client: GeminiClient) -> dict[str, Any]:
    return provider_steps.create_batch(
        client, model="gemini-2.5-flash", custom_ids=CUSTOM_IDS, gateway_id=GATEWAY_ID
    )


def assert_converged(client: GeminiClient, sim: Simulator, clock: SteppedClock, batch_id: str) -> None:
    [upstream] = [b for b in sim.gemini.batches.values() if b.display_name == "gw-" + GATEWAY_ID]
    assert upstream.id == batch_id
    clock.step(PHASE * 3)
    done = client.retrieve_batch(batch_id)
    assert done["status"] == "completed" and done["metadata"] == {"gateway_batch_id": GATEWAY_ID}
    output = provider_steps.custom_ids_in(client, done["output_file_id"])
    errors = provider_steps.custom_ids_in(client, done["error_file_id"])
    assert sorted(output + errors) == sorted(CUSTOM_IDS) and errors == ["three-sim-fail-bad_thing"]
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert client.notes.get_pending(GATEWAY_ID) is None
    assert client.list_batches(limit=10)["data"] == [done]


@pytest.mark.parametrize("step", list(CREATE_STEPS))
def test_a_create_interrupted_at_a_step_is_finished_by_its_retry(
    step: str, client: GeminiClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CREATE_STEPS[step]
    fired = fail_at(monkeypatch, spec)
    try:
        first: dict[str, Any] | None = create(client)
    except (provider_steps.Injected, UpstreamTimeoutError):
        first = None
    assert fired
    retried = create(client)
    if first is not None:  # the step's failure was swallowed (a best-effort delete): one batch
        assert retried["id"] == first["id"]
    assert_converged(client, sim, clock, retried["id"])


@pytest.mark.parametrize("step", ["batch note write", "batch create answer lost"])
def test_a_retrieve_adopts_the_batch_of_a_create_that_never_heard_back(
    step: str, client: GeminiClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CREATE_STEPS[step]
    fail_at(monkeypatch, spec)
    with pytest.raises((provider_steps.Injected, UpstreamTimeoutError)):
        create(client)
    [upstream] = sim.gemini.batches.values()
    listed = client.list_batches(limit=10)["data"]  # how the gateway's adoption finds it
    assert [b["id"] for b in listed] == [upstream.id]
    assert listed[0]["metadata"] == {"gateway_batch_id": GATEWAY_ID}
    assert_converged(client, sim, clock, upstream.id)


@pytest.mark.parametrize("step", list(RESULT_STEPS))
def test_keeping_the_results_interrupted_at_a_step_is_finished_by_the_next_retrieve(
    step: str, client: GeminiClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = create(client)
    spec = RESULT_STEPS[step]
    fired = fail_at(monkeypatch, spec)  # a "second" step lets the output file through
    clock.step(PHASE * 3)
    with pytest.raises(provider_steps.Injected):
        client.retrieve_batch(batch["id"])
    assert fired
    clock.step(-PHASE * 3)  # assert_converged steps the clock again
    assert_converged(client, sim, clock, batch["id"])
