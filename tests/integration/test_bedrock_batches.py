"""Amazon Bedrock batch inference through the official openai SDK, `base_url=.../bedrock/v1`.

The gateway's boto3 `bedrock` client talks to the simulator's Bedrock API (real request and
response shapes); the job reads its records from and writes its results to the local S3 (moto).
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
from gateway.runtime import resources
from gateway.storage.id_map import IdMap

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import error_of, wait_for_batch

MODEL = "claude-3-5-haiku"


def _sdk(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/bedrock/v1", api_key=gateway.master_key, max_retries=0)


def _input(count: int, *, model: str = MODEL) -> bytes:
    lines = [
        {
            "custom_id": f"q/{n}",  # not a valid Bedrock recordId: mapped and back
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Q{n}?"},
                ],
                "max_tokens": 32,
            },
        }
        for n in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _create(sdk: openai.OpenAI, count: int, *, model: str = MODEL, **extra: Any) -> openai.types.Batch:
    uploaded = sdk.files.create(file=("in.jsonl", _input(count, model=model)), purpose="batch")
    return sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **extra
    )


def _lines(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines()]


def test_upload_create_wait_download(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    sdk = _sdk(local_gateway)
    tag = uuid.uuid4().hex
    created = _create(sdk, 100, metadata={"tag": tag})
    assert created.id.startswith("batch_") and created.status == "validating"
    assert created.metadata == {"tag": tag} and created.endpoint == "/v1/chat/completions"
    clock, phase = stepped_jobs
    clock.step(phase * 2.25)  # past its phases: the job has completed
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed", done
    openai.types.Batch.model_validate(done.to_dict())
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        100,
        100,
        0,
    )
    assert done.input_file_id == created.input_file_id and done.metadata == {"tag": tag}
    assert done.error_file_id is None
    lines = _lines(sdk, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"q/{n}" for n in range(100))
    body = lines[0]["response"]["body"]
    assert lines[0]["response"]["status_code"] == 200 and body["object"] == "chat.completion"
    assert body["usage"]["prompt_tokens"] > 0 and body["choices"][0]["message"]["role"] == "assistant"
    assert sdk.files.retrieve(done.output_file_id or "").purpose == "batch_output"
    assert created.id in {b.id for b in sdk.batches.list(limit=100)}


@pytest.fixture
def stepped_jobs(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Bedrock jobs on a clock the test steps, with a phase of 2 s: a job is
    InProgress from 2 s after its submission, done at 4 s; a stop takes 1 s."""
    assert local_gateway.simulator is not None
    config, jobs = local_gateway.simulator.config, local_gateway.simulator.bedrock_jobs
    clock = SteppedClock(float(int(time.time())))
    saved = config.batch_phase_seconds, jobs.clock
    config.batch_phase_seconds, jobs.clock = 2.0, clock
    try:
        yield clock, config.batch_phase_seconds
    finally:
        config.batch_phase_seconds, jobs.clock = saved


def test_cancel_midway_leaves_partial_results(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """OpenAI's rule for a cancelled batch: the requests that ran are counted and in the files;
    those never run count in `total` only (not `failed`) and have no error line."""
    clock, phase = stepped_jobs
    sdk = _sdk(local_gateway)
    created = _create(sdk, 400)
    clock.step(phase * 1.125)
    assert sdk.batches.retrieve(created.id).status == "in_progress"
    clock.step(phase / 4)  # 37.5% of the way through the records: 150 have run
    assert sdk.batches.cancel(created.id).status == "cancelling"
    clock.step(phase / 2)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled", done
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (400, 150, 0)
    assert len(_lines(sdk, done.output_file_id)) == 150 and done.error_file_id is None
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(created.id)


def test_records_bedrock_refuses_as_written_are_translated_or_refused_with_their_line(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """A whitespace-only stop, another provider's tool call ids and empty text run once
    translated (the simulator refuses each as written); an image by URL is refused at upload
    with its line number (Bedrock takes base64 only); the short `/chat/completions` url runs."""
    sdk = _sdk(local_gateway)
    call = {"id": "functions.get_weather:0", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    tool_turns = [
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "15 degrees"},
    ]
    lines = [json.loads(line) for line in _input(100).splitlines()]
    lines[0]["body"]["stop"] = ["\n"]
    lines[1]["body"]["messages"] = tool_turns
    lines[2]["url"] = "/chat/completions"
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = sdk.files.create(file=("in.jsonl", content), purpose="batch")
    created = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    clock, phase = stepped_jobs
    clock.step(phase * 2.25)  # past its phases: the job has completed
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (100, 0), done.error_file_id
    image = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    lines[3]["body"]["messages"] = [{"role": "user", "content": image}]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    # Refused with its line number before Bedrock sees it: at upload, or (once line problems
    # are found at create, as OpenAI finds them) as the failed batch's error for that line.
    try:
        uploaded = sdk.files.create(file=("in.jsonl", content), purpose="batch")
    except openai.BadRequestError as refused:
        message = error_of(refused)["message"]
        assert "line 4: body.messages[0].content[0].image_url.url" in message and "base64" in message
    else:
        failed = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert failed.status == "failed" and failed.errors and failed.errors.data
        [error] = failed.errors.data
        assert error.line == 4 and "base64" in (error.message or "")


def test_fewer_than_100_requests_answer_400_naming_the_minimum(local_gateway: LocalGateway) -> None:
    sdk = _sdk(local_gateway)
    with pytest.raises(openai.BadRequestError) as error:
        _create(sdk, 99)
    assert "at least 100 records" in error_of(error.value)["message"]


def test_an_unconfigured_model_fails_the_batch_at_create_naming_the_line(local_gateway: LocalGateway) -> None:
    sdk = _sdk(local_gateway)
    failed = _create(sdk, 100, model="anthropic.claude-3-opus-20240229-v1:0")  # the upload takes it
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    first = failed.errors.data[0]
    assert (first.code, first.line) == ("untranslatable_line", 1)
    assert first.message is not None and "anthropic.claude-3-opus-20240229-v1:0" in first.message


def test_a_retried_create_names_the_same_job(local_gateway: LocalGateway) -> None:
    """The job's clientRequestToken derives from the gateway id: a create that Bedrock accepted
    but the gateway never heard of, tried again, meets that job instead of starting a second."""
    sdk = _sdk(local_gateway)
    uploaded = sdk.files.create(file=("in.jsonl", _input(100)), purpose="batch")
    key = uuid.uuid4().hex
    first, again = (
        sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            extra_headers={"Idempotency-Key": key},
        )
        for _ in range(2)
    )
    assert again.id == first.id
    record = IdMap().get(first.id)
    assert record is not None and record.upstream_id
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    job = bedrock.get_model_invocation_job(jobIdentifier=record.upstream_id)
    assert job["clientRequestToken"] == "gw-" + first.id.replace("_", "-")
    # The same token again (what a create whose answer was lost sends): the same job.
    same = bedrock.create_model_invocation_job(
        jobName=job["jobName"],
        clientRequestToken=job["clientRequestToken"],
        roleArn=job["roleArn"],
        modelId=job["modelId"],
        inputDataConfig=job["inputDataConfig"],
        outputDataConfig=job["outputDataConfig"],
    )
    assert same["jobArn"] == job["jobArn"]
    jobs = bedrock.list_model_invocation_jobs(nameContains=job["jobName"])["invocationJobSummaries"]
    assert [j["jobArn"] for j in jobs] == [job["jobArn"]]
    assert job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].startswith(
        f"s3://{resources.DEFAULT_BUCKET_NAME}/{resources.BEDROCK_INPUT_PREFIX}bedrock/"
    )


def test_a_create_whose_answer_was_lost_meets_its_job_on_retry(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter's own retry safety: records, note and job are each safe to repeat, and the
    job's token (from the gateway id in the metadata tag) makes Bedrock answer the first job."""
    from gateway.errors import UpstreamTimeoutError
    from gateway.providers.bedrock.client import BedrockClient
    from gateway.providers.registry import client_for

    sdk = _sdk(local_gateway)
    uploaded = sdk.files.create(file=("in.jsonl", _input(100)), purpose="batch")
    adapter = client_for("bedrock")
    assert isinstance(adapter, BedrockClient)
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = {
        "input_file_id": IdMap().get(uploaded.id).upstream_id,  # type: ignore[union-attr]
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": gateway_id},
    }
    original = BedrockClient._call

    def answer_lost(self: BedrockClient, operation: str, **params: Any) -> dict[str, Any]:
        answer = original(self, operation, **params)
        if operation == "create_model_invocation_job":
            raise UpstreamTimeoutError("provider 'bedrock' did not answer in time")
        return answer

    monkeypatch.setattr(BedrockClient, "_call", answer_lost)
    with pytest.raises(UpstreamTimeoutError):
        adapter.create_batch(dict(body), gateway_id=gateway_id)
    monkeypatch.setattr(BedrockClient, "_call", original)
    created = adapter.create_batch(dict(body), gateway_id=gateway_id)
    assert created["metadata"] == {"gateway_batch_id": gateway_id}
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    name = "gw-" + gateway_id.replace("_", "-")
    jobs = bedrock.list_model_invocation_jobs(nameContains=name)["invocationJobSummaries"]
    assert [j["jobArn"].rsplit("/", 1)[1] for j in jobs] == [created["id"]]
    assert created["id"] in {b["id"] for b in adapter.list_batches(limit=100)["data"]}


class _Injected(Exception):
    pass


def _adapter_body(sdk: openai.OpenAI, gateway_id: str) -> dict[str, Any]:
    uploaded = sdk.files.create(file=("in.jsonl", _input(100)), purpose="batch")
    record = IdMap().get(uploaded.id)
    assert record is not None
    return {
        "input_file_id": record.upstream_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": gateway_id},
    }


def _adapter_jobs(adapter: Any, body: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """(gateway id, job id) of `count` jobs the adapter creates from `body`, oldest first."""
    made = []
    for _ in range(count):
        gateway_id = "batch_" + uuid.uuid4().hex[:24]
        body = {**body, "metadata": {"gateway_batch_id": gateway_id}}
        made.append((gateway_id, adapter.create_batch(body, gateway_id=gateway_id)["id"]))
        time.sleep(0.01)  # distinct submit times
    return made


@pytest.mark.parametrize("step", ["records", "note", "before the job", "after the job"])
def test_a_create_interrupted_at_each_step_makes_one_job_on_retry(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    from gateway.providers.bedrock.client import BedrockClient
    from gateway.providers.registry import client_for

    adapter = client_for("bedrock")
    assert isinstance(adapter, BedrockClient)
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = _adapter_body(_sdk(local_gateway), gateway_id)
    s3, call = adapter._s3, BedrockClient._call
    real_put = s3.put_object

    def failing_put(**params: Any) -> Any:
        key = params["Key"]
        if (step == "records" and key.endswith("records.jsonl")) or (
            step == "note" and key.endswith("note.json")
        ):
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
    again = adapter.create_batch(dict(body), gateway_id=gateway_id)  # and once more: still the same job
    assert again["id"] == created["id"]
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    jobs = bedrock.list_model_invocation_jobs(nameContains="gw-" + gateway_id.replace("_", "-"))
    assert [j["jobArn"].rsplit("/", 1)[1] for j in jobs["invocationJobSummaries"]] == [created["id"]]
    assert adapter.retrieve_batch(created["id"])["metadata"] == {"gateway_batch_id": gateway_id}


@pytest.mark.parametrize("failing", ["output file", "error file", "note"])
def test_keeping_results_interrupted_at_each_step_keeps_them_once(
    local_gateway: LocalGateway,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    stepped_jobs: tuple[SteppedClock, float],
) -> None:
    from gateway.providers.bedrock.client import BedrockClient
    from gateway.providers.registry import client_for

    adapter = client_for("bedrock")
    assert isinstance(adapter, BedrockClient)
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    created = adapter.create_batch(_adapter_body(_sdk(local_gateway), gateway_id), gateway_id=gateway_id)
    job_id = created["id"]
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    assert local_gateway.simulator is not None
    jobs, clock, phase = local_gateway.simulator.bedrock_jobs, *stepped_jobs
    respond = jobs._respond

    def first_record_errors(model_id: str, model_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if model_input["messages"][-1]["content"] == "Q0?":
            return "error", {"errorCode": 400, "errorMessage": "refused"}
        return respond(model_id, model_input)

    monkeypatch.setattr(jobs, "_respond", first_record_errors)  # so the job has an error file too
    clock.step(phase * 1.125)
    assert bedrock.get_model_invocation_job(jobIdentifier=job_id)["status"] == "InProgress"
    clock.step(phase / 4)
    adapter.cancel_batch(job_id)  # stopped midway: results, one error, and unrun requests
    clock.step(phase / 2)
    assert bedrock.get_model_invocation_job(jobIdentifier=job_id)["status"] == "Stopped"
    adapter._notes.clear()  # as another function would: nothing cached
    files, s3 = adapter._files, adapter._s3
    real_put_file, real_put = files.put_file, s3.put_object

    def failing_put_file(file_id: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs["filename"].endswith(f"_{failing.split()[0]}.jsonl"):
            raise _Injected(failing)
        return real_put_file(file_id, *args, **kwargs)

    def failing_put(**params: Any) -> Any:
        if failing == "note" and params["Key"].endswith("note.json"):
            raise _Injected(failing)
        return real_put(**params)

    monkeypatch.setattr(files, "put_file", failing_put_file)
    monkeypatch.setattr(s3, "put_object", failing_put)
    with pytest.raises(_Injected):
        adapter.retrieve_batch(job_id)
    monkeypatch.undo()
    adapter._notes.clear()
    done = adapter.retrieve_batch(job_id)
    assert done["status"] == "cancelled"
    succeeded = [json.loads(line) for line in adapter.file_content(done["output_file_id"]).splitlines()]
    errored = [json.loads(line) for line in adapter.file_content(done["error_file_id"]).splitlines()]
    assert len(succeeded) == done["request_counts"]["completed"] == 36  # 37 ran, the first refused
    assert [line["custom_id"] for line in errored] == ["q/0"] and done["request_counts"]["failed"] == 1
    assert len({line["custom_id"] for line in succeeded + errored}) == 37
    adapter._notes.clear()
    again = adapter.retrieve_batch(job_id)  # the same files, kept once
    assert (again["output_file_id"], again["error_file_id"]) == (
        done["output_file_id"],
        done["error_file_id"],
    )


def test_records_larger_than_one_part_are_written_in_parts(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.providers.bedrock import client as bedrock

    monkeypatch.setattr(bedrock, "RECORDS_PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    from gateway.providers.registry import client_for

    adapter = client_for("bedrock")
    assert isinstance(adapter, bedrock.BedrockClient)
    multipart = adapter._s3.create_multipart_upload
    started: list[str] = []

    def spy(**params: Any) -> Any:
        started.append(params["Key"])
        return multipart(**params)

    monkeypatch.setattr(adapter._s3, "create_multipart_upload", spy)
    sdk = _sdk(local_gateway)
    padding = "x" * 30_000
    lines = [
        {
            "custom_id": f"big-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": MODEL,
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"{n} {padding}"}],
            },
        }
        for n in range(200)
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    assert len(content) > 5 * 1024 * 1024
    upload = sdk.uploads.upload_file_chunked(
        file=content,
        filename="big.jsonl",
        bytes=len(content),
        mime_type="application/jsonl",
        purpose="batch",
        part_size=4 * 1024 * 1024,
    )
    assert upload.file is not None
    deadline = time.monotonic() + 30
    while sdk.files.retrieve(upload.file.id).status != "processed":  # the transfer into the kept store
        assert time.monotonic() < deadline
        time.sleep(0.1)
    created = sdk.batches.create(
        input_file_id=upload.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for_batch(sdk, created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.completed == 200
    assert [key for key in started if key.endswith("/records.jsonl")]  # in parts
    assert sorted(line["custom_id"] for line in _lines(sdk, done.output_file_id)) == sorted(
        f"big-{n}" for n in range(200)
    )


@pytest.mark.parametrize("page_size", [100, 1])
def test_the_adapters_list_pages_newest_first_with_after_and_has_more(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, page_size: int
) -> None:
    """OpenAI's `limit`/`after`/`has_more` over Bedrock's paginated ListModelInvocationJobs
    (one job per Bedrock page: every step follows a nextToken)."""
    from gateway.providers.bedrock import client as bedrock
    from gateway.providers.registry import client_for

    monkeypatch.setattr(bedrock, "LIST_PAGE_SIZE", page_size)

    adapter = client_for("bedrock")
    body = _adapter_body(_sdk(local_gateway), "batch_" + uuid.uuid4().hex[:24])
    made = [job_id for _, job_id in _adapter_jobs(adapter, body, 3)]
    first = adapter.list_batches(limit=2)
    assert [b["id"] for b in first["data"]] == [made[2], made[1]] and first["has_more"] is True
    assert first["last_id"] == made[1]
    second = adapter.list_batches(limit=1, after=made[1])
    assert [b["id"] for b in second["data"]] == [made[0]]
    assert all(b["input_file_id"] == body["input_file_id"] for b in first["data"] + second["data"])


def test_a_job_whose_note_was_swept_is_left_out_of_the_list_and_not_found(
    local_gateway: LocalGateway,
) -> None:
    """A job of the deployment with no note (its create gave up and the watcher's sweep removed
    the note, or no create of the gateway made it) is not one of the gateway's batches: the
    list goes on without it, a retrieve answers 404."""
    import boto3
    from gateway.errors import UpstreamRequestError
    from gateway.providers.bedrock import jobs as bedrock_jobs
    from gateway.providers.registry import client_for
    from gateway.runtime.settings import get_settings

    adapter = client_for("bedrock")
    body = _adapter_body(_sdk(local_gateway), "batch_" + uuid.uuid4().hex[:24])
    (swept_gateway_id, swept), (_, kept) = _adapter_jobs(adapter, body, 2)
    note_key = adapter._note_key(bedrock_jobs.job_token(swept_gateway_id))
    boto3.client("s3").delete_object(Bucket=get_settings().bucket_name, Key=note_key)
    adapter._notes.clear()  # a fresh function instance

    listed = [b["id"] for b in adapter.list_batches(limit=100)["data"]]
    assert kept in listed and swept not in listed
    with pytest.raises(UpstreamRequestError) as missing:
        adapter.retrieve_batch(swept)
    assert missing.value.status_code == 404
