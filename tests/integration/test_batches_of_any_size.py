"""Batches of any size through the openai SDK against the local gateway, with the simulator at
small caps: one batch id, many provider batches, one merged output in input order.

Time is driven, not waited for: each watcher pass runs with the clock moved on
(`books_check.clock_forward`, which the simulator's OpenAI batches read too), past the quota
backoff of a waiting part; the simulator's background work on a part is compute, not a timer."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway.providers import registry
from gateway.providers.config import BatchCapsOverride
from gateway.runtime.settings import get_settings

from devserver.server import LocalGateway
from devserver.simulator.limits import SimulatorLimits
from tests import books_check
from tests.integration.helpers import TERMINAL_BATCH_STATUSES, client
from tests.integration.tenancy import generate_key, key_api, sdk

LINES = 5000
PART_REQUESTS = 1000
PASS_SECONDS = 70  # each pass a watcher interval after the last (past a 60 s backoff)


def request_lines(count: int) -> bytes:
    lines = [
        {
            "custom_id": f"line-{number:05d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {number}"}]},
        }
        for number in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def part_tokens() -> int:
    """The gateway's token estimate of the largest part (the upload check's, a token per 4 bytes)."""
    lines = request_lines(LINES).splitlines()[-PART_REQUESTS:]
    return sum(len(line) // 4 + 1 for line in lines)


def simulated_part_tokens() -> int:
    """The prompt tokens the simulator counts against its quota for the largest part."""
    from devserver.simulator import bodies

    lines = request_lines(LINES).splitlines()[-PART_REQUESTS:]
    return sum(bodies.build("/v1/chat/completions", json.loads(line)["body"])[2] for line in lines)


@pytest.fixture
def small_caps(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorLimits]:
    """The simulator's OpenAI form at 1,000 requests per batch and a quota of two parts' tokens;
    the gateway's deployment knows the request cap (the test sets whether it knows the quota)."""
    simulator = local_gateway.simulator
    assert simulator is not None
    limits = SimulatorLimits(max_requests=PART_REQUESTS, enqueued_tokens=2 * simulated_part_tokens() + 10)
    saved = simulator.config.limits
    simulator.config.limits = limits
    # a client cached by an earlier test may hold an older settings' deployment: the gateway's
    # clients are made again from the settings patched here
    registry.reset_clients()
    deployment = get_settings().providers["openai"]
    monkeypatch.setattr(deployment, "batch_caps", BatchCapsOverride(max_requests=PART_REQUESTS))
    try:
        yield limits
    finally:
        simulator.config.limits = saved
        registry.reset_clients()


def simulator_idle(gateway: LocalGateway) -> None:
    """The simulator's background work on batches done (compute, not a timer): a barrier task
    on each of its workers runs only once each has finished what was queued before it."""
    assert gateway.simulator is not None
    executor = gateway.simulator.state.executor
    barrier = threading.Barrier(executor._max_workers + 1, timeout=120)
    for _ in range(executor._max_workers):
        executor.submit(barrier.wait)
    barrier.wait()


def drive(
    gateway: LocalGateway,
    sdk: openai.OpenAI,
    batch_id: str,
    passes: int = 60,
    *,
    start: int = 1,
    partial: list[list[str]] | None = None,
) -> list[Any]:
    """Watcher passes, each one interval later, until the batch is final: each pass's batch.
    `partial`: each pass's partial output (its custom_ids) appended, once it has one."""
    assert gateway.watcher is not None
    seen = []
    for number in range(start, start + passes):
        simulator_idle(gateway)
        with books_check.clock_forward(number * PASS_SECONDS):
            gateway.watcher.run_once()
            batch = sdk.batches.retrieve(batch_id)
        seen.append(batch)
        partial_id = (batch.model_extra or {}).get("partial_output_file_id")
        if partial is not None and partial_id:
            partial.append([line["custom_id"] for line in lines_of(sdk, partial_id)])
        if batch.status in TERMINAL_BATCH_STATUSES and getattr(batch, "cost", None) is not None:
            return seen
    raise AssertionError(f"batch {batch_id} did not finish: {seen[-1]}")


def lines_of(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines() if line.strip()]


def run_plan(
    local_gateway: LocalGateway, partial: list[list[str]] | None = None
) -> tuple[openai.OpenAI, list[Any]]:
    sdk = client(local_gateway)
    uploaded = sdk.files.create(
        file=("big.jsonl", request_lines(LINES), "application/jsonl"), purpose="batch"
    )
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating" and batch.id.startswith("batch_")
    assert local_gateway.wait_for_async(30)  # the plan's start, invoked by the create
    return sdk, drive(local_gateway, sdk, batch.id, partial=partial)


def check_final(sdk: openai.OpenAI, final: Any) -> None:
    assert final.status == "completed"
    assert final.request_counts.model_dump() == {"total": LINES, "completed": LINES, "failed": 0}
    output = lines_of(sdk, final.output_file_id)
    assert [line["custom_id"] for line in output] == [f"line-{n:05d}" for n in range(LINES)]
    assert final.error_file_id is None
    parts = final.model_extra["parts"]
    assert len(parts) == LINES // PART_REQUESTS
    assert all(part["status"] == "done" and part["upstream_status"] == "completed" for part in parts)
    assert sum(part["request_counts"]["completed"] for part in parts) == LINES
    # usage and cost: the sums over every line, settled once
    prompt = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in output)
    completion = sum(line["response"]["body"]["usage"]["completion_tokens"] for line in output)
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (prompt, completion)
    assert final.model_extra["cost"]["total"] > 0
    # the merged files read as OpenAI's output files, in retrieve and list alike
    merged = sdk.files.retrieve(final.output_file_id)
    assert merged.purpose == "batch_output" and merged.bytes > 0
    listed = {f.id: f.purpose for f in sdk.files.list(purpose="batch_output")}
    assert listed.get(final.output_file_id) == "batch_output"


def test_5000_lines_become_5_parts_under_one_id_with_one_merged_output(
    local_gateway: LocalGateway, small_caps: SimulatorLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = get_settings().providers["openai"]
    # the gateway knows the quota (in its own estimate: a token per 4 bytes of request)
    quota = BatchCapsOverride(max_requests=PART_REQUESTS, enqueued_tokens=2 * part_tokens() + 100)
    monkeypatch.setattr(deployment, "batch_caps", quota)
    partial: list[list[str]] = []
    sdk, seen = run_plan(local_gateway, partial)
    running = [len([p for p in b.model_extra.get("parts") or () if p["status"] == "running"]) for b in seen]
    assert max(running) == 2  # two parts at a time: the quota's room
    assert all(p.get("upstream_status") != "failed" for b in seen for p in b.model_extra.get("parts") or ())
    check_final(sdk, seen[-1])
    # the partial output grows a finished part at a time: whole parts, in input order, each line once
    sizes = [len(ids) for ids in partial]
    assert sizes == sorted(sizes) and sizes[-1] == LINES
    assert len({size for size in sizes if size < LINES}) >= 2, sizes
    for ids in partial:
        assert ids == sorted(set(ids))
        per_part = [sum(1 for custom_id in ids if int(custom_id[5:]) // PART_REQUESTS == n) for n in range(5)]
        assert set(per_part) <= {0, PART_REQUESTS}, per_part
    assert partial[-1] == [line["custom_id"] for line in lines_of(sdk, seen[-1].output_file_id)]


def test_a_plan_starts_at_once_without_waiting_for_a_watcher_pass(
    local_gateway: LocalGateway, small_caps: SimulatorLimits
) -> None:
    """The create answers `validating` at once; the watcher, invoked for that batch alone
    (asynchronously), splits it and submits its first parts before any scheduled pass."""
    sdk = client(local_gateway)
    uploaded = sdk.files.create(file=("s.jsonl", request_lines(2500), "application/jsonl"), purpose="batch")
    assert local_gateway.watcher is not None
    passes = local_gateway.watcher.passes
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating" and not (batch.model_extra or {}).get("parts")
    assert local_gateway.wait_for_async(30)
    started = sdk.batches.retrieve(batch.id)
    assert local_gateway.watcher.passes == passes  # no scheduled pass ran
    assert started.status == "in_progress"
    assert [part["status"] for part in started.model_extra["parts"]] == ["running"] * 3
    assert drive(local_gateway, sdk, batch.id)[-1].status == "completed"


def test_a_third_part_refused_for_quota_waits_and_the_batch_completes(
    local_gateway: LocalGateway, small_caps: SimulatorLimits
) -> None:
    """The gateway does not know the quota: it submits every part; the simulator fails the third
    as OpenAI does (`token_limit_exceeded`); that part waits, is submitted again, completes."""
    sdk, seen = run_plan(local_gateway)
    waited = [p for b in seen for p in b.model_extra.get("parts") or () if p["status"] == "waiting"]
    assert waited, "no part waited for quota"
    assert all(b.status != "failed" for b in seen)
    check_final(sdk, seen[-1])


def directed_lines(count: int, directed: dict[int, str]) -> bytes:
    lines = [
        {
            "custom_id": directed.get(number, f"line-{number:05d}"),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {number}"}]},
        }
        for number in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize("retry", [True, False], ids=["retry", "no_retry"])
def test_expired_lines_run_once_more_with_retry_and_stay_in_the_error_file_without(
    local_gateway: LocalGateway, small_caps: SimulatorLimits, retry: bool
) -> None:
    """A plan of two parts; the simulator expires a `sim-expire` line and fails a `sim-fail-`
    line on their first attempt only (its directives)."""
    sdk = client(local_gateway)
    count = PART_REQUESTS + 10
    # the simulator counts first attempts per custom_id over its life: ids of this run only
    run = f"{time.time_ns()}"
    directed = {3: f"line-00003-{run}-sim-expire", 1007: f"line-01007-{run}-sim-fail-server_error"}
    content = directed_lines(count, directed)
    uploaded = sdk.files.create(file=("d.jsonl", content, "application/jsonl"), purpose="batch")
    extra = {"retry": {"expired": True, "failed_codes": ["server_error"]}} if retry else {}
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", extra_body=extra
    )
    assert local_gateway.wait_for_async(30)
    final = drive(local_gateway, sdk, batch.id)[-1]
    output = [line["custom_id"] for line in lines_of(sdk, final.output_file_id)]
    errors = [line["custom_id"] for line in lines_of(sdk, final.error_file_id)]
    expected = [directed.get(n, f"line-{n:05d}") for n in range(count)]
    if retry:
        assert output == expected and errors == []
        assert final.request_counts.model_dump() == {"total": count, "completed": count, "failed": 0}
        assert len(final.model_extra["parts"]) == 3  # two parts, one retry part
    else:
        assert errors == [directed[3], directed[1007]]
        assert output == [custom_id for custom_id in expected if custom_id not in errors]


@pytest.mark.parametrize("own", [None, {}], ids=["key_default", "request_opts_out"])
def test_a_keys_batch_retry_runs_expired_lines_again_unless_the_create_sends_its_own(
    local_gateway: LocalGateway, small_caps: SimulatorLimits, own: dict[str, Any] | None
) -> None:
    """A key generated with `batch_retry`: its batches retry expired lines without asking; a
    create's own `retry` (here `{}`, none) wins. Read back through /key/info."""
    key = generate_key(local_gateway, "retrying", batch_retry={"expired": True})
    info = key_api(local_gateway, "GET", "/key/info", params={"key": key.key_id}).json()["info"]
    assert info["batch_retry"] == {"expired": True, "failed_codes": []}
    tenant = sdk(local_gateway, key.key)
    directed = {1: f"line-00001-{time.time_ns()}-sim-expire"}
    content = directed_lines(3, directed)
    uploaded = tenant.files.create(file=("k.jsonl", content, "application/jsonl"), purpose="batch")
    extra = {} if own is None else {"retry": own}
    batch = tenant.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", extra_body=extra
    )
    assert local_gateway.wait_for_async(30)
    final = drive(local_gateway, tenant, batch.id)[-1]
    output = [line["custom_id"] for line in lines_of(tenant, final.output_file_id)]
    errors = [line["custom_id"] for line in lines_of(tenant, final.error_file_id)]
    if own is None:
        assert output == ["line-00000", directed[1], "line-00002"] and errors == []
        assert [part["status"] for part in final.model_extra["parts"]] == ["done", "done"]  # one retry part
    else:
        assert output == ["line-00000", "line-00002"] and errors == [directed[1]]
        assert not (final.model_extra or {}).get("parts")  # one provider batch, as without a plan


def test_pause_resume_and_cancel_mid_plan_through_the_sdk(
    local_gateway: LocalGateway, small_caps: SimulatorLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = get_settings().providers["openai"]
    monkeypatch.setattr(
        deployment, "batch_caps", BatchCapsOverride(max_requests=PART_REQUESTS, max_concurrent=1)
    )
    sdk = client(local_gateway)
    uploaded = sdk.files.create(file=("p.jsonl", request_lines(3000), "application/jsonl"), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert local_gateway.wait_for_async(30)  # started at once: split, the first part submitted
    started = (sdk.batches.retrieve(batch.id).model_extra or {})["parts"]
    assert [part["status"] for part in started] == ["running", "ready", "ready"]
    paused = sdk.post(f"/batches/{batch.id}/pause", cast_to=object, body={})
    assert isinstance(paused, dict) and paused["paused"] is True
    assert local_gateway.watcher is not None
    for number in (1, 2):  # nothing more submitted while paused (the running part goes on)
        simulator_idle(local_gateway)
        with books_check.clock_forward(number * PASS_SECONDS):
            local_gateway.watcher.run_once()
    parts = (sdk.batches.retrieve(batch.id).model_extra or {})["parts"]
    assert [part["status"] for part in parts][1:] == ["ready"] * 2
    sdk.post(f"/batches/{batch.id}/resume", cast_to=object, body={})
    seen = []
    for number in range(3, 40):  # until the first part is done and the second runs
        simulator_idle(local_gateway)
        with books_check.clock_forward(number * PASS_SECONDS):
            local_gateway.watcher.run_once()
        seen = (sdk.batches.retrieve(batch.id).model_extra or {})["parts"]
        if [part["status"] for part in seen][:2] == ["done", "running"]:
            break
    assert [part["status"] for part in seen] == ["done", "running", "ready"]
    assert sdk.batches.cancel(batch.id).status == "cancelling"
    final = drive(local_gateway, sdk, batch.id, start=number + 1)[-1]
    assert final.status == "cancelled"
    output = [line["custom_id"] for line in lines_of(sdk, final.output_file_id)]
    errors = lines_of(sdk, final.error_file_id)
    assert output[:PART_REQUESTS] == [f"line-{n:05d}" for n in range(PART_REQUESTS)]  # the first part kept
    assert len(output) + len(errors) == 3000
    assert final.model_extra["parts"][2]["status"] == "dropped"


AZURE_LINES = 2500


@pytest.fixture
def small_azure_caps(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The simulator's Azure form at 1,000 requests per batch, and the gateway's Azure
    deployment knowing it: a batch of 2,500 lines runs as three parts."""
    simulator = local_gateway.simulator
    assert simulator is not None
    saved = simulator.config.limits
    simulator.config.limits = SimulatorLimits(max_requests=PART_REQUESTS)
    registry.reset_clients()
    deployment = get_settings().providers["azure"]
    monkeypatch.setattr(deployment, "batch_caps", BatchCapsOverride(max_requests=PART_REQUESTS))
    try:
        yield
    finally:
        simulator.config.limits = saved
        registry.reset_clients()


def test_a_plan_on_azure_completes_with_its_merged_files_kept_by_the_gateway(
    local_gateway: LocalGateway, small_azure_caps: None
) -> None:
    """Azure's Files API takes no purpose a merged file could be uploaded as (the simulator
    refuses user_data as Azure does): the merged files are the gateway's, read through Azure's
    own client like any output file, and deleted from the gateway's bucket."""
    from tests.integration.test_azure_clients import API_VERSION, azure_client

    sdk = azure_client(local_gateway, API_VERSION)
    uploaded = sdk.files.create(
        file=("big.jsonl", request_lines(AZURE_LINES), "application/jsonl"), purpose="batch"
    )
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h"
    )
    assert local_gateway.wait_for_async(30)
    final = drive(local_gateway, sdk, batch.id)[-1]
    assert final.status == "completed", final
    assert final.request_counts is not None
    assert final.request_counts.model_dump() == {"total": AZURE_LINES, "completed": AZURE_LINES, "failed": 0}
    assert len(final.model_extra["parts"]) == 3
    output = lines_of(sdk, final.output_file_id)
    assert [line["custom_id"] for line in output] == [f"line-{n:05d}" for n in range(AZURE_LINES)]
    assert final.error_file_id is None
    merged = sdk.files.retrieve(final.output_file_id)
    assert merged.purpose == "batch_output" and merged.bytes == len(sdk.files.content(merged.id).content)
    assert final.output_file_id in {f.id for f in sdk.files.list(purpose="batch_output")}
    assert local_gateway.simulator is not None
    state = local_gateway.simulator.state
    with state.lock:  # nothing merged went to Azure: its files are the inputs and the parts' own
        names = [f.filename for f in state.files.values()]
    ours = [name for name in names if name.startswith(f"{batch.id}_")]
    assert len(ours) == 3 and all(re.fullmatch(rf"{batch.id}_p\d+\.jsonl", name) for name in ours)
    # every merged file (final and partial) is the owner's to delete; made on the driven clock,
    # they would list as the deployment's newest files in the tests after this one
    merged_ids = [
        f.id for f in sdk.files.list(purpose="batch_output") if f.filename.startswith(f"{batch.id}_")
    ]
    assert final.output_file_id in merged_ids
    for file_id in merged_ids:
        sdk.files.delete(file_id)
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(final.output_file_id)
    assert not [f for f in sdk.files.list(purpose="batch_output") if f.filename.startswith(f"{batch.id}_")]
