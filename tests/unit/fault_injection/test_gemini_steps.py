"""The Gemini adapter interrupted at each write step of a create and of keeping the results.

Each step fails once (before it happens, or after it happened with its answer lost); the retry
of the same create (same gateway batch id) and the next retrieve then finish the work: one
Gemini batch per gateway id, every request's result under its custom_id, no note left pending.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from gateway import resources
from gateway.errors import UpstreamTimeoutError
from gateway.providers.batch_notes import BatchNotes
from gateway.providers.config import ProviderDeployment
from gateway.providers.gemini import GeminiClient
from gateway.providers.kept_files import KeptFiles
from gateway.storage.s3 import s3_client

from devserver.simulator import Simulator, SimulatorConfig, SteppedClock

PHASE = 10.0
GATEWAY_ID = "batch_interrupted"
CUSTOM_IDS = ["one", "two", "three-sim-fail-bad_thing"]


class Injected(Exception):
    pass


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def sim(clock: SteppedClock) -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock)) as running:
        yield running


@pytest.fixture
def client(sim: Simulator, aws: None) -> Iterator[GeminiClient]:
    s3_client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    deployment = ProviderDeployment(name="gemini", type="gemini", api_base=sim.gemini_api_base)
    adapter = GeminiClient(deployment, lambda refresh: "sim-gemini-key", timeout=5)
    yield adapter
    adapter.close()
    s3_client.cache_clear()


def fail_once(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    *,
    after: bool = False,
    when: Callable[..., bool] | None = None,
) -> list[bool]:
    """Make `owner.name` fail on its first matching call (before it runs, or after: the work done,
    its answer lost); returns a list that holds True once it fired."""
    real = getattr(owner, name)
    fired: list[bool] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if fired or (when is not None and not when(*args, **kwargs)):
            return real(self, *args, **kwargs)
        fired.append(True)
        if not after:
            raise Injected(name)
        real(self, *args, **kwargs)
        raise UpstreamTimeoutError("provider 'gemini' did not answer in time")

    monkeypatch.setattr(owner, name, wrapper)
    return fired


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
        "when": lambda file_id, *a, **k: True,
        "second": True,
    },
    "note of the kept files": {"owner": BatchNotes, "name": "put", "when": files_note},
}


def create(client: GeminiClient) -> dict[str, Any]:
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": cid}]},
        }
        for cid in CUSTOM_IDS
    ]
    content = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
    if not client.files.list_files()["data"]:
        client.create_file(filename="in.jsonl", content=content, purpose="batch")
    input_file = client.files.list_files()["data"][0]["id"]
    body = {
        "input_file_id": input_file,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": GATEWAY_ID},
    }
    return client.create_batch(body, gateway_id=GATEWAY_ID)


def assert_converged(client: GeminiClient, sim: Simulator, clock: SteppedClock, batch_id: str) -> None:
    [upstream] = [b for b in sim.gemini.batches.values() if b.display_name == "gw-" + GATEWAY_ID]
    assert upstream.id == batch_id
    clock.step(PHASE * 3)
    done = client.retrieve_batch(batch_id)
    assert done["status"] == "completed" and done["metadata"] == {"gateway_batch_id": GATEWAY_ID}
    output = [json.loads(x)["custom_id"] for x in client.file_content(done["output_file_id"]).splitlines()]
    errors = [json.loads(x)["custom_id"] for x in client.file_content(done["error_file_id"]).splitlines()]
    assert sorted(output + errors) == sorted(CUSTOM_IDS) and errors == ["three-sim-fail-bad_thing"]
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert client.notes.get_pending(GATEWAY_ID) is None
    assert client.list_batches(limit=10)["data"] == [done]


@pytest.mark.parametrize("step", list(CREATE_STEPS))
def test_a_create_interrupted_at_a_step_is_finished_by_its_retry(
    step: str, client: GeminiClient, sim: Simulator, clock: SteppedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CREATE_STEPS[step]
    fired = fail_once(
        monkeypatch, spec["owner"], spec["name"], after=spec.get("after", False), when=spec.get("when")
    )
    try:
        first: dict[str, Any] | None = create(client)
    except (Injected, UpstreamTimeoutError):
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
    fail_once(monkeypatch, spec["owner"], spec["name"], after=spec.get("after", False), when=spec.get("when"))
    with pytest.raises((Injected, UpstreamTimeoutError)):
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
    if spec.get("second"):  # let the output file through, fail the error file's write
        calls: list[bool] = []

        def second(*args: Any, **kwargs: Any) -> bool:
            calls.append(True)
            return len(calls) == 2

        fired = fail_once(monkeypatch, spec["owner"], spec["name"], when=second)
    else:
        fired = fail_once(monkeypatch, spec["owner"], spec["name"], when=spec.get("when"))
    clock.step(PHASE * 3)
    with pytest.raises(Injected):
        client.retrieve_batch(batch["id"])
    assert fired
    clock.step(-PHASE * 3)  # assert_converged steps the clock again
    assert_converged(client, sim, clock, batch["id"])
