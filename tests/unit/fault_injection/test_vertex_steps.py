"""The Vertex AI adapter interrupted at each write step of a create and of keeping the results.

Each step fails once (before it happens, or after it happened with its answer lost); the retry
of the same create (same gateway batch id) and the next retrieve then finish the work: one
Vertex job per gateway id, every request's result under its custom_id, the job's folder in the
bucket gone once the results are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gateway.errors import UpstreamTimeoutError
from gateway.providers.config import parse_deployments
from gateway.providers.kept_files import KeptFiles
from gateway.providers.vertex.client import VertexClient
from gateway.providers.vertex.google_cloud import GoogleCloud
from gateway.providers.vertex.jobs import job_token

from devserver.simulator import Simulator, SteppedClock
from tests.unit import stepped_simulator
from tests.unit.fault_injection import provider_steps

PHASE = 10.0
GATEWAY_ID = "batch_interrupted"
BUCKET = "sim-vertex-batches"
CUSTOM_IDS = ["one", "two/é", "three-sim-fail-bad_thing"]

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


@pytest.fixture
def client(sim: Simulator, kept_bucket: None) -> Iterator[VertexClient]:
    spec = {
        "type": "vertex",
        "project": "sim-project",
        "location": "us-central1",
        "gcs_bucket": BUCKET,
        "api_base": sim.vertex_api_base,
        "gcs_api_base": sim.gcs_api_base,
    }
    deployment = parse_deployments({"vertex": spec})["vertex"]
    key = sim.google_service_account_key()
    adapter = VertexClient(deployment, lambda refresh: key, timeout=5)
    yield adapter
    adapter.close()


def fail_at(monkeypatch: pytest.MonkeyPatch, step: dict[str, Any]) -> list[bool]:
    return provider_steps.fail_at(monkeypatch, step, provider="vertex")


def is_note(key: str, value: dict[str, Any]) -> bool:
    return key.endswith("note.json") and "output_file_id" not in value


def is_kept_note(key: str, value: dict[str, Any]) -> bool:
    return key.endswith("note.json") and "output_file_id" in value and "folder_deleted" not in value


def is_folder_note(key: str, value: dict[str, Any]) -> bool:
    return key.endswith("note.json") and "folder_deleted" in value


CREATE_STEPS: dict[str, dict[str, Any]] = {
    "rows upload": {"owner": GoogleCloud, "name": "upload"},
    "rows upload answer lost": {"owner": GoogleCloud, "name": "upload", "after": True},
    "note write": {"owner": VertexClient, "name": "_put_json", "when": is_note},
    "note write answer lost": {"owner": VertexClient, "name": "_put_json", "when": is_note, "after": True},
    "job create refused": {"owner": GoogleCloud, "name": "create_job"},
    "job create answer lost": {"owner": GoogleCloud, "name": "create_job", "after": True},
}
RESULT_STEPS: dict[str, dict[str, Any]] = {
    "output file write": {"owner": KeptFiles, "name": "put_file"},
    "error file write after the output file": {"owner": KeptFiles, "name": "put_file", "second": True},
    "note of the kept files": {"owner": VertexClient, "name": "_put_json", "when": is_kept_note},
    "note of the kept files, answer lost": {
        "owner": VertexClient,
        "name": "_put_json",
        "when": is_kept_note,
        "after": True,
    },
    "note of the deleted folder": {"owner": VertexClient, "name": "_put_json", "when": is_folder_note},
}


def create(client: VertexClient) -> dict[str, Any]:
    return provider_steps.create_batch(
        client, model="gemini-2.5-flash", custom_ids=CUSTOM_IDS, gateway_id=GATEWAY_ID
    )


def assert_converged(client: VertexClient, sim: Simulator, clock: SteppedClock, batch_id: str) -> None:
    token = job_token(GATEWAY_ID)
    [upstream] = [job for job in sim.google.vertex.jobs.values() if job.labels.get("gateway_batch") == token]
    assert upstream.job_id == batch_id
    clock.step(PHASE * 3)
    client._notes.clear()  # as another function would: nothing cached
    done = client.retrieve_batch(batch_id)
    assert done["status"] == "completed" and done["metadata"] == {"gateway_batch_id": GATEWAY_ID}
    output = provider_steps.custom_ids_in(client, done["output_file_id"])
    errors = provider_steps.custom_ids_in(client, done["error_file_id"])
    assert sorted(output + errors) == sorted(CUSTOM_IDS) and errors == ["three-sim-fail-bad_thing"]
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert client.list_batches(limit=10)["data"] == [done]
    # the job's folder (its rows and predictions) is gone once the results are kept
    assert sim.google.gcs.list(BUCKET, {"prefix": f"vertex/{token}/"})["items"] == []


@pytest.mark.parametrize("step", list(CREATE_STEPS))
def test_a_create_interrupted_at_a_step_is_finished_by_its_retry(
    step: str, client: VertexClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CREATE_STEPS[step]
    fired = fail_at(monkeypatch, spec)
    with pytest.raises((provider_steps.Injected, UpstreamTimeoutError)):
        create(client)
    assert fired
    retried = create(client)
    assert create(client)["id"] == retried["id"]  # and once more: the same job
    assert_converged(client, sim, clock, retried["id"])


def test_a_list_finds_the_job_of_a_create_that_never_heard_back(
    client: VertexClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How the gateway's adoption meets it: the job, tagged with the gateway batch id."""
    fail_at(monkeypatch, CREATE_STEPS["job create answer lost"])
    with pytest.raises(UpstreamTimeoutError):
        create(client)
    [upstream] = sim.google.vertex.jobs.values()
    listed = client.list_batches(limit=10)["data"]
    assert [b["id"] for b in listed] == [upstream.job_id]
    assert listed[0]["metadata"] == {"gateway_batch_id": GATEWAY_ID}
    assert_converged(client, sim, clock, upstream.job_id)


@pytest.mark.parametrize("step", list(RESULT_STEPS))
def test_keeping_the_results_interrupted_at_a_step_is_finished_by_the_next_retrieve(
    step: str, client: VertexClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = create(client)
    spec = RESULT_STEPS[step]
    fired = fail_at(monkeypatch, spec)  # a "second" step lets the output file through
    clock.step(PHASE * 3)
    with pytest.raises((provider_steps.Injected, UpstreamTimeoutError)):
        client.retrieve_batch(batch["id"])
    assert fired
    clock.step(-PHASE * 3)  # assert_converged steps the clock again
    assert_converged(client, sim, clock, batch["id"])


def test_a_folder_the_bucket_would_not_delete_leaves_the_results_kept(
    client: VertexClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion is best effort: a refused delete leaves the objects (the bucket's lifecycle
    rule takes them), never the batch's results."""
    from gateway.errors import UpstreamError

    def refuse(self: GoogleCloud, name: str) -> None:
        raise UpstreamError("provider 'vertex' denied the request", code="provider_access_denied")

    batch = create(client)
    monkeypatch.setattr(GoogleCloud, "delete", refuse)
    clock.step(PHASE * 3)
    done = client.retrieve_batch(batch["id"])
    assert done["status"] == "completed" and done["output_file_id"] and done["error_file_id"]
    assert sim.google.gcs.list(BUCKET, {"prefix": f"vertex/{job_token(GATEWAY_ID)}/"})["items"] != []
