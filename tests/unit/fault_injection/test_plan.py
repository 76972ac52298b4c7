"""Batches of any size: one gateway batch run as a plan of provider batches, driven one step at
a time (`runner.advance` with an explicit clock, and the watcher's pass), against an in-memory
provider whose batches end when the test says. The books (with the plan's invariants) are
checked after every test by this suite's conftest."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Literal

import boto3
import pytest
from gateway.errors import ConflictError, NotFoundError
from gateway.http.auth import MASTER, Caller
from gateway.models.batches import CreateBatchRequest, RetryOptions
from gateway.providers.caps import BatchCaps
from gateway.providers.kept_files import is_kept
from gateway.runtime import async_invoke, resources
from gateway.runtime.settings import get_settings
from gateway.service import adoption, batches, books, content_delivery, files, settlement, translate, watcher
from gateway.service.batch_input_check import BATCH_CHECK_STATE, checked_figures, line_token_estimate
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest
from gateway.service.plan import create as plan_create
from gateway.service.plan import merged_files, parts, runner
from gateway.storage import plan_files
from gateway.storage.content_cache import cache_key
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.s3 import s3_client
from gateway.storage.watch import PLAN

from tests import books_check
from tests.unit.fault_injection.faults import DynamoFaults, PlanFileFaults
from tests.unit.fault_injection.plan_provider import USAGE, PlanProvider, request_line, token_estimate

CAPS = BatchCaps(max_requests=1000, max_bytes=10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=None)


def provider_with(monkeypatch: pytest.MonkeyPatch, fake: PlanProvider) -> PlanProvider:
    boto3.client("s3").create_bucket(Bucket=get_settings().bucket_name)  # merged files are kept there
    for module in (plan_create, runner, translate, adoption, settlement, batches, watcher, files):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


@pytest.fixture
def provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> PlanProvider:
    return provider_with(monkeypatch, PlanProvider(CAPS))


def input_file(fake: PlanProvider, count: int, custom_ids: dict[int, str] | None = None) -> str:
    """A processed batch file of `count` requests, held by the fake provider and the table."""
    content = b"\n".join(request_line(n, (custom_ids or {}).get(n)) for n in range(1, count + 1)) + b"\n"
    upstream = fake.create_file(filename="in.jsonl", content=content, purpose="batch")
    file_id = f"file-in{count}-{upstream['id']}"
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner="master",
            provider="openai",
            created_at=fake.now,
            object={**upstream, "id": file_id},
            upstream_id=upstream["id"],
            purpose="batch",
            state={BATCH_CHECK_STATE: checked_figures(content)},
        )
    )
    return file_id


def create(file_id: str, retry: RetryOptions | None = None, caller: Caller = MASTER) -> str:
    request = CreateBatchRequest(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", retry=retry
    )
    return batches.create_batch(caller, None, request).id


def record(batch_id: str) -> ObjectRecord:
    found = IdMap().get(batch_id)
    assert found is not None
    return found


def step(batch_id: str, now: int | None = None) -> None:
    runner.advance(IdMap(), record(batch_id), now)


def finish_running(fake: PlanProvider) -> int:
    running = fake.running()
    for upstream_id in running:
        fake.finish(upstream_id)
    return len(running)


def run_to_end(fake: PlanProvider, batch_id: str, *, now: int | None = None, limit: int = 60) -> ObjectRecord:
    """Steps and provider completions until the batch is final (each step the watcher's)."""
    for _ in range(limit):
        current = record(batch_id)
        if current.status in {"completed", "failed", "expired", "cancelled"}:
            return current
        step(batch_id, now)
        finish_running(fake)
    raise AssertionError(f"batch {batch_id} did not finish: {record(batch_id).object}")


def lines_of(fake: PlanProvider, gateway_file_id: str | None) -> list[dict[str, Any]]:
    if gateway_file_id is None:
        return []
    file_record = IdMap().get(gateway_file_id)
    assert file_record is not None and file_record.upstream_id is not None
    content = fake.file_content(file_record.upstream_id)
    return [json.loads(line) for line in content.splitlines() if line.strip()]


def test_a_batch_within_one_provider_batch_takes_todays_path(provider: PlanProvider) -> None:
    file_id = input_file(provider, 3)
    batch_id = create(file_id)
    stored = record(batch_id)
    assert PLAN not in stored.state and stored.upstream_id is not None
    (body,) = provider.creates
    assert body["input_file_id"] == IdMap().get(file_id).upstream_id  # type: ignore[union-attr]
    assert parts.load(IdMap(), batch_id, 1) == []


def test_5000_lines_run_as_5_parts_under_one_id_and_merge_in_input_order(provider: PlanProvider) -> None:
    failing = {17: "req-17-fail", 4321: "req-4321-fail"}
    file_id = input_file(provider, 5000, failing)
    batch_id = create(file_id)
    created = record(batch_id)
    assert created.status == "validating" and created.upstream_id is None
    assert provider.creates == []  # the create answers at once: nothing submitted yet

    step(batch_id)  # split
    plan = record(batch_id).state[PLAN]
    assert plan["parts"] == 5 and plan["lines"] == 5000
    assert [parts.lines(p) for p in parts.load(IdMap(), batch_id, 5)] == [1000] * 5
    # each part's token estimate is the upload check's, line by line (the split's own figure)
    assert [parts.tokens(p) for p in parts.load(IdMap(), batch_id, 5)] == [
        sum(line_token_estimate(request_line(n, failing.get(n))) for n in range(first, first + 1000))
        for first in range(1, 5001, 1000)
    ]

    step(batch_id)  # submit (no quota: all five)
    running = record(batch_id)
    assert running.status == "in_progress" and len(provider.creates) == 5
    assert [part["status"] for part in running.object["parts"]] == ["running"] * 5

    final = run_to_end(provider, batch_id)
    assert final.status == "completed"
    assert final.object["request_counts"] == {"total": 5000, "completed": 4998, "failed": 2}
    output = lines_of(provider, final.object["output_file_id"])
    errors = lines_of(provider, final.object["error_file_id"])
    expected = [failing.get(n, f"req-{n}") for n in range(1, 5001)]
    assert [line["custom_id"] for line in output] == [c for c in expected if "fail" not in c]
    assert [line["custom_id"] for line in errors] == ["req-17-fail", "req-4321-fail"]
    # settled once, usage and cost the parts' sums
    assert final.settlement is not None
    assert final.settlement["usage"]["input_tokens"] == 4998 * USAGE["prompt_tokens"]
    assert final.settlement["usage"]["output_tokens"] == 4998 * USAGE["completion_tokens"]
    assert Decimal(str(final.settlement["cost"]["total"])) > 0
    retrieved = batches.retrieve_batch(MASTER, batch_id)
    assert retrieved.usage is not None and retrieved.usage.input_tokens == 4998 * USAGE["prompt_tokens"]
    assert retrieved.model_dump()["parts"][0]["provider_batch_id"] is not None


def test_parts_are_submitted_as_the_enqueued_token_quota_allows(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    part_tokens = token_estimate(b"\n".join(request_line(n) for n in range(4001, 5001)))  # the largest
    caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=2 * part_tokens + 50, max_concurrent=None)
    fake = provider_with(monkeypatch, PlanProvider(caps, quota_tokens=caps.enqueued_tokens))
    batch_id = create(input_file(fake, 5000))
    step(batch_id)
    step(batch_id)
    assert len(fake.running()) == 2 and fake.refusals == 0  # the third waits for room
    final = run_to_end(fake, batch_id)
    assert final.status == "completed" and fake.refusals == 0 and len(fake.creates) == 5
    assert final.object["request_counts"] == {"total": 5000, "completed": 5000, "failed": 0}


@pytest.mark.parametrize(
    "refuse_sync", [False, True], ids=["token_limit_exceeded", "quota_refused_at_create"]
)
def test_a_part_the_provider_refuses_for_quota_waits_and_completes(
    aws: None, monkeypatch: pytest.MonkeyPatch, refuse_sync: bool
) -> None:
    """The gateway does not know the quota (caps say none); the provider refuses the third
    concurrent part in its own way. The part waits with backoff, then runs: no failure."""
    part_tokens = token_estimate(b"\n".join(request_line(n) for n in range(2001, 3001)))  # the largest
    fake = provider_with(
        monkeypatch, PlanProvider(CAPS, quota_tokens=2 * part_tokens + 50, refuse_sync=refuse_sync)
    )
    batch_id = create(input_file(fake, 3000))
    now = fake.now
    step(batch_id, now)
    step(batch_id, now)  # three submitted: the third refused at create
    step(batch_id, now)  # or refused after: the part learns it on its refresh
    third = parts.load(IdMap(), batch_id, 3)[2]
    assert parts.status(third) == "waiting" and fake.refusals == 1
    assert third.object["next_attempt_at"] == now + runner.BACKOFF_FIRST_SECONDS
    assert record(batch_id).status == "in_progress"
    finish_running(fake)
    step(batch_id, now + 10)  # not yet due
    assert parts.status(parts.load(IdMap(), batch_id, 3)[2]) == "waiting"
    final = run_to_end(fake, batch_id, now=now + runner.BACKOFF_FIRST_SECONDS)
    assert final.status == "completed" and fake.refusals == 1
    assert final.object["request_counts"] == {"total": 3000, "completed": 3000, "failed": 0}
    assert len(lines_of(fake, final.object["output_file_id"])) == 3000


def test_a_plan_out_of_time_expires_with_its_unrun_lines_in_the_error_file(provider: PlanProvider) -> None:
    provider.caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=1)
    batch_id = create(input_file(provider, 2500))
    step(batch_id)
    step(batch_id)
    finish_running(provider)  # part 0 done; parts 1 and 2 never get their turn in time
    late = record(batch_id).created_at + runner.WINDOW_SECONDS
    step(batch_id, late)  # part 1 was submitted meanwhile? not before `late`: it is cancelled
    final = run_to_end(provider, batch_id, now=late)
    assert final.status == "expired"
    output = lines_of(provider, final.object["output_file_id"])
    errors = lines_of(provider, final.object["error_file_id"])
    assert len(output) + len(errors) == 2500
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    ids = [line["custom_id"] for line in output + errors]
    assert sorted(ids, key=lambda c: int(c.split("-")[1])) == [f"req-{n}" for n in range(1, 2501)]


def test_the_watcher_drives_a_plan_to_its_settlement(provider: PlanProvider) -> None:
    batch_id = create(input_file(provider, 2100))
    for _ in range(10):
        watcher.run_pass(Deadline.after(60))
        finish_running(provider)
    final = record(batch_id)
    assert final.status == "completed" and final.settlement is not None
    assert books.audit() == {}


# Fault injection: every write of the plan, failed before and after it lands ------------------
SMALL = BatchCaps(max_requests=10, max_bytes=10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=2)
FAULT_LINES = 25  # three parts, two at a time


def run_through_failures(fake: PlanProvider, batch_id: str, limit: int = 80) -> ObjectRecord:
    """The watcher's steps, each `now` 700 s after the last (past the give-up time of a create
    that never answered), a failed step left to the next one as the watcher's pass does."""
    for number in range(limit):
        current = record(batch_id)
        if current.status in {"completed", "failed", "expired", "cancelled"} and current.settlement:
            return current
        if current.status in {"completed", "failed", "expired", "cancelled"}:
            # its settlement failed: the watcher's next passes settle it (a claim left by a
            # settler that died goes stale first)
            with books_check.clock_forward(settlement.CLAIM_STALE_SECONDS + 1):
                watcher.run_pass(Deadline.after(60))
            continue
        fake.now = int(time.time()) + 700 * number
        with contextlib.suppress(Exception):
            step(batch_id, fake.now)
        finish_running(fake)
    raise AssertionError(f"batch {batch_id} did not finish: {record(batch_id).object}")


_CLEAN_WRITES: dict[str, list[Any]] = {}


def clean_writes(
    scenario: str, faults: DynamoFaults, create_batch: Callable[[], str], run: Callable[[str], None]
) -> list[Any]:
    """The writes a scenario's clean run makes after its create, in order: run (and checked)
    once per process, as the same steps against a fresh table make the same writes; each fault
    case then fails one of them."""
    if scenario not in _CLEAN_WRITES:
        batch_id = create_batch()
        start = len(faults.writes)
        run(batch_id)
        _CLEAN_WRITES[scenario] = list(faults.writes[start:])
    return _CLEAN_WRITES[scenario]


def check_run(fake: PlanProvider, final: ObjectRecord) -> None:
    assert final.status == "completed"
    output = lines_of(fake, final.object["output_file_id"])
    errors = lines_of(fake, final.object["error_file_id"])
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, FAULT_LINES + 1) if n != 5]
    assert [line["custom_id"] for line in errors] == ["req-5-fail"]
    assert final.object["request_counts"] == {"total": FAULT_LINES, "completed": FAULT_LINES - 1, "failed": 1}
    assert final.settlement is not None
    assert final.settlement["usage"]["input_tokens"] == (FAULT_LINES - 1) * USAGE["prompt_tokens"]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("at", range(60))
def test_a_failed_write_anywhere_in_a_plan_loses_and_doubles_no_line(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    faults: DynamoFaults,
    at: int,
    when: Literal["before", "after"],
) -> None:
    """A clean run gives the plan's writes in order; a second run fails the `at`-th of them.
    Whatever failed, the batch completes with every line once, in order, each provider batch
    claimed by its part and none made twice."""
    fake = provider_with(monkeypatch, PlanProvider(SMALL))

    writes = clean_writes(
        "plain",
        faults,
        lambda: create(input_file(fake, FAULT_LINES, {5: "req-5-fail"})),
        lambda clean: check_run(fake, run_through_failures(fake, clean)),
    )
    if at >= len(writes):
        pytest.skip(f"a run makes {len(writes)} writes")
    fake.attempted.clear()  # the second run's directed line fails on its first attempt again
    provider_batches = set(fake.batches)
    batch_id = create(input_file(fake, FAULT_LINES, {5: "req-5-fail"}))
    provider_files = set(fake.files)
    operation = writes[at]
    faults.fail(operation, writes[: at + 1].count(operation), when)
    check_run(fake, run_through_failures(fake, batch_id))
    assert faults.fired
    made = set(fake.batches) - provider_batches
    assert len(made) == 3  # none submitted twice
    for upstream_id in made:  # no provider part orphaned: each is its part's
        owner = IdMap().gateway_id_for("openai", upstream_id)
        assert owner is not None and owner.startswith(batch_id)
        part = IdMap().get(owner)
        assert part is not None and part.upstream_id == upstream_id
    assert orphan_files(fake, batch_id, set(fake.files) - provider_files) == set()


def part_files(batch_id: str) -> set[str]:
    """The provider files the batch's parts name: their inputs and results."""
    plan = record(batch_id).state[PLAN]
    named: set[str] = set()
    for part in parts.load(IdMap(), batch_id, int(plan["parts"])):
        named |= {
            part.state.get(name) for name in ("input_upstream_id", "output_upstream_id", "error_upstream_id")
        }
    return named - {None}


def orphan_files(fake: PlanProvider, batch_id: str, made: set[str]) -> set[str]:
    """The files made for the batch that nothing of the gateway names: at the provider, not a
    part's input or results; kept (the merged ones), not a gateway file."""
    made = made | kept_ids(fake)
    plan = record(batch_id).state[PLAN]
    named: set[str] = set()
    for part in parts.load(IdMap(), batch_id, int(plan["parts"])):
        named |= {
            part.state.get(name) for name in ("input_upstream_id", "output_upstream_id", "error_upstream_id")
        }
    return {
        upstream_id for upstream_id in made - named if IdMap().gateway_id_for("openai", upstream_id) is None
    }


def kept_ids(fake: PlanProvider) -> set[str]:
    return {str(f["id"]) for f in fake.kept.list_files()["data"]}


# Cancel, pause, resume ------------------------------------------------------------------------
def test_cancel_mid_plan_cancels_running_parts_drops_waiting_ones_and_keeps_finished_lines(
    provider: PlanProvider,
) -> None:
    provider.caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=1)
    batch_id = create(input_file(provider, 2500))
    step(batch_id)
    step(batch_id)
    finish_running(provider)  # part 0 done
    step(batch_id)  # part 0 recorded, part 1 submitted
    (running,) = provider.running()
    cancelled = batches.cancel_batch(MASTER, batch_id)
    assert cancelled.status == "cancelling"
    step(batch_id)  # part 1 cancelled at the provider, part 2 dropped
    assert provider.batches[running]["status"] == "cancelling"
    assert parts.status(parts.load(IdMap(), batch_id, 3)[2]) == "dropped"
    final = run_to_end(provider, batch_id)
    assert final.status == "cancelled" and final.settlement is not None
    output = lines_of(provider, final.object["output_file_id"])
    errors = lines_of(provider, final.object["error_file_id"])
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, 1501)]  # part 0, half of 1
    assert [line["custom_id"] for line in errors] == [f"req-{n}" for n in range(1501, 2501)]
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert len(provider.creates) == 2  # the dropped part never reached the provider
    with pytest.raises(ConflictError):
        batches.cancel_batch(MASTER, batch_id)


def test_a_paused_plan_submits_no_part_until_resumed(provider: PlanProvider) -> None:
    batch_id = create(input_file(provider, 2100))
    step(batch_id)
    paused = batches.pause_batch(MASTER, batch_id, paused=True)
    assert paused.model_dump()["paused"] is True
    step(batch_id)
    step(batch_id)
    assert provider.creates == [] and record(batch_id).status == "validating"
    resumed = batches.pause_batch(MASTER, batch_id, paused=False)
    assert resumed.model_dump()["paused"] is False
    assert run_to_end(provider, batch_id).status == "completed"


def test_a_pause_while_parts_run_lets_them_finish(provider: PlanProvider) -> None:
    provider.caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=1)
    batch_id = create(input_file(provider, 2100))
    step(batch_id)
    step(batch_id)
    batches.pause_batch(MASTER, batch_id, paused=True)
    finish_running(provider)
    step(batch_id)
    step(batch_id)
    found = parts.load(IdMap(), batch_id, 3)
    assert [parts.status(part) for part in found] == ["done", "ready", "ready"] and len(provider.creates) == 1
    batches.pause_batch(MASTER, batch_id, paused=False)
    assert run_to_end(provider, batch_id).status == "completed"


def test_only_a_batch_run_as_parts_pauses(provider: PlanProvider) -> None:
    batch_id = create(input_file(provider, 3))
    with pytest.raises(ConflictError) as refused:
        batches.pause_batch(MASTER, batch_id, paused=True)
    assert refused.value.code == "batch_not_pausable"


def test_partial_output_grows_part_by_part(provider: PlanProvider) -> None:
    provider.caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=1)
    batch_id = create(input_file(provider, 2500, {1500: "req-1500-fail"}))
    step(batch_id)
    step(batch_id)
    assert record(batch_id).object["partial_output_file_id"] is None
    grown = []
    for _ in range(2):
        finish_running(provider)
        step(batch_id)
        current = record(batch_id).object
        output = lines_of(provider, current["partial_output_file_id"])
        errors = lines_of(provider, current["partial_error_file_id"])
        grown.append(([line["custom_id"] for line in output], [line["custom_id"] for line in errors]))
    assert grown[0] == ([f"req-{n}" for n in range(1, 1001)], [])
    assert grown[1] == ([f"req-{n}" for n in range(1, 2001) if n != 1500], ["req-1500-fail"])
    final = run_to_end(provider, batch_id)
    assert final.object["partial_output_file_id"] == final.object["output_file_id"]
    assert len(lines_of(provider, final.object["output_file_id"])) == 2499


def test_a_plan_cancelled_before_its_split_ends_with_nothing_run(provider: PlanProvider) -> None:
    batch_id = create(input_file(provider, 2100))
    assert batches.cancel_batch(MASTER, batch_id).status == "cancelling"
    step(batch_id)
    final = record(batch_id)
    assert final.status == "cancelled" and final.settlement is not None
    assert provider.creates == [] and len(provider.files) == 1  # no part file, no provider batch


# Retry of expired and failed lines, once ------------------------------------------------------
RETRY = RetryOptions(expired=True, failed_codes=["server_error"])
DIRECTED = {10: "req-10-fail", 1200: "req-1200-sim-expire", 2400: "req-2400-fail-always"}


def test_expired_and_failed_lines_run_once_more_and_the_final_files_hold_their_last_attempt(
    provider: PlanProvider,
) -> None:
    batch_id = create(input_file(provider, 2500, DIRECTED), RETRY)
    final = run_to_end(provider, batch_id)
    plan = final.state[PLAN]
    assert plan["parts"] == 4 and plan["retried"] == 3  # three originals, one retry part
    assert len(provider.creates) == 4
    output = lines_of(provider, final.object["output_file_id"])
    errors = lines_of(provider, final.object["error_file_id"])
    expected = [DIRECTED.get(n, f"req-{n}") for n in range(1, 2501)]
    assert [line["custom_id"] for line in output] == [c for c in expected if c != "req-2400-fail-always"]
    assert [line["custom_id"] for line in errors] == ["req-2400-fail-always"]  # failed twice: kept
    assert final.status == "completed"
    assert final.object["request_counts"] == {"total": 2500, "completed": 2499, "failed": 1}


def test_without_retry_an_expired_line_stays_in_the_error_file(provider: PlanProvider) -> None:
    final = run_to_end(provider, create(input_file(provider, 2500, DIRECTED)))
    errors = lines_of(provider, final.object["error_file_id"])
    assert [line["custom_id"] for line in errors] == [
        "req-10-fail",
        "req-1200-sim-expire",
        "req-2400-fail-always",
    ]
    assert len(provider.creates) == 3


def test_a_small_batch_with_retry_runs_as_a_plan(provider: PlanProvider) -> None:
    batch_id = create(input_file(provider, 3, {2: "req-2-sim-expire"}), RetryOptions(expired=True))
    assert PLAN in record(batch_id).state and provider.creates == []
    final = run_to_end(provider, batch_id)
    assert [line["custom_id"] for line in lines_of(provider, final.object["output_file_id"])] == [
        "req-1",
        "req-2-sim-expire",
        "req-3",
    ]
    assert final.object["error_file_id"] is None and len(provider.creates) == 2


def test_a_keys_default_retry_applies_when_the_create_sends_none(provider: PlanProvider) -> None:
    """The caller's key keeps `batch_retry`: a create without `retry` runs with it."""
    caller = dataclasses.replace(MASTER, batch_retry=RetryOptions(expired=True))
    batch_id = create(input_file(provider, 3, {2: "req-2-sim-expire"}), caller=caller)
    assert record(batch_id).state[PLAN]["retry"] == {"expired": True, "failed_codes": []}
    final = run_to_end(provider, batch_id)
    assert final.state[PLAN]["retried"] == 1
    assert [line["custom_id"] for line in lines_of(provider, final.object["output_file_id"])] == [
        "req-1",
        "req-2-sim-expire",
        "req-3",
    ]


@pytest.mark.parametrize(
    ("own", "planned_retry"),
    [
        (RetryOptions(), None),  # `{}`: no retry for this batch, whatever the key says
        (RetryOptions(failed_codes=["server_error"]), {"expired": False, "failed_codes": ["server_error"]}),
    ],
    ids=["empty_opts_out", "own_codes"],
)
def test_a_creates_own_retry_wins_over_its_keys_default(
    provider: PlanProvider, own: RetryOptions, planned_retry: dict[str, Any] | None
) -> None:
    caller = dataclasses.replace(MASTER, batch_retry=RetryOptions(expired=True))
    batch_id = create(input_file(provider, 3, {2: "req-2-sim-expire"}), own, caller=caller)
    stored = record(batch_id)
    if planned_retry is None:
        assert PLAN not in stored.state and len(provider.creates) == 1  # one provider batch, as today
    else:
        assert stored.state[PLAN]["retry"] == planned_retry
        final = run_to_end(provider, batch_id)
        # the expired line is not retried: the request named only a failure code
        assert [line["custom_id"] for line in lines_of(provider, final.object["error_file_id"])] == [
            "req-2-sim-expire"
        ]


def run_one_part_at_a_time(fake: PlanProvider, batch_id: str) -> set[str]:
    """Steps until the batch completes, one part finishing at a time (each finished part makes
    partial files); the partial file ids the batch showed on the way."""
    partial_ids: set[str] = set()
    for _ in range(60):
        current = record(batch_id)
        partial_ids |= {
            current.object.get("partial_output_file_id"),
            current.object.get("partial_error_file_id"),
        }
        if current.status == "completed":
            return partial_ids - {None}
        step(batch_id)
        if fake.running():
            fake.finish(fake.running()[0])
    raise AssertionError(f"batch {batch_id} did not finish: {record(batch_id).object}")


def test_merged_files_are_kept_by_the_gateway_and_read_as_openais_batch_output_files(
    provider: PlanProvider,
) -> None:
    input_id = input_file(provider, 2500, {10: "req-10-fail"})
    provider_files = set(provider.files)
    batch_id = create(input_id)
    partial_ids = run_one_part_at_a_time(provider, batch_id)
    final = record(batch_id)
    merged = {final.object["output_file_id"], final.object["error_file_id"]} | partial_ids
    assert len(merged) >= 4  # the final pair and at least one partial pair
    made_at_provider = set(provider.files) - provider_files
    assert made_at_provider and made_at_provider <= part_files(batch_id)  # no merged file went there
    output = IdMap().get(final.object["output_file_id"])
    assert output is not None and output.upstream_id == merged_files.merged_file_id(batch_id, "output")
    listed = {f.id: f.purpose for f in files.list_files(MASTER, ListRequest(limit=100)).data}
    for file_id in merged:
        stored = IdMap().get(file_id)
        assert stored is not None and stored.upstream_id is not None and is_kept(stored.upstream_id)
        assert stored.owner == final.owner and stored.provider == final.provider
        assert stored.purpose == "batch_output" and listed[file_id] == "batch_output"
        retrieved = files.retrieve_file(MASTER, file_id)
        assert retrieved.purpose == "batch_output" and retrieved.bytes == len(
            provider.kept.file_content(stored.upstream_id)
        )
    assert len(lines_of(provider, final.object["output_file_id"])) == 2499
    assert [line["custom_id"] for line in lines_of(provider, final.object["error_file_id"])] == [
        "req-10-fail"
    ]


def test_a_merged_file_reads_inline_or_by_redirect_and_deletes_from_the_gateways_bucket(
    provider: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = create(input_file(provider, 1500))
    final = run_to_end(provider, batch_id)
    output_id = str(final.object["output_file_id"])
    stored = IdMap().get(output_id)
    assert stored is not None and stored.upstream_id is not None
    whole = provider.kept.file_content(stored.upstream_id)
    inline = files.file_content(MASTER, output_id)
    assert isinstance(inline, content_delivery.InlineContent) and inline.content == whole
    monkeypatch.setattr(content_delivery, "MAX_INLINE_CONTENT_BYTES", 1024)  # past it: a redirect
    stored.object = {**stored.object, "bytes": None}
    IdMap().put(stored)
    redirect = files.file_content(MASTER, output_id)
    assert isinstance(redirect, content_delivery.RedirectContent)
    key = provider.kept.key(stored.upstream_id)
    assert f"/{key}?" in redirect.url  # presigned where it lies: no copy in the content cache
    bucket = get_settings().bucket_name
    assert s3_client().get_object(Bucket=bucket, Key=key)["Body"].read() == whole
    assert s3_client().list_objects_v2(Bucket=bucket, Prefix=cache_key(output_id)).get("KeyCount") == 0
    files.delete_file(MASTER, output_id)
    assert stored.upstream_id not in kept_ids(provider)
    with pytest.raises(NotFoundError):
        files.retrieve_file(MASTER, output_id)


def test_a_merge_run_again_finds_its_kept_files_and_writes_no_second(
    provider: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge whose step died after its files were kept, before they were named, runs again:
    the same ids (derived from the batch), the conditional write finds them, one file each."""
    merge, died = runner._merge, []

    def merge_then_die(*args: Any, **kwargs: Any) -> dict[str, Any]:
        merged = merge(*args, **kwargs)
        if not died:
            died.append(merged)
            raise ConnectionError("the step died after the merged files were kept")
        return merged

    monkeypatch.setattr(runner, "_merge", merge_then_die)
    batch_id = create(input_file(provider, 1500, {3: "req-3-fail"}))
    for _ in range(60):
        if record(batch_id).status == "completed":
            break
        with contextlib.suppress(ConnectionError):
            step(batch_id)
        finish_running(provider)
    final = record(batch_id)
    again = runner.plan_of(final)["merge"]
    assert died == [again]
    assert {again["output"], again["error"]} == kept_ids(provider)  # one file each, no second
    assert IdMap().gateway_id_for(final.provider, again["output"]) == final.object["output_file_id"]


def test_a_cancel_during_the_final_merge_keeps_one_merged_file_pair_named(
    provider: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge keeps its files, then a cancel lands before it names them (its conditional
    write loses): the next step merges again under the same ids, finds the files kept, and
    names them; the lines that never ran read as they did when the merge began."""
    provider.caps = BatchCaps(1000, 10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=1)
    batch_id = create(input_file(provider, 2500))
    step(batch_id)
    step(batch_id)
    finish_running(provider)
    late = record(batch_id).created_at + runner.WINDOW_SECONDS
    merge = runner._merge
    merges: list[dict[str, Any]] = []

    def merge_then_cancel(*args: Any, **kwargs: Any) -> dict[str, Any]:
        merges.append(merge(*args, **kwargs))
        if len(merges) == 1:
            batches.cancel_batch(MASTER, batch_id)  # lands between the keep and the naming
        return merges[-1]

    monkeypatch.setattr(runner, "_merge", merge_then_cancel)
    final = run_to_end(provider, batch_id, now=late)
    assert len(merges) == 2 and merges[0]["error"] == merges[1]["error"]
    assert final.status == "cancelled"
    errors = lines_of(provider, final.object["error_file_id"])
    assert len(lines_of(provider, final.object["output_file_id"])) + len(errors) == 2500
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert [f for f in kept_ids(provider) if IdMap().gateway_id_for("openai", f) is None] == []


def test_a_partial_merge_kept_but_never_named_becomes_the_owners_file_when_a_newer_one_replaces_it(
    provider: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial merge's files are kept, then its step dies before naming them; another part
    finishes before the next step: the newer partial merge first names the older files (found
    by the ids its written-ahead attempt derives), so nothing kept is left unnamed."""
    batch_id = create(input_file(provider, 2500))
    step(batch_id)  # split
    step(batch_id)  # submit
    running = provider.running()
    assert len(running) == 3
    provider.finish(running[0])
    register = runner._register

    def dies(*args: Any) -> str:
        raise ConnectionError("the step dies after keeping its files")

    monkeypatch.setattr(runner, "_register", dies)
    with pytest.raises(ConnectionError):
        step(batch_id)
    attempt = runner.plan_of(record(batch_id))["partial_attempt"]
    first_output = merged_files.find("openai", batch_id, "output", attempt["parts"])
    assert first_output is not None and IdMap().gateway_id_for("openai", first_output) is None
    monkeypatch.setattr(runner, "_register", register)
    provider.finish(running[1])
    step(batch_id)
    named = IdMap().gateway_id_for("openai", first_output)
    assert named is not None and named != record(batch_id).object["partial_output_file_id"]
    adopted = IdMap().get(named)
    assert adopted is not None and adopted.owner == "master" and adopted.purpose == "batch_output"
    assert [f for f in kept_ids(provider) if IdMap().gateway_id_for("openai", f) is None] == []
    run_to_end(provider, batch_id)


# Started at once: batches_create invokes the watcher for the planned batch -------------------
@pytest.fixture
def invoked() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    async_invoke.use_local_runner(lambda name, payload: calls.append((name, payload)))
    yield calls
    async_invoke.use_local_runner(None)


def test_a_planned_create_invokes_the_watcher_for_its_batch_and_a_small_one_does_not(
    provider: PlanProvider, invoked: list[tuple[str, dict[str, Any]]]
) -> None:
    create(input_file(provider, 3))
    assert invoked == []  # one provider batch: today's path
    batch_id = create(input_file(provider, 2500))
    assert invoked == [("batch_watcher", {"batch_id": batch_id})]
    assert record(batch_id).status == "validating" and provider.creates[1:] == []  # nothing waited for


def test_the_watcher_invoked_for_a_batch_splits_it_and_submits_its_first_parts(
    provider: PlanProvider,
) -> None:
    batch_id = create(input_file(provider, 2500))
    status = _invoke_watcher({"batch_id": batch_id})
    assert status["changed"] == 2 and status["errors"] == 0  # split, then submitted
    started = record(batch_id)
    assert started.status == "in_progress" and len(provider.creates) == 3
    assert [part["status"] for part in started.object["parts"]] == ["running"] * 3
    again = _invoke_watcher({"batch_id": batch_id})  # a repeat (Lambda's retry) moves nothing
    assert again["changed"] == 0 and len(provider.creates) == 3
    assert run_to_end(provider, batch_id).status == "completed"


def test_a_lost_invocation_does_not_fail_the_create(provider: PlanProvider) -> None:
    def refuse(name: str, payload: dict[str, Any]) -> None:
        raise ConnectionError("Lambda unreachable")

    async_invoke.use_local_runner(refuse)
    try:
        batch_id = create(input_file(provider, 2500))
    finally:
        async_invoke.use_local_runner(None)
    assert record(batch_id).status == "validating"
    assert run_to_end(provider, batch_id).status == "completed"  # the passes start it


def _invoke_watcher(event: dict[str, Any]) -> dict[str, Any]:
    """batch_watcher's handler given the create's event, as Lambda runs it."""
    from handlers import batch_watcher

    from tests.unit.conftest import FakeContext

    report: dict[str, Any] = batch_watcher.handler(event, FakeContext())
    return report


# A provider's minimum per batch (Bedrock's 100 records a job) -----------------------------------
MINIMUM_CAPS = BatchCaps(
    max_requests=1000, max_bytes=10 * 1024 * 1024, enqueued_tokens=None, max_concurrent=None, min_requests=100
)


@pytest.fixture
def with_minimum(aws: None, monkeypatch: pytest.MonkeyPatch) -> PlanProvider:
    return provider_with(monkeypatch, PlanProvider(MINIMUM_CAPS))


def test_a_split_leaves_no_part_under_the_providers_minimum(with_minimum: PlanProvider) -> None:
    batch_id = create(input_file(with_minimum, 1050))  # filled to the cap: 1,000 and 50
    final = run_to_end(with_minimum, batch_id)
    assert [part["request_counts"]["total"] for part in final.object["parts"]] == [525, 525]
    assert final.status == "completed" and not final.object.get("errors")
    output = lines_of(with_minimum, final.object["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, 1051)]


def test_a_retry_under_the_minimum_is_not_submitted_and_the_batch_says_so(with_minimum: PlanProvider) -> None:
    directed = {5: "req-5-sim-expire", 700: "req-700-fail"}
    batch_id = create(input_file(with_minimum, 1050, directed), RETRY)
    final = run_to_end(with_minimum, batch_id)
    assert len(with_minimum.creates) == 2 and final.state[PLAN]["retried"] == 0  # no retry part
    errors = lines_of(with_minimum, final.object["error_file_id"])
    assert [line["custom_id"] for line in errors] == ["req-5-sim-expire", "req-700-fail"]  # first results
    (error,) = final.object["errors"]["data"]
    assert error["code"] == "retry_below_minimum" and error["param"] == "retry"
    assert "2 requests" in error["message"] and "100" in error["message"]
    assert final.status == "completed"


def test_a_part_the_provider_refuses_as_too_small_fails_its_lines_with_the_reason(
    with_minimum: PlanProvider,
) -> None:
    """A batch under the minimum run as a plan (it asks for retry): its one part is refused
    before any provider batch; its lines read the refusal's code, and the batch's errors say it."""
    final = run_to_end(with_minimum, create(input_file(with_minimum, 3), RETRY))
    assert with_minimum.creates == [] and final.status == "failed"
    errors = lines_of(with_minimum, final.object["error_file_id"])
    assert [line["error"]["code"] for line in errors] == ["too_few_requests_in_batch"] * 3
    refused, retry = final.object["errors"]["data"]
    assert refused["code"] == "too_few_requests_in_batch" and "3 requests" in refused["message"]
    assert retry["code"] == "retry_below_minimum"  # its lines never ran: too few to retry either


def check_retried_run(fake: PlanProvider, final: ObjectRecord) -> None:
    assert final.status == "completed"
    output = lines_of(fake, final.object["output_file_id"])
    assert [line["custom_id"] for line in output] == [
        RETRIED.get(n, f"req-{n}") for n in range(1, FAULT_LINES + 1)
    ]
    assert final.object["error_file_id"] is None
    assert final.object["request_counts"] == {"total": FAULT_LINES, "completed": FAULT_LINES, "failed": 0}


RETRIED = {5: "req-5-fail", 12: "req-12-sim-expire"}


@pytest.mark.parametrize("at", range(52))
def test_a_write_lost_anywhere_in_a_plan_with_retries_loses_and_doubles_no_line(
    aws: None, monkeypatch: pytest.MonkeyPatch, faults: DynamoFaults, at: int
) -> None:
    """As above, with a retry part (two directed lines run once more); each write lands and its
    answer is lost (the harder case: the caller sees a failure for a write that happened)."""
    fake = provider_with(monkeypatch, PlanProvider(SMALL))
    retry = RetryOptions(expired=True, failed_codes=["server_error"])

    writes = clean_writes(
        "retried",
        faults,
        lambda: create(input_file(fake, FAULT_LINES, RETRIED), retry),
        lambda clean: check_retried_run(fake, run_through_failures(fake, clean)),
    )
    if at >= len(writes):
        pytest.skip(f"a run makes {len(writes)} writes")
    fake.attempted.clear()  # the second run's directed lines fail on their first attempt again
    provider_batches = set(fake.batches)
    batch_id = create(input_file(fake, FAULT_LINES, RETRIED), retry)
    provider_files = set(fake.files)
    operation = writes[at]
    faults.fail(operation, writes[: at + 1].count(operation), "after")
    check_retried_run(fake, run_through_failures(fake, batch_id))
    assert faults.fired
    assert len(set(fake.batches) - provider_batches) == 4  # three parts and one retry part, once each
    assert orphan_files(fake, batch_id, set(fake.files) - provider_files) == set()


# The plan's own files in the gateway's bucket: each part's index, deleted at the finish ------------
@pytest.fixture
def plan_file_faults(aws: None) -> Iterator[PlanFileFaults]:
    s3_client.cache_clear()  # a client of this test's moto, whose calls the faults see
    yield PlanFileFaults(s3_client(), resources.PLAN_FILES_PREFIX)
    s3_client.cache_clear()


def plan_keys(batch_id: str) -> list[str]:
    listed = s3_client().list_objects_v2(
        Bucket=get_settings().bucket_name, Prefix=plan_files.plan_prefix(batch_id)
    )
    return [item["Key"] for item in listed.get("Contents") or ()]


# a clean run's plan file writes: each part's index, then one DeleteObjects at the finish
PLAN_FILE_WRITES = {False: ["PutObject"] * 3 + ["DeleteObjects"], True: ["PutObject"] * 4 + ["DeleteObjects"]}


@pytest.mark.parametrize("retried", [False, True], ids=["plain", "retried"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("at", range(5))
def test_a_failed_write_of_the_plans_files_loses_and_doubles_no_line_and_leaves_none(
    monkeypatch: pytest.MonkeyPatch,
    plan_file_faults: PlanFileFaults,
    at: int,
    when: Literal["before", "after"],
    retried: bool,
) -> None:
    """Each index written (each part's, the retry part's) and the plan's files deleted, failed
    before it happens or with its answer lost: the batch completes with every line once, in
    order, each part's provider batch made once, no file unnamed and no plan file left."""
    fake = provider_with(monkeypatch, PlanProvider(SMALL))
    directed = RETRIED if retried else {5: "req-5-fail"}
    retry = RetryOptions(expired=True, failed_codes=["server_error"]) if retried else None
    if at >= len(PLAN_FILE_WRITES[retried]):
        pytest.skip(f"a run makes {len(PLAN_FILE_WRITES[retried])} plan file writes")
    batch_id = create(input_file(fake, FAULT_LINES, directed), retry)
    provider_files = set(fake.files)
    plan_file_faults.fail(at, when)
    final = run_through_failures(fake, batch_id)
    (check_retried_run if retried else check_run)(fake, final)
    assert plan_file_faults.fired
    assert plan_file_faults.writes[at] == PLAN_FILE_WRITES[retried][at]
    assert len(fake.batches) == (4 if retried else 3)  # none submitted twice
    assert orphan_files(fake, batch_id, set(fake.files) - provider_files) == set()
    assert plan_keys(batch_id) == []


def test_a_clean_plan_writes_each_parts_index_and_deletes_them_at_its_finish(
    monkeypatch: pytest.MonkeyPatch, plan_file_faults: PlanFileFaults
) -> None:
    """Each part's index holds its lines' input line numbers, a retry part's too (its lines
    chosen from every part); the finish deletes them all."""
    fake = provider_with(monkeypatch, PlanProvider(SMALL))
    retry = RetryOptions(expired=True, failed_codes=["server_error"])
    batch_id = create(input_file(fake, FAULT_LINES, RETRIED), retry)
    step(batch_id, fake.now)  # the split
    prefix = plan_files.plan_prefix(batch_id)
    assert plan_keys(batch_id) == [plan_files.index_key(prefix, number) for number in range(3)]
    expected = {RETRIED.get(n, f"req-{n}").encode(): n for n in range(11, 21)}
    assert plan_files.read_index(plan_files.index_key(prefix, 1)) == expected
    for _ in range(20):
        if runner.plan_of(record(batch_id)).get("retried") is not None:
            break
        step(batch_id, fake.now)
        finish_running(fake)
    assert runner.plan_of(record(batch_id))["retried"] == 2
    assert plan_files.read_index(plan_files.index_key(prefix, 3)) == {
        b"req-5-fail": 5,
        b"req-12-sim-expire": 12,
    }
    check_retried_run(fake, run_through_failures(fake, batch_id))
    assert plan_file_faults.writes == PLAN_FILE_WRITES[True]
    assert plan_keys(batch_id) == []


def without_indexes(batch_id: str) -> None:
    """The plan as an earlier release left it: parts that name no index, and none in the bucket."""
    plan = runner.plan_of(record(batch_id))
    for part in parts.load(IdMap(), batch_id, int(plan["parts"])):
        part.state = {name: value for name, value in part.state.items() if name != runner.INDEX_KEY}
        assert parts.save(IdMap(), part)
    plan_files.delete_plan_files(batch_id)


@pytest.mark.parametrize("since", ["split", "retry split"])
def test_a_plan_split_before_parts_kept_an_index_merges_from_its_part_files(
    aws: None, monkeypatch: pytest.MonkeyPatch, since: str
) -> None:
    """A plan in flight across the upgrade: its parts' custom_ids are read from their files at
    the provider (retry selection, expired lines, merge), numbered as the earlier release did."""
    fake = provider_with(monkeypatch, PlanProvider(SMALL))
    batch_id = create(
        input_file(fake, FAULT_LINES, RETRIED), RetryOptions(expired=True, failed_codes=["server_error"])
    )
    for _ in range(20):
        plan = runner.plan_of(record(batch_id))
        if plan.get("retried" if since == "retry split" else "parts") is not None:
            break
        step(batch_id, fake.now)
        finish_running(fake)
    without_indexes(batch_id)
    check_retried_run(fake, run_through_failures(fake, batch_id))
