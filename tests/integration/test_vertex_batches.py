"""Vertex AI batch prediction for Gemini through the official openai SDK, `base_url=.../vertex/v1`.

The gateway's Vertex adapter talks to the simulator's Vertex AI and Cloud Storage APIs with an
access token it exchanged for the simulator's service-account key; jobs move along a clock the
test steps (no waiting).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway.storage.id_map import IdMap

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from devserver.simulator.google import GoogleForms
from devserver.simulator.limits import SimulatorLimits
from tests.integration.helpers import error_of

MODEL = "gemini-2.5-flash"


def _sdk(gateway: LocalGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/vertex/v1", api_key=gateway.master_key, max_retries=0)


def _line(custom_id: str, prompt: str, *, model: str = MODEL, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
            "max_tokens": 32,
            **body,
        },
    }


def _input(count: int, *, model: str = MODEL, prompts: dict[int, str] | None = None) -> bytes:
    lines = [
        # custom_ids no label value could hold: kept by the gateway and put back
        _line(f"Q/{n} é", (prompts or {}).get(n, f"Q{n}?"), model=model)
        for n in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _create(sdk: openai.OpenAI, content: bytes, **extra: Any) -> openai.types.Batch:
    uploaded = sdk.files.create(file=("in.jsonl", content), purpose="batch")
    return sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **extra
    )


def _lines(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in sdk.files.content(file_id).text.splitlines()]


def _job_of_batch(google: GoogleForms, batch_id: str) -> Any:
    record = IdMap().get(batch_id)
    assert record is not None and record.upstream_id
    return google.vertex.jobs[record.upstream_id]


@pytest.fixture
def google(local_gateway: LocalGateway) -> GoogleForms:
    assert local_gateway.simulator is not None
    return local_gateway.simulator.google


@pytest.fixture
def stepped_jobs(local_gateway: LocalGateway, google: GoogleForms) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Vertex jobs on a clock the test steps, with a phase of 2 s: a job runs
    from 2 s after its creation and succeeds at 4 s; a cancel takes 1 s."""
    assert local_gateway.simulator is not None
    config, jobs = local_gateway.simulator.config, google.vertex
    clock = SteppedClock(float(int(time.time())))
    saved = config.batch_phase_seconds, jobs.clock
    config.batch_phase_seconds, jobs.clock = 2.0, clock
    try:
        yield clock, config.batch_phase_seconds
    finally:
        config.batch_phase_seconds, jobs.clock = saved


def test_upload_create_wait_download(
    local_gateway: LocalGateway, google: GoogleForms, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    sdk = _sdk(local_gateway)
    tag = uuid.uuid4().hex
    created = _create(sdk, _input(5), metadata={"tag": tag})
    assert created.id.startswith("batch_") and created.status == "validating"
    assert created.metadata == {"tag": tag} and created.endpoint == "/v1/chat/completions"
    # What Vertex was given: one job of the publisher model, reading the rows the gateway wrote.
    job = _job_of_batch(google, created.id)
    assert job.model == "publishers/google/models/" + MODEL
    rows = [json.loads(row) for row in google.gcs.read_uri(job.input_uri).splitlines()]
    assert [row["request"]["labels"]["gateway_line"] for row in rows] == [f"l{n:010d}" for n in range(1, 6)]
    assert rows[0]["request"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    clock, phase = stepped_jobs
    clock.step(phase * 1.5)
    assert sdk.batches.retrieve(created.id).status == "in_progress"
    clock.step(phase)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed", done
    openai.types.Batch.model_validate(done.to_dict())
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (5, 5, 0)
    assert done.error_file_id is None and done.metadata == {"tag": tag}
    lines = _lines(sdk, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"Q/{n} é" for n in range(5))
    by_id = {line["custom_id"]: line for line in lines}
    body = by_id["Q/3 é"]["response"]["body"]
    assert by_id["Q/3 é"]["response"]["status_code"] == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Simulated answer to: Q3?"  # its own answer
    assert body["usage"]["prompt_tokens"] > 0 and body["model"].startswith(MODEL)
    assert sdk.files.retrieve(done.output_file_id or "").purpose == "batch_output"
    assert created.id in {b.id for b in sdk.batches.list(limit=100)}
    # settled at Vertex's batch prices: (0.15 input, 1.25 output) USD per million tokens
    usage = done.to_dict()["usage"]
    cost = done.to_dict()["cost"]
    expected = (usage["input_tokens"] * 0.15 + usage["output_tokens"] * 1.25) / 1_000_000
    assert cost["currency"] == "USD" and cost["total"] == pytest.approx(expected, abs=1e-6) and expected > 0
    # once the gateway keeps the results, the job's folder (prompts and answers) is deleted
    folder = job.input_uri.removeprefix("gs://sim-vertex-batches/").rsplit("/", 1)[0] + "/"
    assert google.gcs.list("sim-vertex-batches", {"prefix": folder})["items"] == []


def test_claude_on_vertex_round_trips_its_custom_ids(
    local_gateway: LocalGateway, google: GoogleForms, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    sdk = _sdk(local_gateway)
    created = _create(sdk, _input(3, model="claude-sonnet-4@20250514"))
    job = _job_of_batch(google, created.id)
    assert job.model == "publishers/anthropic/models/claude-sonnet-4@20250514"
    rows = [json.loads(row) for row in google.gcs.read_uri(job.input_uri).splitlines()]
    assert [row["custom_id"] for row in rows] == ["l0000000001", "l0000000002", "l0000000003"]
    assert rows[0]["request"]["anthropic_version"] == "vertex-2023-10-16"
    clock, phase = stepped_jobs
    clock.step(phase * 2)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 0)
    lines = {line["custom_id"]: line for line in _lines(sdk, done.output_file_id)}
    assert set(lines) == {f"Q/{n} é" for n in range(3)}
    body = lines["Q/1 é"]["response"]["body"]
    assert body["object"] == "chat.completion" and body["usage"]["prompt_tokens"] > 0


def test_cancel_midway_leaves_partial_results(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """OpenAI's rule for a cancelled batch: the requests that ran are counted and in the files;
    those never run count in `total` only and have no line."""
    clock, phase = stepped_jobs
    sdk = _sdk(local_gateway)
    created = _create(sdk, _input(40))
    clock.step(phase * 1.25)  # a quarter of the way through the rows: 10 have run
    assert sdk.batches.retrieve(created.id).status == "in_progress"
    assert sdk.batches.cancel(created.id).status == "cancelling"
    assert sdk.batches.retrieve(created.id).status == "cancelling"
    clock.step(phase / 2)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "cancelled", done
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (40, 10, 0)
    assert len(_lines(sdk, done.output_file_id)) == 10 and done.error_file_id is None
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(created.id)


def test_errored_and_expired_rows_become_openai_error_lines(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    clock, phase = stepped_jobs
    sdk = _sdk(local_gateway)
    tag = uuid.uuid4().hex  # the directives act once per prompt text: this run's own
    prompts = {1: f"sim-fail-server_error {tag}", 2: f"sim-fail-invalid_value {tag}", 3: f"sim-expire {tag}"}
    created = _create(sdk, _input(5, prompts=prompts))
    clock.step(phase * 2.5)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "expired", done
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 3)
    errors = {line["custom_id"]: line for line in _lines(sdk, done.error_file_id)}
    assert set(errors) == {"Q/1 é", "Q/2 é", "Q/3 é"}
    server = errors["Q/1 é"]["response"]
    assert server["status_code"] == 500 and server["body"]["error"]["code"] == "server_error"
    refused = errors["Q/2 é"]["response"]
    assert refused["status_code"] == 400 and refused["body"]["error"]["type"] == "invalid_request_error"
    assert errors["Q/3 é"]["error"]["code"] == "batch_expired" and errors["Q/3 é"]["response"] is None
    assert {line["custom_id"] for line in _lines(sdk, done.output_file_id)} == {"Q/0 é", "Q/4 é"}


def test_a_line_vertex_cannot_take_fails_the_batch_at_create_naming_it(local_gateway: LocalGateway) -> None:
    sdk = _sdk(local_gateway)
    content = _input(2) + json.dumps(_line("x", "hi", logit_bias={"1": 2})).encode() + b"\n"
    failed = _create(sdk, content)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    first = failed.errors.data[0]
    assert (first.code, first.line) == ("untranslatable_line", 3)
    other_model = _create(sdk, _input(2, model="gpt-4o"))
    assert other_model.status == "failed" and other_model.errors is not None and other_model.errors.data
    assert "Gemini and Claude models only" in str(other_model.errors.data[0].message)


def test_a_job_over_vertex_limits_fails_with_its_reason(
    local_gateway: LocalGateway, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """The simulator's cap on requests per job (Vertex's 200,000 lowered): the job FAILS at
    validation and the batch says why."""
    assert local_gateway.simulator is not None
    clock, phase = stepped_jobs
    sdk = _sdk(local_gateway)
    saved = local_gateway.simulator.config.limits
    local_gateway.simulator.set_limits(SimulatorLimits(max_requests=3))
    try:
        created = _create(sdk, _input(4))
        clock.step(phase)
        failed = sdk.batches.retrieve(created.id)
    finally:
        local_gateway.simulator.set_limits(saved)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    assert "the maximum is 3" in str(failed.errors.data[0].message)
    assert failed.output_file_id is None and failed.error_file_id is None


def test_an_unknown_batch_is_404(local_gateway: LocalGateway) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        _sdk(local_gateway).batches.retrieve("batch_" + "x" * 24)
    assert error_of(error.value)["code"] is not None


@pytest.mark.parametrize("upstream_id", ["\uff11\uff12\uff13", "12/../34", "12:cancel", "", "9" * 40])
def test_only_a_vertex_job_id_reaches_a_url(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, upstream_id: str
) -> None:
    from gateway.errors import UpstreamRequestError
    from gateway.providers.registry import client_for
    from gateway.providers.vertex.google_cloud import GoogleCloud

    sent: list[str] = []
    monkeypatch.setattr(GoogleCloud, "_send", lambda self, method, url, *a, **k: sent.append(url))
    adapter = client_for("vertex")
    for call in (adapter.retrieve_batch, adapter.cancel_batch):
        with pytest.raises(UpstreamRequestError) as error:
            call(upstream_id)
        assert error.value.status_code == 404
    assert sent == []


def test_revoked_tokens_are_replaced_once(
    local_gateway: LocalGateway, google: GoogleForms, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """A 401 (the token revoked or expired early) fetches a new token and sends again."""
    sdk = _sdk(local_gateway)
    created = _create(sdk, _input(2))
    issued = google.tokens.issued
    google.tokens.revoke_all()
    assert sdk.batches.retrieve(created.id).status == "validating"
    assert google.tokens.issued == issued + 1


# The adapter's own retry safety --------------------------------------------------------------
class _Injected(Exception):
    pass


def _adapter_body(sdk: openai.OpenAI, gateway_id: str, count: int = 4) -> dict[str, Any]:
    uploaded = sdk.files.create(file=("in.jsonl", _input(count)), purpose="batch")
    record = IdMap().get(uploaded.id)
    assert record is not None
    return {
        "input_file_id": record.upstream_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": gateway_id},
    }


def _jobs_of(google: GoogleForms, gateway_id: str) -> list[str]:
    from gateway.providers.vertex.jobs import job_token

    token = job_token(gateway_id)
    return [job.job_id for job in google.vertex.jobs.values() if job.labels.get("gateway_batch") == token]


@pytest.mark.parametrize("step", ["rows", "note", "before the job", "after the job"])
def test_a_create_interrupted_at_each_step_makes_one_job_on_retry(
    local_gateway: LocalGateway, google: GoogleForms, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    from gateway.providers.registry import client_for
    from gateway.providers.vertex.client import VertexClient
    from gateway.providers.vertex.google_cloud import GoogleCloud

    adapter = client_for("vertex")
    assert isinstance(adapter, VertexClient)
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = _adapter_body(_sdk(local_gateway), gateway_id)
    upload, create_job, real_put = GoogleCloud.upload, GoogleCloud.create_job, adapter._s3.put_object

    def failing_upload(self: GoogleCloud, *args: Any, **kwargs: Any) -> None:
        if step == "rows":
            raise _Injected(step)
        upload(self, *args, **kwargs)

    def failing_put(**params: Any) -> Any:
        if step == "note" and params["Key"].endswith("note.json"):
            raise _Injected(step)
        return real_put(**params)

    def failing_create(self: GoogleCloud, job: dict[str, Any]) -> dict[str, Any]:
        if step == "before the job":
            raise _Injected(step)
        made = create_job(self, job)
        if step == "after the job":
            raise _Injected(step)
        return made

    monkeypatch.setattr(GoogleCloud, "upload", failing_upload)
    monkeypatch.setattr(adapter._s3, "put_object", failing_put)
    monkeypatch.setattr(GoogleCloud, "create_job", failing_create)
    with pytest.raises(_Injected):
        adapter.create_batch(dict(body), gateway_id=gateway_id)
    monkeypatch.undo()
    created = adapter.create_batch(dict(body), gateway_id=gateway_id)
    again = adapter.create_batch(dict(body), gateway_id=gateway_id)  # and once more: the same job
    assert again["id"] == created["id"]
    assert _jobs_of(google, gateway_id) == [created["id"]]
    adapter._notes.clear()
    assert adapter.retrieve_batch(created["id"])["metadata"] == {"gateway_batch_id": gateway_id}


@pytest.mark.parametrize("failing", ["output file", "error file", "note"])
def test_keeping_results_interrupted_at_each_step_keeps_them_once(
    local_gateway: LocalGateway,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    stepped_jobs: tuple[SteppedClock, float],
) -> None:
    from gateway.providers.registry import client_for
    from gateway.providers.vertex.client import VertexClient

    adapter = client_for("vertex")
    assert isinstance(adapter, VertexClient)
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = _adapter_body(_sdk(local_gateway), gateway_id, count=8)
    clock, phase = stepped_jobs
    created = adapter.create_batch(body, gateway_id=gateway_id)
    job_id = created["id"]
    clock.step(phase * 1.5)  # half way: 4 rows have run
    adapter.cancel_batch(job_id)
    clock.step(phase / 2)
    adapter._notes.clear()  # as another function would: nothing cached
    files, s3 = adapter._files, adapter._s3
    real_put_file, real_put = files.put_file, s3.put_object
    errored_row = {"n": 0}
    real_outcome = __import__("gateway.providers.vertex.records", fromlist=["outcome"]).outcome

    def first_row_errors(row: dict[str, Any], custom_ids: list[str], **kwargs: Any) -> Any:
        result = real_outcome(row, custom_ids, **kwargs)
        if result is not None and result.custom_id == "Q/0 é":  # so that there is an error file
            errored_row["n"] += 1
            from gateway.providers.batch_results import Outcome

            return Outcome(result.custom_id, "errored", error_message="refused", status_code=400)
        return result

    def failing_put_file(file_id: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs["filename"].endswith(f"_{failing.split()[0]}.jsonl"):
            raise _Injected(failing)
        return real_put_file(file_id, *args, **kwargs)

    def failing_put(**params: Any) -> Any:
        if failing == "note" and params["Key"].endswith("note.json"):
            raise _Injected(failing)
        return real_put(**params)

    monkeypatch.setattr("gateway.providers.vertex.records.outcome", first_row_errors)
    monkeypatch.setattr(files, "put_file", failing_put_file)
    monkeypatch.setattr(s3, "put_object", failing_put)
    with pytest.raises(_Injected):
        adapter.retrieve_batch(job_id)
    monkeypatch.setattr(files, "put_file", real_put_file)
    monkeypatch.setattr(s3, "put_object", real_put)
    adapter._notes.clear()
    done = adapter.retrieve_batch(job_id)
    monkeypatch.undo()
    assert done["status"] == "cancelled"
    succeeded = [json.loads(line) for line in adapter.file_content(done["output_file_id"]).splitlines()]
    errored = [json.loads(line) for line in adapter.file_content(done["error_file_id"]).splitlines()]
    assert len(succeeded) == 3 and [line["custom_id"] for line in errored] == ["Q/0 é"]
    adapter._notes.clear()
    again = adapter.retrieve_batch(job_id)  # the same files, kept once
    assert (again["output_file_id"], again["error_file_id"]) == (
        done["output_file_id"],
        done["error_file_id"],
    )


def test_the_adapters_list_pages_newest_first_with_after_and_has_more(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vertex lists jobs in no documented order (the simulator: by its random ids), in pages
    (of 2 here): the adapter reads them all and pages them newest first."""
    from gateway.providers.registry import client_for
    from gateway.providers.vertex import google_cloud

    monkeypatch.setattr(google_cloud, "LIST_PAGE_SIZE", 2)
    adapter = client_for("vertex")
    sdk = _sdk(local_gateway)
    made = [
        adapter.create_batch(_adapter_body(sdk, gid, count=1), gateway_id=gid)["id"]
        for gid in ("batch_" + uuid.uuid4().hex[:24] for _ in range(3))
    ]
    first = adapter.list_batches(limit=2)
    assert [b["id"] for b in first["data"]] == made[::-1][:2] and first["has_more"] is True
    rest = adapter.list_batches(limit=2, after=first["last_id"])
    assert rest["data"][0]["id"] == made[0]
    assert adapter.list_batches(limit=2, after="1")["data"] == []  # an unknown cursor: nothing after it


def test_a_create_whose_answer_was_lost_is_adopted_with_its_job(
    local_gateway: LocalGateway, google: GoogleForms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vertex made the job, the gateway never heard: the client's retry with the same
    Idempotency-Key answers that batch, backed by that one job."""
    from gateway.errors import UpstreamTimeoutError
    from gateway.providers.vertex.google_cloud import GoogleCloud

    real = GoogleCloud.create_job
    made: list[str] = []

    def made_then_lost(self: GoogleCloud, job: dict[str, Any]) -> dict[str, Any]:
        answer = real(self, job)
        if not made:
            made.append(str(answer["name"]).rsplit("/", 1)[-1])
            raise UpstreamTimeoutError("provider 'vertex' did not answer in time")
        return answer

    monkeypatch.setattr(GoogleCloud, "create_job", made_then_lost)
    sdk = _sdk(local_gateway)
    uploaded = sdk.files.create(file=("in.jsonl", _input(2)), purpose="batch")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    fields: dict[str, Any] = {
        "input_file_id": uploaded.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"team": "a"},
        "extra_headers": key,
    }
    with pytest.raises(openai.APIStatusError) as lost:
        sdk.batches.create(**fields)
    assert lost.value.status_code == 504
    batch = sdk.batches.create(**fields)
    assert sdk.batches.create(**fields).id == batch.id and batch.metadata == {"team": "a"}
    record = IdMap().get(batch.id)
    assert record is not None and record.upstream_id == made[0]
    token = google.vertex.jobs[made[0]].labels["gateway_batch"]
    assert [
        job.job_id for job in google.vertex.jobs.values() if job.labels.get("gateway_batch") == token
    ] == made


def test_the_service_account_key_and_its_tokens_never_reach_a_log(
    local_gateway: LocalGateway, google: GoogleForms, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    import io
    import logging

    from gateway.observability import logger as gateway_logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(gateway_logger.registered_formatter)
    python_logger = logging.getLogger(gateway_logger.name)
    python_logger.addHandler(handler)
    try:
        sdk = _sdk(local_gateway)
        created = _create(sdk, _input(2))
        google.tokens.revoke_all()  # a 401, a new token
        clock, phase = stepped_jobs
        clock.step(phase * 2)
        assert sdk.batches.retrieve(created.id).status == "completed"
        with pytest.raises(openai.NotFoundError):
            sdk.batches.retrieve("batch_" + "y" * 24)
    finally:
        python_logger.removeHandler(handler)
    logs = stream.getvalue()
    assert "batches_create" in logs and "batches_retrieve" in logs  # the requests were logged
    key = google.service_account_key(local_gateway.simulator.url if local_gateway.simulator else "")
    body = key["private_key"].splitlines()[1]  # a line of the key's base64
    assert body not in logs and "PRIVATE KEY" not in logs
    assert "ya29." not in logs  # no access token


def test_rows_larger_than_one_part_go_up_in_parts_and_a_refused_line_commits_nothing(
    local_gateway: LocalGateway,
    google: GoogleForms,
    monkeypatch: pytest.MonkeyPatch,
    stepped_jobs: tuple[SteppedClock, float],
) -> None:
    """A resumable upload, one part in memory at a time (parts lowered to 256 KiB, the
    smallest Cloud Storage takes); a line refused after the first part leaves no object."""
    from gateway.errors import InvalidRequestError
    from gateway.providers.registry import client_for
    from gateway.providers.vertex import google_cloud
    from gateway.providers.vertex.client import INPUT_FILE, VertexClient
    from gateway.providers.vertex.jobs import job_token

    monkeypatch.setattr(google_cloud, "UPLOAD_PART_BYTES", 256 * 1024)
    sdk = _sdk(local_gateway)
    long_prompts = {n: f"Q{n} " + "x" * 100_000 for n in range(8)}
    created = _create(sdk, _input(6, prompts=long_prompts))
    written = google.gcs.read_uri(_job_of_batch(google, created.id).input_uri)
    assert len(written) > 2 * 256 * 1024 and len(written.splitlines()) == 6
    clock, phase = stepped_jobs
    clock.step(phase * 2)
    done = sdk.batches.retrieve(created.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.completed == 6

    adapter = client_for("vertex")
    assert isinstance(adapter, VertexClient)
    uploaded = sdk.files.create(
        file=(
            "in.jsonl",
            _input(8, prompts=long_prompts) + json.dumps(_line("bad", "hi", logprobs=True)).encode(),
        ),
        purpose="batch",
    )
    upstream = IdMap().get(uploaded.id)
    assert upstream is not None
    gateway_id = "batch_" + uuid.uuid4().hex[:24]
    body = {
        "input_file_id": upstream.upstream_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    sessions = len(google.gcs.sessions)
    with pytest.raises(InvalidRequestError, match="Line 9"):  # past two parts: the upload had begun
        adapter.create_batch(body, gateway_id=gateway_id)
    assert len(google.gcs.sessions) == sessions + 1  # started, never committed
    name = f"vertex/{job_token(gateway_id)}/{INPUT_FILE}"
    with pytest.raises(Exception, match="No such object"):
        google.gcs.get("sim-vertex-batches", name)
    assert _jobs_of(google, gateway_id) == []


def test_a_cancel_that_meets_the_job_ending_is_a_conflict(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch, stepped_jobs: tuple[SteppedClock, float]
) -> None:
    """The job ends between the adapter's read and its cancel: Vertex answers
    FAILED_PRECONDITION, the client a 409 as for any ended batch."""
    from gateway.providers.vertex.google_cloud import GoogleCloud

    sdk = _sdk(local_gateway)
    created = _create(sdk, _input(2))
    clock, phase = stepped_jobs
    real_cancel = GoogleCloud.cancel_job
    cancels: list[str] = []

    def end_then_cancel(self: GoogleCloud, name: str) -> None:
        clock.step(phase * 3)  # the job is over by the time the cancel arrives
        cancels.append(name)
        real_cancel(self, name)

    monkeypatch.setattr(GoogleCloud, "cancel_job", end_then_cancel)
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(created.id)
    assert len(cancels) == 1  # the adapter's read saw it running: Vertex refused the cancel
    monkeypatch.undo()
    assert sdk.batches.retrieve(created.id).status == "completed"


def test_a_job_whose_note_was_swept_is_left_out_of_the_list_and_not_found(
    local_gateway: LocalGateway,
) -> None:
    """A job of the deployment with no note (its create gave up and the watcher's sweep removed
    the note) is not one of the gateway's batches: the list goes on without it, a retrieve
    answers 404."""
    import boto3
    from gateway.errors import UpstreamRequestError
    from gateway.providers.registry import client_for
    from gateway.providers.vertex import jobs as vertex_jobs
    from gateway.runtime.settings import get_settings

    adapter = client_for("vertex")
    sdk = _sdk(local_gateway)
    gateway_ids = ["batch_" + uuid.uuid4().hex[:24] for _ in range(2)]
    made = [
        adapter.create_batch(_adapter_body(sdk, gid, count=1), gateway_id=gid)["id"] for gid in gateway_ids
    ]
    note_key = adapter._note_key(vertex_jobs.job_token(gateway_ids[0]))
    boto3.client("s3").delete_object(Bucket=get_settings().bucket_name, Key=note_key)
    adapter._notes.clear()  # a fresh function instance

    listed = [b["id"] for b in adapter.list_batches(limit=100)["data"]]
    assert made[1] in listed and made[0] not in listed
    with pytest.raises(UpstreamRequestError) as missing:
        adapter.retrieve_batch(made[0])
    assert missing.value.status_code == 404
