"""A create too large to translate and send inside API Gateway's 29 s (service.plan.sync_send),
through the openai SDK against the local gateway: answered at once `validating` with one id, the
Anthropic (or Gemini) batch made by the watcher as a plan of one part, and the same output a
direct create of the same file gives. The threshold is lowered (the `sync_create_max_bytes` setting) so that
a small file crosses it; time is driven (the simulator's stepped clock, one watcher pass at a time)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway.runtime.settings import get_settings

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import TERMINAL_BATCH_STATUSES, client

MODELS = {"anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
LINES = 12
THRESHOLD = 1000  # bytes: the file below is about 2 KB


def request_file(model: str) -> bytes:
    lines = [
        {
            "custom_id": f"line-{number:02d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "max_tokens": 40,
                "messages": [{"role": "user", "content": f"Say {number}."}],
            },
        }
        for number in range(LINES)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def simulated(gateway: LocalGateway, provider: str) -> Any:
    """The simulator's batches of `provider` (their `lock`, `batches` and `clock`)."""
    assert gateway.simulator is not None
    return gateway.simulator.state.anthropic if provider == "anthropic" else gateway.simulator.gemini


@pytest.fixture(params=list(MODELS))
def stepped(
    local_gateway: LocalGateway, request: pytest.FixtureRequest
) -> Iterator[tuple[str, SteppedClock, float]]:
    """A provider whose batches run on a clock the test steps, a little ahead of the gateway's
    (a skew it tolerates), and the length of a batch's phase."""
    assert local_gateway.simulator is not None
    provider = str(request.param)
    batches = simulated(local_gateway, provider)
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, batches.clock = batches.clock, clock
    try:
        yield provider, clock, local_gateway.simulator.config.batch_phase_seconds
    finally:
        batches.clock = saved


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "sync_create_max_bytes", THRESHOLD)


def outputs(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines() if line.strip()]


def answers(lines: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What a line's answer says, without the ids each provider batch mints anew."""
    found = {}
    for line in lines:
        body = line["response"]["body"]
        message = body["choices"][0]["message"]
        found[line["custom_id"]] = (line["response"]["status_code"], message["content"], body["usage"])
    return found


def test_a_create_over_the_threshold_answers_at_once_and_the_watcher_sends_it_as_one_part(
    local_gateway: LocalGateway,
    stepped: tuple[str, SteppedClock, float],
    lowered: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, clock, phase = stepped
    sdk = client(local_gateway, provider=provider)
    content = request_file(MODELS[provider])
    assert len(content) > THRESHOLD
    uploaded = sdk.files.create(file=("in.jsonl", io.BytesIO(content), "application/jsonl"), purpose="batch")
    upstream = simulated(local_gateway, provider)
    with upstream.lock:
        before = set(upstream.batches)
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.id.startswith("batch_") and batch.status == "validating"
    assert not (batch.model_extra or {}).get("parts")
    with upstream.lock:
        assert set(upstream.batches) == before  # the create sent nothing to the provider
    assert local_gateway.wait_for_async(30)  # the watcher, invoked for this batch, sends it
    started = sdk.batches.retrieve(batch.id)
    (part,) = started.model_extra["parts"]
    assert part["status"] == "running" and part["provider_batch_id"]
    assert part["request_counts"]["total"] == LINES
    with upstream.lock:
        made = set(upstream.batches) - before
    assert len(made) == 1  # one provider batch, the part's
    assert local_gateway.watcher is not None
    final = started
    for _ in range(10):  # a watcher pass at a time, the provider's clock past its phases
        clock.step(2 * phase)
        local_gateway.watcher.run_once()
        final = sdk.batches.retrieve(batch.id)
        if final.status in TERMINAL_BATCH_STATUSES and final.model_extra.get("cost") is not None:
            break
    assert final.status == "completed", final
    assert final.request_counts is not None
    assert final.request_counts.model_dump() == {"total": LINES, "completed": LINES, "failed": 0}
    (part,) = final.model_extra["parts"]
    assert part["status"] == "done" and part["upstream_status"] == "completed"
    planned = outputs(sdk, final.output_file_id)
    assert [line["custom_id"] for line in planned] == [f"line-{n:02d}" for n in range(LINES)]

    # the same file created directly (the threshold back to its measured figure): same answers
    monkeypatch.setattr(get_settings(), "sync_create_max_bytes", None)
    direct = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert direct.status in {"validating", "in_progress"} and not (direct.model_extra or {}).get("parts")
    with upstream.lock:
        assert len(set(upstream.batches) - before) == 2  # made by the create itself
    clock.step(2 * phase)
    done = sdk.batches.retrieve(direct.id)
    assert done.status == "completed" and done.request_counts == final.request_counts
    assert answers(outputs(sdk, done.output_file_id)) == answers(planned)
    assert final.error_file_id is None and done.error_file_id is None
    assert final.usage is not None and done.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        done.usage.input_tokens,
        done.usage.output_tokens,
    )
