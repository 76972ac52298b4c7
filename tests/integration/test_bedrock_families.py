"""Bedrock batches of Amazon Nova, Meta Llama and OpenAI gpt-oss models through the official
openai SDK, `base_url=.../bedrock/v1`: the local `bedrock` deployment's aliases `nova-lite`,
`llama-3-3-70b` and `gpt-oss-120b`; the simulator checks each record against its family's
documented schema and answers in its family's shape, on a clock the test steps.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from gateway.storage.id_map import IdMap

from devserver.server import BEDROCK_MODELS, LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import error_of

FAMILIES = ["nova-lite", "llama-3-3-70b", "gpt-oss-120b"]
FAILING_LINE = 3  # its prompt holds the simulator's directive: the record errors with a 500


def _sdk(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/bedrock/v1", api_key=gateway.master_key, max_retries=0)


def _lines(count: int, model: str) -> list[dict[str, Any]]:
    lines = []
    for n in range(1, count + 1):
        question = f"Q{n} sim-fail-server_error?" if n == FAILING_LINE else f"Q{n}?"
        lines.append(
            {
                "custom_id": f"{model}/q {n}",  # not a valid Bedrock recordId: mapped and back
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model,
                    "messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": question},
                    ],
                    "max_tokens": 64,
                    "temperature": 0.5,
                },
            }
        )
    return lines


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _create(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> openai.types.Batch:
    uploaded = sdk.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
    return sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def _content(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines()]


@pytest.fixture
def stepped_jobs(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Bedrock jobs on a clock the test steps (a phase of 2 s: InProgress from
    2 s after submission, done at 4 s; a stop takes 1 s)."""
    assert local_gateway.simulator is not None
    config, jobs = local_gateway.simulator.config, local_gateway.simulator.bedrock_jobs
    clock = SteppedClock(float(int(time.time())))
    saved = config.batch_phase_seconds, jobs.clock
    config.batch_phase_seconds, jobs.clock = 2.0, clock
    try:
        yield clock, config.batch_phase_seconds
    finally:
        config.batch_phase_seconds, jobs.clock = saved


@pytest.mark.parametrize("model", FAMILIES)
def test_upload_create_run_download_with_an_errored_record(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float], model: str
) -> None:
    sdk = _sdk(local_gateway)
    lines = _lines(100, model)
    created = _create(sdk, lines)
    assert created.status == "validating"
    clock, phase = stepped_jobs
    clock.step(phase * 2.25)  # past its phases: the job has completed
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed", done
    assert done.model == BEDROCK_MODELS[model]
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (100, 99, 1)
    succeeded = _content(sdk, done.output_file_id)
    expected = {line["custom_id"] for line in lines}
    failing = f"{model}/q {FAILING_LINE}"
    assert {line["custom_id"] for line in succeeded} == expected - {failing}  # custom_ids round trip
    first = next(line for line in succeeded if line["custom_id"] == f"{model}/q 1")
    body = first["response"]["body"]
    assert first["response"]["status_code"] == 200 and body["object"] == "chat.completion"
    openai.types.chat.ChatCompletion.model_validate(body)
    message = body["choices"][0]["message"]
    # the family's own answer read back: its text, never Llama's template or gpt-oss's reasoning
    assert message["role"] == "assistant" and message["content"].startswith(
        "This is a simulated response to: Q1?"
    )
    assert body["choices"][0]["finish_reason"] == "stop" and body["model"] == BEDROCK_MODELS[model]
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    [errored] = _content(sdk, done.error_file_id)
    assert errored["custom_id"] == failing and errored["response"]["status_code"] == 500
    assert errored["response"]["body"]["error"]["code"] == "server_error"
    settled = sdk.batches.retrieve(created.id).to_dict()
    cost = settled.get("cost")
    assert cost is not None and cost["total"] > 0  # priced at the family's Bedrock batch price


def test_a_nova_batch_cancelled_midway_keeps_its_partial_results(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    clock, phase = stepped_jobs
    sdk = _sdk(local_gateway)
    lines = _lines(400, "nova-lite")
    for line in lines:
        line["body"]["messages"][1]["content"] = line["custom_id"]  # no errored record here
    created = _create(sdk, lines)
    clock.step(phase * 1.125)
    assert sdk.batches.retrieve(created.id).status == "in_progress"
    clock.step(phase / 4)  # 37.5% of the way through the records: 150 have run
    assert sdk.batches.cancel(created.id).status == "cancelling"
    clock.step(phase / 2)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled" and done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        400,
        150,
        0,
    )
    ran = _content(sdk, done.output_file_id)
    assert sorted(line["custom_id"] for line in ran) == sorted(line["custom_id"] for line in lines[:150])
    assert done.error_file_id is None


@pytest.mark.parametrize(
    ("model", "change", "where"),
    [
        ("llama-3-3-70b", {"stop": ["END"]}, "body.stop"),
        (
            "llama-3-3-70b",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                        ],
                    }
                ]
            },
            "body.messages[0].content[0]",
        ),
        ("nova-lite", {"n": 2}, "body.n"),
        ("nova-lite", {"max_tokens": 6000}, "body.max_tokens"),
        (
            "gpt-oss-120b",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": {"type": "object"}},
                }
            },
            "body.response_format",
        ),
    ],
)
def test_a_field_the_family_cannot_take_is_refused_with_its_line(
    local_gateway: LocalGateway, model: str, change: dict[str, Any], where: str
) -> None:
    """Refused before Bedrock sees it: at upload, or (as OpenAI finds line problems at create)
    as the failed batch's error naming that line."""
    sdk = _sdk(local_gateway)
    lines = _lines(100, model)
    lines[6]["body"].update(change)
    try:
        uploaded = sdk.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
    except openai.BadRequestError as refused:
        assert f"line 7: {where}" in error_of(refused)["message"]
        return
    failed = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert failed.status == "failed" and failed.errors and failed.errors.data
    [error] = failed.errors.data
    assert error.line == 7 and (error.message or "").startswith(where)


class _Injected(Exception):
    pass


@pytest.mark.parametrize("step", ["records", "note", "before the job", "after the job"])
def test_a_nova_create_interrupted_at_each_step_makes_one_job_on_retry(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The write steps are the adapter's whatever the family (as test_bedrock_batches.py does for
    Claude): a Nova batch's create, failing at each, makes one job of its model on retry."""
    from gateway.providers.bedrock.client import BedrockClient
    from gateway.providers.registry import client_for

    adapter = client_for("bedrock")
    assert isinstance(adapter, BedrockClient)
    sdk = _sdk(local_gateway)
    uploaded = sdk.files.create(file=("in.jsonl", _jsonl(_lines(100, "nova-lite"))), purpose="batch")
    record = IdMap().get(uploaded.id)
    assert record is not None
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = {
        "input_file_id": record.upstream_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    s3, call = adapter._s3, BedrockClient._call
    real_put = s3.put_object

    def failing_put(**params: Any) -> Any:
        written = params["Key"].rsplit("/", 1)[-1]
        if (step, written) in (("records", "records.jsonl"), ("note", "note.json")):
            raise _Injected(step)
        return real_put(**params)

    def failing_call(self: BedrockClient, operation: str, **params: Any) -> dict[str, Any]:
        if operation == "create_model_invocation_job" and step == "before the job":
            raise _Injected(step)
        answer = call(self, operation, **params)
        if operation == "create_model_invocation_job" and step == "after the job":
            raise _Injected(step)
        return answer

    monkeypatch.setattr(s3, "put_object", failing_put)
    monkeypatch.setattr(BedrockClient, "_call", failing_call)
    with pytest.raises(_Injected):
        adapter.create_batch(dict(body), gateway_id=gateway_id)
    monkeypatch.undo()
    created = adapter.create_batch(dict(body), gateway_id=gateway_id)
    assert adapter.create_batch(dict(body), gateway_id=gateway_id)["id"] == created["id"]
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    jobs = bedrock.list_model_invocation_jobs(nameContains="gw-" + gateway_id.replace("_", "-"))
    [job] = jobs["invocationJobSummaries"]
    assert job["modelId"] == BEDROCK_MODELS["nova-lite"]


def test_fewer_than_100_records_of_a_family_answer_400_naming_the_minimum(
    local_gateway: LocalGateway,
) -> None:
    sdk = _sdk(local_gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        _create(sdk, _lines(99, "llama-3-3-70b"))
    assert "at least 100 records" in error_of(refused.value)["message"]


def test_nova_records_bedrock_refuses_as_written_run_once_translated(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """Blank text, another provider's tool call ids and tool turns (the simulator refuses each
    as written, as Nova does) run once translated: no record errors."""
    sdk = _sdk(local_gateway)
    call = {"id": "functions.get_weather:0", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    lines = _lines(100, "nova-lite")
    for line in lines:
        line["body"]["messages"] = [
            {
                "role": "user",
                "content": [{"type": "text", "text": " "}, {"type": "text", "text": line["custom_id"]}],
            },
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "15 degrees"},
        ]
        line["body"]["tools"] = [
            {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
        ]
    created = _create(sdk, lines)
    clock, phase = stepped_jobs
    clock.step(phase * 2.25)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (100, 0), done.error_file_id
