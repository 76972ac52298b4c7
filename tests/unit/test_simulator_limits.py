"""The simulator's caps, quotas and test directives in the OpenAI and Azure forms (`limits`).

Batches move along a SteppedClock the tests step; the background pass that validates a batch is
awaited with `finish_work` (a thread joined, no timed state waited for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from devserver.persistence import SimulatorSnapshot
from devserver.simulator import Simulator, SimulatorConfig, SteppedClock
from devserver.simulator.limits import SimulatorLimits, compact, directive_in
from tests.unit import stepped_simulator

PHASE = 1.0
API_VERSION = "2025-04-01-preview"

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


@pytest.fixture
def batch_phase() -> float:
    return PHASE


@pytest.fixture
def client(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_api_base, api_key=sim.config.openai_key, max_retries=0)


@pytest.fixture
def azure(sim: Simulator) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=sim.azure_api_base,
        api_key=sim.config.azure_key,
        api_version=API_VERSION,
        max_retries=0,
    )


def _lines(custom_ids: list[str], model: str = "gpt-4o-mini") -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": "Say hi"}]},
            }
        ).encode()
        + b"\n"
        for custom_id in custom_ids
    )


def _create(client: openai.OpenAI, sim: Simulator, custom_ids: list[str], model: str = "gpt-4o-mini") -> str:
    file = client.files.create(file=("in.jsonl", _lines(custom_ids, model)), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    sim.finish_work()
    return batch.id


def _read(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    lines = [json.loads(raw) for raw in client.files.content(file_id).content.splitlines() if raw.strip()]
    return {line["custom_id"]: line for line in lines}


def _tokens_of_one_batch(client: openai.OpenAI, sim: Simulator, clock: SteppedClock, ids: list[str]) -> int:
    """The enqueued tokens the simulator counts for a batch of these lines (run to its end)."""
    probe = _create(client, sim, ids)
    clock.step(1.5 * PHASE)
    assert client.batches.retrieve(probe).status == "in_progress"
    tokens = sim.state.batches[probe].enqueued_tokens
    clock.step(2 * PHASE)
    assert client.batches.retrieve(probe).status == "completed"
    return tokens


def test_a_batch_over_the_request_cap_fails_validation_with_too_many_tasks(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    sim.set_limits(SimulatorLimits(max_requests=3))
    fits = _create(client, sim, ["a", "b", "c"])
    over = _create(client, sim, ["a", "b", "c", "d"])
    clock.step(1.5 * PHASE)
    assert client.batches.retrieve(fits).status == "in_progress"
    failed = client.batches.retrieve(over)
    assert failed.status == "failed" and failed.errors is not None
    assert [(e.code, e.line) for e in failed.errors.data or ()] == [("too_many_tasks", None)]


def test_a_batch_over_the_byte_cap_fails_validation_with_file_too_large(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    sim.set_limits(SimulatorLimits(max_bytes=len(_lines(["a"])) + 1))
    over = _create(client, sim, ["a", "b"])
    clock.step(1.5 * PHASE)
    failed = client.batches.retrieve(over)
    assert failed.status == "failed" and failed.errors is not None
    assert [e.code for e in failed.errors.data or ()] == ["file_too_large"]


def test_openai_refuses_a_batch_over_the_enqueued_token_quota_until_batches_in_progress_end(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    ids = [f"line-{n}" for n in range(3)]
    per_batch = _tokens_of_one_batch(client, sim, clock, ids)
    assert per_batch > 0
    quota = 2 * per_batch + per_batch // 2  # two batches at a time, not three
    sim.set_limits(SimulatorLimits(enqueued_tokens_by_model={"gpt-4o-mini": quota}))

    first, second, third = (_create(client, sim, ids) for _ in range(3))
    other_model = _create(client, sim, ids, model="gpt-4.1-nano")  # another model's own quota (none)
    clock.step(1.5 * PHASE)
    assert client.batches.retrieve(first).status == "in_progress"
    assert client.batches.retrieve(second).status == "in_progress"
    assert client.batches.retrieve(other_model).status == "in_progress"
    refused = client.batches.retrieve(third)
    assert refused.status == "failed" and refused.failed_at is not None and refused.errors is not None
    error = (refused.errors.data or [])[0]
    assert error.code == "token_limit_exceeded" and error.line is None and error.param is None
    assert error.message == (
        f"Enqueued token limit reached for gpt-4o-mini in organization org-simulator. Limit: {quota:,} "
        "enqueued tokens. Please try again once some in_progress batches have been completed."
    )

    # finalizing still holds the tokens: a batch validated then is refused too
    during = _create(client, sim, ids)
    clock.step(PHASE)
    assert client.batches.retrieve(first).status == "finalizing"
    assert client.batches.retrieve(during).status == "failed"

    # once the two have ended, the same batch is admitted
    clock.step(PHASE)
    assert client.batches.retrieve(first).status == "completed"
    assert client.batches.retrieve(second).status == "completed"
    after = _create(client, sim, ids)
    clock.step(1.5 * PHASE)
    assert client.batches.retrieve(after).status == "in_progress"


def test_the_batch_validated_first_is_admitted_whichever_is_read_first(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    ids = ["x", "y"]
    per_batch = _tokens_of_one_batch(client, sim, clock, ids)
    sim.set_limits(SimulatorLimits(enqueued_tokens=per_batch))
    older = _create(client, sim, ids)
    clock.step(0.25 * PHASE)
    newer = _create(client, sim, ids)
    clock.step(1.5 * PHASE)
    assert client.batches.retrieve(newer).status == "failed"  # read first, validated second
    assert client.batches.retrieve(older).status == "in_progress"


def test_azure_refuses_with_its_own_message_naming_the_deployment(
    azure: openai.AzureOpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    sim.set_limits(SimulatorLimits(enqueued_tokens=30_000))
    big = "word " * 40_000  # about 50,000 tokens: over the quota on its own
    line = {
        "custom_id": "big",
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": "gpt-4.1-batch", "messages": [{"role": "user", "content": big}]},
    }
    file = azure.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    batch = azure.batches.create(
        input_file_id=file.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    sim.finish_work()
    clock.step(1.5 * PHASE)
    refused = azure.batches.retrieve(batch.id)
    assert refused.status == "failed" and refused.errors is not None
    error = (refused.errors.data or [])[0]
    assert error.code == "token_limit_exceeded"
    assert error.message == (
        "The number of enqueued tokens has surpassed the configured limit of 30K for the deployment "
        "'gpt-4.1-batch'. Please either increase the limit or try again once the current jobs have finished."
    )


def test_directives_expire_and_fail_a_line_on_its_first_attempt_only(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    ids = ["plain", "q-7-sim-expire", "q-8-sim-fail-server_error", "q-9-sim-fail-rate_limit_exceeded"]
    first = _create(client, sim, ids)
    clock.step(3.5 * PHASE)
    ended = client.batches.retrieve(first)
    # only an expired batch holds expired requests, as at OpenAI
    assert ended.status == "expired" and ended.expired_at is not None
    assert ended.request_counts is not None
    assert (ended.request_counts.total, ended.request_counts.completed, ended.request_counts.failed) == (
        4,
        1,
        3,
    )
    assert set(_read(client, ended.output_file_id)) == {"plain"}
    errors = _read(client, ended.error_file_id)
    assert errors["q-7-sim-expire"]["response"] is None
    assert errors["q-7-sim-expire"]["error"] == {
        "code": "batch_expired",
        "message": "This request could not be executed before the completion window expired.",
    }
    server = errors["q-8-sim-fail-server_error"]
    assert server["error"] is None and server["response"]["status_code"] == 500
    assert server["response"]["body"]["error"]["code"] == "server_error"
    limited = errors["q-9-sim-fail-rate_limit_exceeded"]["response"]
    assert limited["status_code"] == 429 and limited["body"]["error"]["code"] == "rate_limit_exceeded"

    # the same custom_ids again (a retry of those lines): they run
    again = _create(client, sim, ids)
    clock.step(3.5 * PHASE)
    retried = client.batches.retrieve(again)
    assert retried.status == "completed" and retried.error_file_id is None
    assert set(_read(client, retried.output_file_id)) == set(ids)


def test_a_cancelled_batch_keeps_its_directives_in_its_partial_output(
    client: openai.OpenAI, sim: Simulator, clock: SteppedClock
) -> None:
    ids = ["a-sim-fail-server_error", "b", "c", "d"]
    batch = _create(client, sim, ids)
    clock.step(1.75 * PHASE)  # three quarters of the requests have run
    assert client.batches.cancel(batch).status == "cancelling"
    sim.finish_work()
    clock.step(PHASE)
    cancelled = client.batches.retrieve(batch)
    assert cancelled.status == "cancelled"
    assert set(_read(client, cancelled.error_file_id)) == {"a-sim-fail-server_error"}
    assert set(_read(client, cancelled.output_file_id)) == {"b", "c"}


def test_limits_are_set_over_http_and_a_bad_one_is_a_400(sim: Simulator) -> None:
    answer = httpx.post(f"{sim.url}/_sim/limits", json={"max_requests": 10, "concurrent_jobs": 2})
    assert answer.status_code == 200
    assert (sim.config.limits.max_requests, sim.config.limits.concurrent_jobs) == (10, 2)
    for bad in ({"max_requests": 0}, {"max_request": 5}, {"enqueued_tokens_by_model": {"m": -1}}, []):
        refused = httpx.post(f"{sim.url}/_sim/limits", json=bad)
        assert refused.status_code == 400, bad
    assert sim.config.limits.max_requests == 10  # unchanged by the refused ones


def test_directive_parsing_and_azures_compact_figures() -> None:
    assert directive_in("row-12-sim-expire") is not None
    failing = directive_in("x-sim-fail-rate_limit_exceeded-y")
    assert failing is not None and (failing.kind, failing.code, failing.status) == (
        "fail",
        "rate_limit_exceeded",
        429,
    )
    other = directive_in("sim-fail-invalid_prompt")
    assert other is not None and other.status == 400
    assert directive_in("simulated") is None and directive_in(None) is None
    assert [compact(n) for n in (30_000, 200_000_000, 5_000_000_000, 12_345)] == [
        "30K",
        "200M",
        "5B",
        "12345",
    ]


def test_a_lines_first_attempt_survives_the_local_servers_restart(tmp_path: Path) -> None:
    """`make serve` keeps the simulator's records across restarts: the directives' memory too,
    or a retry after a restart would fail again."""
    clock = SteppedClock()
    config = SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock, storage_dir=str(tmp_path))
    with Simulator(config) as first:
        client = openai.OpenAI(base_url=first.openai_api_base, api_key=first.config.openai_key, max_retries=0)
        _create(client, first, ["k-sim-fail-server_error"])
        records = SimulatorSnapshot.capture(first)
    with Simulator(
        SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock, storage_dir=str(tmp_path))
    ) as second:
        SimulatorSnapshot.restore(second, records)
        client = openai.OpenAI(
            base_url=second.openai_api_base, api_key=second.config.openai_key, max_retries=0
        )
        retry = _create(client, second, ["k-sim-fail-server_error"])
        clock.step(3.5 * PHASE)
        done = client.batches.retrieve(retry)
        assert done.status == "completed" and done.error_file_id is None
