"""A plan whose parts the gateway translates and sends itself (an Anthropic deployment here): a
create over the sync-send threshold is planned, and each watcher pass submits parts only while
their bytes stay within what the watcher sends in a pass (`sync_send.part_max_bytes`); an OpenAI
plan submits every part at once. Driven one step at a time against the in-memory provider; the
books are checked after each test by this suite's conftest."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest
from gateway.http.auth import MASTER
from gateway.models.batches import CreateBatchRequest
from gateway.providers.kept_files import KeptFiles
from gateway.runtime import resources
from gateway.runtime.settings import get_settings, reset_settings
from gateway.service import batches
from gateway.service.batch_input_check import BATCH_CHECK_STATE, checked_figures
from gateway.service.plan import parts, sync_send
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import PLAN

from tests.unit.fault_injection.plan_provider import PlanProvider, request_line, token_estimate
from tests.unit.fault_injection.test_plan import CAPS, lines_of, provider_with, record, run_to_end, step

LINES = 3000  # three parts of CAPS' 1,000 requests


class PassBytes(sync_send.Measured):
    """A type's figure with the watcher's bytes a pass set by the test."""

    def __init__(self, pass_bytes: int) -> None:
        super().__init__(mb_per_second=1.0, source="test")
        object.__setattr__(self, "_pass_bytes", pass_bytes)

    @property
    def pass_bytes(self) -> int:
        return int(getattr(self, "_pass_bytes"))  # noqa: B009


class ClaudeProvider(PlanProvider):
    @property
    def kept(self) -> KeptFiles:
        return KeptFiles("claude")


@contextlib.contextmanager
def deployments(monkeypatch: pytest.MonkeyPatch, fake: PlanProvider) -> Iterator[PlanProvider]:
    """An Anthropic deployment `claude` beside `openai`, both served by `fake`, and every
    create of a type that sends its input over the sync-send threshold."""
    providers = json.loads(os.environ[resources.ENV_PROVIDERS]) | {"claude": {"type": "anthropic"}}
    monkeypatch.setenv(resources.ENV_PROVIDERS, json.dumps(providers))
    monkeypatch.setenv(resources.ENV_SYNC_CREATE_MAX_BYTES, "1000")
    reset_settings()
    try:
        yield provider_with(monkeypatch, fake)
    finally:
        monkeypatch.undo()
        reset_settings()


@pytest.fixture
def claude(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlanProvider]:
    with deployments(monkeypatch, ClaudeProvider(CAPS)) as fake:
        yield fake


@pytest.fixture
def openai_fake(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlanProvider]:
    with deployments(monkeypatch, PlanProvider(CAPS)) as fake:
        yield fake


def input_file(fake: PlanProvider, provider: str, count: int) -> tuple[str, list[int]]:
    """A processed batch file of `count` requests at `provider`; its id and each part's bytes
    as the part's token estimate counts them."""
    lines = [request_line(n) for n in range(1, count + 1)]
    content = b"\n".join(lines) + b"\n"
    upstream = fake.create_file(filename="in.jsonl", content=content, purpose="batch")
    file_id = f"file-{provider}-{upstream['id']}"
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner="master",
            provider=provider,
            created_at=fake.now,
            object={**upstream, "id": file_id},
            upstream_id=upstream["id"],
            purpose="batch",
            state={BATCH_CHECK_STATE: checked_figures(content)},
        )
    )
    size = CAPS.max_requests
    pieces = [b"\n".join(lines[start : start + size]) for start in range(0, count, size)]
    return file_id, [4 * token_estimate(piece) for piece in pieces]


def create(file_id: str) -> str:
    request = CreateBatchRequest(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batches.create_batch(MASTER, None, request).id


def statuses(batch_id: str) -> list[str]:
    return [parts.status(part) for part in parts.load(IdMap(), batch_id, 3)]


def test_a_pass_sends_parts_within_the_watchers_bytes_and_the_next_pass_the_rest(
    claude: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id, part_bytes = input_file(claude, "claude", LINES)
    assert get_settings().sync_create_max_bytes == 1000
    room = part_bytes[0] + part_bytes[1]  # two parts a pass
    monkeypatch.setitem(sync_send.MEASURED, "anthropic", PassBytes(room))
    batch_id = create(file_id)
    created = record(batch_id)
    assert created.status == "validating" and created.upstream_id is None and claude.creates == []
    assert created.state[PLAN]["limits"]["max_bytes"] == room

    step(batch_id)  # split
    assert statuses(batch_id) == ["ready"] * 3
    step(batch_id)  # two parts sent: the third would pass the pass's bytes
    assert statuses(batch_id) == ["running", "running", "ready"] and len(claude.creates) == 2
    step(batch_id)  # the next pass sends it
    assert statuses(batch_id) == ["running"] * 3 and len(claude.creates) == 3

    final = run_to_end(claude, batch_id)
    assert final.status == "completed"
    assert final.object["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    output = lines_of(claude, final.object["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"req-{n}" for n in range(1, LINES + 1)]


def test_a_part_larger_than_a_pass_is_still_sent_alone(
    claude: PlanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first part of a pass always goes (the plan never makes one larger than a pass, but a
    figure lowered since the split must not stall it)."""
    file_id, part_bytes = input_file(claude, "claude", LINES)
    monkeypatch.setitem(sync_send.MEASURED, "anthropic", PassBytes(4 * part_bytes[0]))
    batch_id = create(file_id)
    step(batch_id)  # split, by requests: three parts
    monkeypatch.setitem(sync_send.MEASURED, "anthropic", PassBytes(part_bytes[0] // 2))
    for sent in (1, 2, 3):
        step(batch_id)
        assert len(claude.creates) == sent
    assert run_to_end(claude, batch_id).status == "completed"


def test_an_openai_plan_submits_every_part_in_one_pass(openai_fake: PlanProvider) -> None:
    """Its create sends a file id: no bytes a pass, and no sync-send plan either (planned here
    by its requests)."""
    file_id, _ = input_file(openai_fake, "openai", LINES)
    batch_id = create(file_id)
    assert record(batch_id).state[PLAN]["limits"]["max_bytes"] == CAPS.max_bytes
    step(batch_id)
    step(batch_id)
    assert statuses(batch_id) == ["running"] * 3 and len(openai_fake.creates) == 3
    assert run_to_end(openai_fake, batch_id).status == "completed"
