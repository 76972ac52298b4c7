"""Gemini Batch Mode through the unchanged openai SDK on base_url <gateway>/gemini/v1: upload,
create, drive the simulator's clock, download; custom_id round trip; errored and expired lines;
cancel midway; the upload check; a create whose answer was lost; the limits."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from devserver.simulator.gemini import GeminiApi
from devserver.simulator.gemini_records import GeminiBatch
from tests.integration.helpers import client, error_of

MODEL = "gemini-2.5-flash"


def chat_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": text}], **body},
    }


def upload(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> openai.types.FileObject:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return sdk.files.create(file=("in.jsonl", io.BytesIO(data), "application/jsonl"), purpose="batch")


def create(sdk: openai.OpenAI, file_id: str, **kwargs: Any) -> openai.types.Batch:
    return sdk.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", **kwargs
    )


def lines_of(sdk: openai.OpenAI, file_id: str) -> dict[str, dict[str, Any]]:
    return {line["custom_id"]: line for line in map(json.loads, sdk.files.content(file_id).text.splitlines())}


def gemini(gateway: LocalGateway) -> GeminiApi:
    assert gateway.simulator is not None
    return gateway.simulator.gemini


def gemini_batches(gateway: LocalGateway) -> dict[str, GeminiBatch]:
    api = gemini(gateway)
    with api.lock:
        return dict(api.batches)


@pytest.fixture
def stepped(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Gemini batches on a clock the test steps, a little ahead of the gateway's
    (a skew it tolerates), and their phase."""
    assert local_gateway.simulator is not None
    api = gemini(local_gateway)
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, api.clock = api.clock, clock
    try:
        yield clock, local_gateway.simulator.config.batch_phase_seconds
    finally:
        api.clock = saved


def ended(sdk: openai.OpenAI, stepped: tuple[SteppedClock, float], batch_id: str) -> openai.types.Batch:
    clock, phase = stepped
    clock.step(2 * phase)
    return sdk.batches.retrieve(batch_id)


def test_upload_create_wait_download(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="gemini")
    uploaded = upload(
        sdk,
        [
            chat_line("request-1", "Say hello in French.", max_tokens=50),
            chat_line("request 2/ü", "Say hello in German.", temperature=0.2, stop=["zzz"]),
            chat_line("request-3-sim-fail-server_error", "This one fails."),
        ],
    )
    assert uploaded.status == "processed" and uploaded.purpose == "batch"
    created = create(sdk, uploaded.id, metadata={"team": "a"})
    assert created.id.startswith("batch_") and created.status == "validating"
    assert created.metadata == {"team": "a"}  # the gateway's adoption tag is not shown
    done = ended(client(local_gateway), stepped, created.id)  # plain /v1 finds its provider
    openai.types.Batch.model_validate(done.to_dict())
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    assert done.usage is not None and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    assert done.output_file_id and done.error_file_id
    succeeded = lines_of(sdk, done.output_file_id)
    assert sorted(succeeded) == ["request 2/ü", "request-1"]  # the custom_ids as the client wrote them
    body = succeeded["request-1"]["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    assert "Say hello in French." in body["choices"][0]["message"]["content"]
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    failed = lines_of(sdk, done.error_file_id)["request-3-sim-fail-server_error"]
    assert failed["response"]["status_code"] == 500
    assert failed["response"]["body"]["error"]["code"] == "server_error"
    again = sdk.batches.retrieve(created.id)
    assert (again.output_file_id, again.error_file_id) == (done.output_file_id, done.error_file_id)
    assert created.id in {batch.id for batch in sdk.batches.list(limit=100)}


def test_translated_request_reaches_gemini(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="gemini")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    line = chat_line(
        "t-1",
        "Where is the Eiffel tower?",
        max_completion_tokens=77,
        reasoning_effort="low",
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    line["body"]["messages"].insert(0, {"role": "system", "content": "Be brief."})
    before = set(gemini_batches(local_gateway))
    created = create(sdk, upload(sdk, [line]).id)
    [new] = [b for key, b in gemini_batches(local_gateway).items() if key not in before]
    assert new.display_name.startswith("gw-batch_") and new.model == MODEL
    request = new.lines[0].request
    assert new.lines[0].key == "t-1"
    assert request["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert request["generationConfig"] == {
        "maxOutputTokens": 77,
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 1024},
    }
    done = ended(sdk, stepped, created.id)
    assert done.output_file_id
    body = lines_of(sdk, done.output_file_id)["t-1"]["response"]["body"]
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "sample"}
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_cancel_midway_leaves_partial_results(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="gemini")
    clock, phase = stepped
    created = create(sdk, upload(sdk, [chat_line(f"c-{i}", f"n {i}") for i in range(20)]).id)
    clock.step(phase * 1.52)  # half way through the running phase: 10 of the 20 requests are done
    cancelled = sdk.batches.cancel(created.id)
    assert cancelled.status in ("cancelling", "cancelled")
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled" and done.cancelled_at
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        20,
        10,
        0,
    )
    assert done.output_file_id and done.error_file_id is None
    assert sorted(lines_of(sdk, done.output_file_id)) == sorted(f"c-{i}" for i in range(10))


def test_an_expired_request_is_an_error_line_and_the_batch_expires(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="gemini")
    created = create(sdk, upload(sdk, [chat_line("ok", "hi"), chat_line("late-sim-expire", "slow")]).id)
    done = ended(sdk, stepped, created.id)
    assert done.status == "expired" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    assert done.error_file_id
    assert lines_of(sdk, done.error_file_id)["late-sim-expire"]["error"]["code"] == "batch_expired"


def test_an_untranslatable_line_fails_the_batch_at_create_with_its_number(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway, provider="gemini")
    before = set(gemini_batches(local_gateway))
    file = upload(sdk, [chat_line("b-1", "hi"), chat_line("b-2", "hi", stop=["1", "2", "3", "4", "5", "6"])])
    batch = create(sdk, file.id)
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    (error,) = batch.errors.data
    assert (error.code, error.line) == ("untranslatable_line", 2)
    assert error.message is not None and "at most 5 stop sequences" in error.message
    assert set(gemini_batches(local_gateway)) == before  # nothing reached Gemini


def test_only_chat_completions_batches(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway, provider="gemini")
    uploaded = upload(sdk, [chat_line("ok", "hi")])
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    error = error_of(raised.value)
    assert error["param"] == "endpoint" and "/v1/chat/completions" in error["message"]


def test_the_input_size_limit_answers_400_naming_it(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.providers.gemini import client as adapter

    sdk = client(local_gateway, provider="gemini")
    uploaded = upload(sdk, [chat_line(f"l-{i}", "hi") for i in range(3)])
    monkeypatch.setattr(adapter, "MAX_INPUT_BYTES", 200)
    with pytest.raises(openai.BadRequestError) as raised:
        create(sdk, uploaded.id)
    assert "at most 2 GB" in error_of(raised.value)["message"]


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, stepped: tuple[SteppedClock, float]
) -> None:
    """Gemini made the batch, the gateway never heard: the SDK's retry with the same
    Idempotency-Key meets the batch its displayName names, not a second one."""
    from gateway.errors import UpstreamTimeoutError
    from gateway.providers.gemini.client import GeminiClient
    from gateway.service import adoption

    real = GeminiClient._json
    lost: list[str] = []

    def accept_then_time_out(self: GeminiClient, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = real(self, method, path, **kwargs)
        if path.endswith(":batchGenerateContent") and not lost:
            lost.append(str(answer["name"]).removeprefix("batches/"))
            raise UpstreamTimeoutError(f"provider '{self.name}' did not answer in time")
        return answer

    monkeypatch.setattr(GeminiClient, "_json", accept_then_time_out)
    monkeypatch.setattr(adoption, "SETTLE_SECONDS", 0)
    sdk = client(local_gateway, provider="gemini")
    uploaded = upload(sdk, [chat_line("a-1", "hi"), chat_line("a-2", "ho")])
    before = set(gemini_batches(local_gateway))
    retrying = sdk.with_options(max_retries=2, default_headers={"Idempotency-Key": f"gemini-{time.time()}"})
    batch = create(retrying, uploaded.id, metadata={"k": "v"})
    assert lost and set(gemini_batches(local_gateway)) - before == set(lost)
    assert batch.metadata == {"k": "v"}
    done = ended(sdk, stepped, batch.id)
    assert (
        done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 2
    )


def test_a_create_past_the_concurrent_batches_quota_is_a_429_then_passes(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    """Google's 429 RESOURCE_EXHAUSTED reaches the client as OpenAI's rate limit error, and
    leaves nothing behind: once the batch in progress ends, the same create passes."""
    from devserver.simulator.limits import SimulatorLimits

    assert local_gateway.simulator is not None
    sdk = client(local_gateway, provider="gemini")
    clock, phase = stepped
    clock.step(3 * phase)  # every earlier batch has ended
    saved = local_gateway.simulator.config.limits
    local_gateway.simulator.set_limits(SimulatorLimits(concurrent_jobs=1))
    try:
        first = create(sdk, upload(sdk, [chat_line("q-1", "hi")]).id)
        second_file = upload(sdk, [chat_line("q-2", "ho")])
        before = set(gemini_batches(local_gateway))
        with pytest.raises(openai.RateLimitError) as raised:
            create(sdk, second_file.id)
        assert error_of(raised.value)["code"] == "rate_limit_exceeded"
        assert set(gemini_batches(local_gateway)) == before
        assert ended(sdk, stepped, first.id).status == "completed"
        second = create(sdk, second_file.id)
        assert ended(sdk, stepped, second.id).status == "completed"
    finally:
        local_gateway.simulator.set_limits(saved)


def test_a_batch_past_its_caps_runs_as_parts_and_a_part_refused_for_quota_waits(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six lines, two per Gemini batch, Google running two batches at once: the third part's
    create is refused (429 RESOURCE_EXHAUSTED), waits, is submitted again; one merged output."""
    from gateway.providers import registry
    from gateway.providers.config import BatchCapsOverride
    from gateway.runtime.settings import get_settings

    from devserver.simulator.limits import SimulatorLimits
    from tests import books_check
    from tests.integration.helpers import TERMINAL_BATCH_STATUSES

    assert local_gateway.simulator is not None and local_gateway.watcher is not None
    clock, phase = stepped
    clock.step(3 * phase)  # every earlier batch has ended
    saved = local_gateway.simulator.config.limits
    local_gateway.simulator.set_limits(SimulatorLimits(concurrent_jobs=2))
    registry.reset_clients()
    monkeypatch.setattr(get_settings().providers["gemini"], "batch_caps", BatchCapsOverride(max_requests=2))
    try:
        sdk = client(local_gateway, provider="gemini")
        custom_ids = [f"p-{n}" for n in range(6)]
        created = create(sdk, upload(sdk, [chat_line(cid, f"Say {cid}") for cid in custom_ids]).id)
        assert local_gateway.wait_for_async(30)  # the plan's start, invoked by the create
        seen = [sdk.batches.retrieve(created.id)]  # two parts running, the third refused: waiting
        for number in range(1, 40):
            with books_check.clock_forward(number * 70):  # past a waiting part's backoff
                local_gateway.watcher.run_once()
                batch = sdk.batches.retrieve(created.id)
            seen.append(batch)
            if batch.status in TERMINAL_BATCH_STATUSES and batch.model_extra.get("cost") is not None:
                break
            clock.step(2 * phase)  # the parts submitted so far end
        final = seen[-1]
        assert final.status == "completed", final
        assert final.request_counts is not None and final.request_counts.completed == 6
        assert final.output_file_id is not None
        assert [
            line["custom_id"]
            for line in map(json.loads, sdk.files.content(final.output_file_id).text.splitlines())
        ] == custom_ids
        parts = final.model_extra["parts"]
        assert len(parts) == 3 and all(part["upstream_status"] == "completed" for part in parts)
        assert any(p["status"] == "waiting" for b in seen for p in b.model_extra.get("parts") or ())
        assert final.model_extra["cost"]["total"] > 0  # priced at Gemini's batch column
    finally:
        local_gateway.simulator.set_limits(saved)
        registry.reset_clients()


def test_a_rejected_gemini_key_is_read_again_and_never_logged(local_gateway: LocalGateway) -> None:
    """Google rejects the gateway's key (400 API_KEY_INVALID): the gateway reads it again, answers
    OpenAI's 502-class upstream error, and no key reaches the logs."""
    import logging

    from gateway.observability import logger as gateway_logger

    from devserver.server import SIM_GEMINI_KEY

    assert local_gateway.simulator is not None
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(gateway_logger.registered_formatter)
    python_logger = logging.getLogger(gateway_logger.name)
    python_logger.addHandler(handler)
    sdk = client(local_gateway, provider="gemini")
    uploaded = upload(sdk, [chat_line("k-1", "hi")])
    local_gateway.simulator.set_keys(gemini_key="rotated-at-google")
    try:
        with pytest.raises(openai.APIStatusError) as raised:
            create(sdk, uploaded.id)
        assert raised.value.status_code >= 500
        assert error_of(raised.value)["code"] == "upstream_authentication_failed"
    finally:
        local_gateway.simulator.set_keys(gemini_key=SIM_GEMINI_KEY)
        python_logger.removeHandler(handler)
    logs = stream.getvalue()
    assert "provider rejected the key" in logs
    assert SIM_GEMINI_KEY not in logs and "rotated-at-google" not in logs
    assert create(sdk, uploaded.id).status == "validating"  # the key is right again: the same create passes
