"""Anthropic Message Batches through the unchanged openai SDK on base_url <gateway>/anthropic/v1:
upload, create, wait, download; cancel midway; custom_id mapping; the limits; the upload check."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway.providers.anthropic import shapes as anthropic_shapes

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import client, error_of

MODEL = "claude-sonnet-4-5"


def chat_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": text}], **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> openai.types.FileObject:
    return sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines)), "application/jsonl"), purpose="batch")


def create(sdk: openai.OpenAI, file_id: str, **kwargs: Any) -> openai.types.Batch:
    return sdk.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", **kwargs
    )


def lines_of(sdk: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines()]


def anthropic_batches(gateway: LocalGateway) -> dict[str, Any]:
    assert gateway.simulator is not None
    state = gateway.simulator.state.anthropic
    with state.lock:
        return dict(state.batches)


@pytest.fixture
def stepped(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Anthropic batches on a clock the test steps (and their phase). It starts
    a little ahead of the gateway's, a skew the gateway tolerates: a batch is never made before
    the gateway's attempt to make it, however long the test took to get there."""
    assert local_gateway.simulator is not None
    batches = local_gateway.simulator.state.anthropic
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, batches.clock = batches.clock, clock
    try:
        yield clock, local_gateway.simulator.config.batch_phase_seconds
    finally:
        batches.clock = saved


def ended(sdk: openai.OpenAI, stepped: tuple[SteppedClock, float], batch_id: str) -> openai.types.Batch:
    """The batch once the simulator's clock has passed both its phases."""
    clock, phase = stepped
    clock.step(2 * phase)
    return sdk.batches.retrieve(batch_id)


def test_upload_create_wait_download(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    # Anthropic refuses a conversation that opens with the assistant: that request errors alone.
    failing = chat_line("request-3", "")
    failing["body"]["messages"] = [{"role": "assistant", "content": "I start."}]
    uploaded = upload(
        sdk,
        [
            chat_line("request-1", "Say hello in French.", max_tokens=50),
            chat_line("request-2", "Say hello in German.", temperature=0.2, stop=["zzz"]),
            failing,
        ],
    )
    assert uploaded.status == "processed" and uploaded.purpose == "batch"
    assert sdk.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert sdk.files.content(uploaded.id).content.count(b"\n") == 3
    created = create(sdk, uploaded.id, metadata={"team": "a"})
    assert created.id.startswith("batch_") and created.status == "in_progress"
    assert created.metadata == {"team": "a"}  # the gateway's adoption tag is not shown
    done = ended(client(local_gateway), stepped, created.id)  # plain /v1 finds its provider
    openai.types.Batch.model_validate(done.to_dict())
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    assert done.completed_at and done.input_file_id == uploaded.id
    # settled once from the output file, as for any provider: the two succeeded requests' tokens
    assert done.usage is not None and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    assert done.output_file_id and done.error_file_id
    output = sdk.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output" and output.id.startswith("file-")
    succeeded = {line["custom_id"]: line for line in lines_of(sdk, done.output_file_id)}
    assert sorted(succeeded) == ["request-1", "request-2"]
    body = succeeded["request-1"]["response"]["body"]
    assert succeeded["request-1"]["response"]["status_code"] == 200
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "Say hello in French." in body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert (
        usage["prompt_tokens"] > 0
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )
    [failed] = lines_of(sdk, done.error_file_id)
    assert failed["custom_id"] == "request-3"
    assert failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert "first message" in failed["response"]["body"]["error"]["message"]
    # Retrieved again: the same files (kept once), and listed like any batch.
    again = sdk.batches.retrieve(created.id)
    assert (again.output_file_id, again.error_file_id) == (done.output_file_id, done.error_file_id)
    assert created.id in {batch.id for batch in sdk.batches.list(limit=100)}


def test_translated_request_reaches_anthropic(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    line = chat_line("t-1", "Use the tool.", max_completion_tokens=77, tools=tools, tool_choice="required")
    line["body"]["messages"].insert(0, {"role": "system", "content": "Be brief."})
    before = set(anthropic_batches(local_gateway))
    created = create(sdk, upload(sdk, [line]).id)
    [new] = [batch for key, batch in anthropic_batches(local_gateway).items() if key not in before]
    params = new.requests[0]["params"]
    assert params["system"] == "Be brief." and params["max_tokens"] == 77
    assert params["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert params["tool_choice"] == {"type": "any"}
    done = ended(sdk, stepped, created.id)
    assert done.output_file_id is not None
    [result] = lines_of(sdk, done.output_file_id)
    choice = result["response"]["body"]["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": "{}"}


def test_custom_ids_anthropic_refuses_are_mapped_and_back(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    odd = ["order #1/ünïcode", "x" * 80, "plain_id-2"]
    before = set(anthropic_batches(local_gateway))
    created = create(sdk, upload(sdk, [chat_line(custom_id, "hi") for custom_id in odd]).id)
    [new] = [batch for key, batch in anthropic_batches(local_gateway).items() if key not in before]
    sent = [request["custom_id"] for request in new.requests]
    assert sent[2] == "plain_id-2"  # a valid id travels as is
    assert all(anthropic_shapes.CUSTOM_ID.match(custom_id) for custom_id in sent)
    assert len(set(sent)) == 3
    done = ended(sdk, stepped, created.id)
    assert done.output_file_id is not None
    assert sorted(line["custom_id"] for line in lines_of(sdk, done.output_file_id)) == sorted(odd)


def test_cancel_midway_leaves_partial_results(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    """OpenAI's rule for a cancelled batch: the requests that ran are counted and in the files;
    those never run count in `total` only (not `failed`) and have no error line."""
    sdk = client(local_gateway, provider="anthropic")
    clock, phase = stepped
    created = create(sdk, upload(sdk, [chat_line(f"c-{i}", f"n {i}") for i in range(20)]).id)
    clock.step(phase * 1.52)  # about half way through the second phase: 10 of the 20 requests are done
    cancelling = sdk.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    clock.step(phase)  # the cancel's phase
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled" and done.cancelled_at
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (20, 10, 0)
    assert done.output_file_id and done.error_file_id is None
    assert len(lines_of(sdk, done.output_file_id)) == 10


def test_lines_the_messages_api_refuses_as_written_are_translated_and_run(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    """A whitespace-only stop, temperature with top_p on a Claude 4.5 model, another provider's
    tool call ids and empty text blocks: each refused by Anthropic (and by the simulator) as
    written; translated, every request succeeds."""
    sdk = client(local_gateway, provider="anthropic")
    call = {"id": "functions.get_weather:0", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    tool_turns = [
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "15 degrees"},
    ]
    lines = [
        chat_line("stop", "hi", stop=["\n"]),
        chat_line("sampling", "hi", temperature=0.2, top_p=0.9),
        {**chat_line("tools", "x"), "body": {"model": MODEL, "messages": tool_turns}},
    ]
    created = create(sdk, upload(sdk, lines).id)
    clock, phase = stepped
    clock.step(2 * phase)  # both phases: the batch has ended
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 0), done.error_file_id


def test_an_input_file_of_another_purpose_is_a_400_and_leaves_no_batch(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway, provider="anthropic")
    other = sdk.files.create(file=("notes.txt", io.BytesIO(b"not a batch file\n")), purpose="user_data")
    before = {batch.id for batch in sdk.batches.list(limit=100)}
    with pytest.raises(openai.BadRequestError) as raised:
        create(sdk, other.id)
    error = error_of(raised.value)
    assert error["param"] == "input_file_id" and "purpose 'batch'" in error["message"]
    assert {batch.id for batch in sdk.batches.list(limit=100)} == before  # no record left validating


def test_an_untranslatable_line_fails_the_batch_at_create_with_its_number(
    local_gateway: LocalGateway,
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    bad = chat_line("b-2", "hi", logit_bias={"50256": -100})
    file = upload(sdk, [chat_line("b-1", "hi"), bad])  # JSON Lines of objects: the upload takes it
    batch = create(sdk, file.id)
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    (error,) = batch.errors.data
    assert (error.code, error.line) == ("untranslatable_line", 2)
    assert error.message is not None and error.message.startswith("body.logit_bias")


def test_only_chat_completions_batches(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway, provider="anthropic")
    embeddings = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "m", "input": "x"},
    }
    embeddings_file = upload(sdk, [embeddings])  # JSON Lines of objects: the upload takes it
    failed = create(sdk, embeddings_file.id)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data is not None
    (line_error,) = failed.errors.data
    assert (line_error.code, line_error.param, line_error.line) == ("invalid_url", "url", 1)
    assert line_error.message is not None and "/v1/chat/completions" in line_error.message
    uploaded = upload(sdk, [chat_line("ok", "hi")])
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    error = error_of(raised.value)
    assert error["param"] == "endpoint" and "/v1/chat/completions" in error["message"]


def test_limits_answer_400_naming_the_limit(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = client(local_gateway, provider="anthropic")
    uploaded = upload(sdk, [chat_line(f"l-{i}", "hi") for i in range(3)])
    monkeypatch.setattr(anthropic_shapes, "MAX_REQUESTS", 2)
    with pytest.raises(openai.BadRequestError) as raised:
        create(sdk, uploaded.id)
    assert "at most 2 requests" in error_of(raised.value)["message"]
    monkeypatch.setattr(anthropic_shapes, "MAX_REQUESTS", 100_000)
    monkeypatch.setattr(anthropic_shapes, "MAX_BATCH_BYTES", 200)
    with pytest.raises(openai.BadRequestError) as raised:
        create(sdk, uploaded.id)
    assert "256 MB" in error_of(raised.value)["message"]


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, stepped: tuple[SteppedClock, float]
) -> None:
    """Anthropic accepted the batch, the gateway never heard (its note of the batch unwritten):
    the SDK's retry with the same Idempotency-Key finds it through the note written ahead."""
    from gateway.errors import UpstreamTimeoutError
    from gateway.providers.anthropic.client import AnthropicClient
    from gateway.service import adoption

    real = AnthropicClient._json
    lost: list[str] = []

    def accept_then_time_out(self: AnthropicClient, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = real(self, method, path, **kwargs)
        if method == "POST" and path.endswith("/batches") and not lost:
            lost.append(str(answer["id"]))
            raise UpstreamTimeoutError(f"provider '{self.name}' did not answer in time")
        return answer

    monkeypatch.setattr(AnthropicClient, "_json", accept_then_time_out)
    monkeypatch.setattr(adoption, "SETTLE_SECONDS", 0)
    sdk = client(local_gateway, provider="anthropic")
    uploaded = upload(sdk, [chat_line("a-1", "hi"), chat_line("a-2", "ho")])
    before = set(anthropic_batches(local_gateway))
    retrying = sdk.with_options(
        max_retries=2, default_headers={"Idempotency-Key": f"anthropic-{time.time()}"}
    )
    batch = create(retrying, uploaded.id, metadata={"k": "v"})
    assert lost and set(anthropic_batches(local_gateway)) - before == set(lost)
    assert batch.metadata == {"k": "v"}
    done = ended(sdk, stepped, batch.id)
    assert (
        done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 2
    )


def test_a_create_that_dies_before_its_note_is_adopted_by_the_retry(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, stepped: tuple[SteppedClock, float]
) -> None:
    """Anthropic made the batch, writing the gateway's note of it failed: the retry adopts the
    batch through the note written ahead, and writes the note."""
    from gateway.providers.batch_notes import BatchNotes
    from gateway.service import adoption

    real = BatchNotes.put
    failed: list[str] = []

    def fail_once(self: BatchNotes, upstream_id: str, note: dict[str, Any]) -> None:
        if not failed:
            failed.append(upstream_id)
            raise OSError("S3 went away")
        real(self, upstream_id, note)

    monkeypatch.setattr(BatchNotes, "put", fail_once)
    monkeypatch.setattr(adoption, "SETTLE_SECONDS", 0)
    sdk = client(local_gateway, provider="anthropic")
    uploaded = upload(sdk, [chat_line("n-1", "hi")])
    before = set(anthropic_batches(local_gateway))
    retrying = sdk.with_options(max_retries=2, default_headers={"Idempotency-Key": f"note-{time.time()}"})
    batch = create(retrying, uploaded.id)
    assert failed and set(anthropic_batches(local_gateway)) - before == set(failed)
    assert BatchNotes("anthropic").get(failed[0]) is not None
    assert ended(sdk, stepped, batch.id).status == "completed"


def test_keeping_results_that_fails_midway_is_finished_by_the_next_retrieve(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, stepped: tuple[SteppedClock, float]
) -> None:
    from gateway.providers.kept_files import KeptFiles

    sdk = client(local_gateway, provider="anthropic")
    failing = chat_line("k-2", "")
    failing["body"]["messages"] = [{"role": "assistant", "content": "first"}]
    created = create(sdk, upload(sdk, [chat_line("k-1", "hi"), failing]).id)
    real = KeptFiles.put_file
    calls: list[str] = []

    def second_write_fails(self: KeptFiles, file_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(file_id)
        if len(calls) == 2:
            raise OSError("S3 went away")
        return real(self, file_id, *args, **kwargs)

    monkeypatch.setattr(KeptFiles, "put_file", second_write_fails)
    clock, phase = stepped
    clock.step(2 * phase)  # the batch has ended: the first retrieve keeps its results, and fails
    with pytest.raises(openai.InternalServerError):
        sdk.batches.retrieve(created.id)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.output_file_id and done.error_file_id
    assert calls[0] == calls[2] and calls[1] == calls[3]  # the output met itself, written once
    assert [line["custom_id"] for line in lines_of(sdk, done.output_file_id)] == ["k-1"]
    assert [line["custom_id"] for line in lines_of(sdk, done.error_file_id)] == ["k-2"]


def test_litellms_provider_names_reach_the_anthropic_deployment(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    plain = client(local_gateway)
    content = jsonl([chat_line("p-1", "hi")])
    by_header = plain.files.create(
        file=("h.jsonl", io.BytesIO(content)),
        purpose="batch",
        extra_headers={"custom-llm-provider": "anthropic"},
    )
    by_field = plain.files.create(
        file=("f.jsonl", io.BytesIO(content)),
        purpose="batch",
        extra_body={"custom_llm_provider": "anthropic"},
    )
    owned = {f.id for f in plain.files.list(extra_query={"custom_llm_provider": "anthropic"}, limit=100)}
    assert {by_header.id, by_field.id} <= owned
    assert by_header.id not in {f.id for f in plain.files.list(extra_query={"provider": "openai"}, limit=100)}
    batch = create(plain, by_field.id)  # runs where its file is: at Anthropic
    assert ended(plain, stepped, batch.id).status == "completed"


def test_the_uploads_api_keeps_the_file_and_checks_its_lines(
    local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    sdk = client(local_gateway, provider="anthropic")

    def uploaded(lines: list[dict[str, Any]]) -> openai.types.FileObject:
        content = jsonl(lines)
        upload = sdk.uploads.create(
            bytes=len(content), filename="u.jsonl", mime_type="application/jsonl", purpose="batch"
        )
        part = sdk.uploads.parts.create(upload.id, data=content)
        completed = sdk.uploads.complete(upload.id, part_ids=[part.id])
        assert completed.file is not None and local_gateway.wait_for_async(30)
        return sdk.files.retrieve(completed.file.id)

    good = uploaded([chat_line("u-1", "hi")])
    assert good.status == "processed"
    assert sdk.files.content(good.id).content == jsonl([chat_line("u-1", "hi")])
    assert ended(sdk, stepped, create(sdk, good.id).id).status == "completed"
    bad = uploaded([chat_line("u-1", "hi"), chat_line("u-2", "hi", n=3)])
    assert bad.status == "processed"  # kept; a batch of it fails at create, naming the line
    failed = create(sdk, bad.id)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data is not None
    assert [(error.code, error.line) for error in failed.errors.data] == [("untranslatable_line", 2)]
    assert failed.errors.data[0].message is not None and failed.errors.data[0].message.startswith("body.n")
    broken = uploaded([chat_line("u-1", "hi"), "{not json"])  # type: ignore[list-item]
    assert broken.status == "error" and broken.status_details is not None
    assert "line 2: " in broken.status_details
