"""The provider simulator, driven through the official openai SDK (OpenAI and Azure forms)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from devserver.simulator import Simulator, SimulatorConfig

PHASE = 0.2
SLOW_PHASE = 1.0
OPENAI_KEY = "sim-openai-key"
AZURE_KEY = "sim-azure-key"
API_VERSION = "2025-04-01-preview"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(
        SimulatorConfig(
            port=0, openai_key=OPENAI_KEY, azure_key=AZURE_KEY, batch_phase_seconds=PHASE, storage_dir=None
        )
    )
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[Simulator]:
    """Long phases, for tests that must act at a known point of a batch's life."""
    with Simulator(SimulatorConfig(batch_phase_seconds=SLOW_PHASE)) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(sim: Simulator) -> None:
    r = httpx.post(f"{sim.url}/_sim/reset")
    assert r.status_code == 200


@pytest.fixture
def client(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_api_base, api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture
def azure(sim: Simulator) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=sim.azure_api_base, api_key=AZURE_KEY, api_version=API_VERSION, max_retries=0
    )


def request_line(
    custom_id: str, *, model: str = "gpt-4o-mini", url: str = "/v1/chat/completions", body: Any = None
) -> dict[str, Any]:
    if body is None:
        body = {"model": model, "messages": [{"role": "user", "content": f"Say hi to {custom_id}"}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: list[Any]) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


def wait_status(c: openai.OpenAI, batch_id: str, statuses: set[str], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.status}"
        time.sleep(0.03)


def read_jsonl(c: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in c.files.content(file_id).content.splitlines() if line.strip()]


# --------------------------------------------------------------------------- files


def test_file_upload_retrieve_content_delete(client: openai.OpenAI, sim: Simulator) -> None:
    data = jsonl([request_line(f"r{i}") for i in range(3)])
    f = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert f.id.startswith("file-") and len(f.id) == len("file-") + 24
    assert (f.object, f.bytes, f.filename, f.purpose, f.status) == (
        "file",
        len(data),
        "input.jsonl",
        "batch",
        "processed",
    )
    assert f.expires_at is None and f.status_details is None

    assert client.files.retrieve(f.id) == f
    assert client.files.content(f.id).content == data
    raw = client.files.with_raw_response.content(f.id)
    assert raw.headers["content-type"] == "application/octet-stream"

    received = httpx.get(f"{sim.url}/_sim/received/{f.id}").json()
    assert received["sha256"] == hashlib.sha256(data).hexdigest() and received["bytes"] == len(data)

    deleted = client.files.delete(f.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (f.id, True, "file")
    with pytest.raises(openai.NotFoundError) as exc:
        client.files.retrieve(f.id)
    assert exc.value.status_code == 404 and exc.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)


def test_file_expires_after_and_validation(client: openai.OpenAI, sim: Simulator) -> None:
    f = client.files.create(
        file=("notes.txt", b"hello"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at == f.created_at + 3600

    with pytest.raises(openai.BadRequestError) as exc:
        client.files.create(file=("x.jsonl", b"{}"), purpose="nonsense")  # type: ignore[arg-type]
    assert exc.value.param == "purpose"

    r = httpx.post(
        f"{sim.openai_api_base}/files",
        headers={"Authorization": f"Bearer {OPENAI_KEY}"},
        files={"purpose": (None, "batch")},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}

    r = httpx.post(
        f"{sim.openai_api_base}/files",
        headers={"Authorization": f"Bearer {OPENAI_KEY}"},
        files={"file": ("a.jsonl", b"{}")},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    # nothing half-created
    assert client.files.list().data == [f]


def test_file_list_pagination(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="batch").id for i in range(7)]
    other = client.files.create(file=("v.png", b"png"), purpose="vision").id

    seen = [f.id for f in client.files.list(purpose="batch", limit=2)]  # auto-pagination
    assert seen == list(reversed(ids))

    first = client.files.list(purpose="batch", limit=3, order="asc")
    assert [f.id for f in first.data] == ids[:3] and first.has_more is True
    assert first.first_id == ids[0] and first.last_id == ids[2]  # type: ignore[attr-defined]
    rest = client.files.list(purpose="batch", limit=10, order="asc", after=ids[2])
    assert [f.id for f in rest.data] == ids[3:] and rest.has_more is False

    everything = [f.id for f in client.files.list()]
    assert everything[0] == other and sorted(everything) == sorted([*ids, other])

    with pytest.raises(openai.BadRequestError) as exc:
        client.files.list(limit=0)
    assert exc.value.param == "limit"


def test_large_upload_streams_with_bounded_memory(sim: Simulator) -> None:
    """A 32 MB chunked multipart upload and its download never hold the file in memory."""
    size, chunk = 32 << 20, 256 << 10
    block = os.urandom(chunk)
    boundary = "simboundary1234"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    expected = hashlib.sha256()
    for _ in range(size // chunk):
        expected.update(block)

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(size // chunk):
            yield block
        yield tail

    headers = {
        "Authorization": f"Bearer {OPENAI_KEY}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    with httpx.Client(timeout=60) as http:
        tracemalloc.start()
        try:
            r = http.post(f"{sim.openai_api_base}/files", content=body(), headers=headers)
            assert r.status_code == 200, r.text
            file_id = r.json()["id"]
            assert r.json()["bytes"] == size
            got = hashlib.sha256()
            with http.stream(
                "GET", f"{sim.openai_api_base}/files/{file_id}/content", headers=headers
            ) as resp:
                assert int(resp.headers["content-length"]) == size
                for part in resp.iter_bytes():
                    got.update(part)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20, f"peak traced memory {peak} bytes"
    assert got.hexdigest() == expected.hexdigest()
    assert http_json(sim, "GET", f"/_sim/received/{file_id}")["sha256"] == expected.hexdigest()


def http_json(sim: Simulator, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, sim.url + path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- uploads


def test_uploads_api_chunked(client: openai.OpenAI, sim: Simulator, tmp_path: Path) -> None:
    data = jsonl(
        [
            request_line(f"u{i}", body={"model": "m", "messages": [{"role": "user", "content": "x" * 300}]})
            for i in range(600)
        ]
    )
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    part_size = 64 << 10
    up = client.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="batch", part_size=part_size
    )
    assert up.status == "completed" and up.object == "upload" and up.id.startswith("upload_")
    assert up.expires_at == up.created_at + 3600 and up.filename == "big.jsonl"
    assert len(data) > 3 * part_size
    assert up.file is not None and up.file.bytes == len(data) and up.file.purpose == "batch"
    assert client.files.content(up.file.id).content == data
    received = httpx.get(f"{sim.url}/_sim/received/{up.file.id}").json()
    assert received == {"id": up.file.id, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_uploads_order_checks_and_cancel(client: openai.OpenAI) -> None:
    up = client.uploads.create(bytes=6, filename="ab.txt", mime_type="text/plain", purpose="user_data")
    assert (up.status, up.file) == ("pending", None)
    a = client.uploads.parts.create(upload_id=up.id, data=b"abc")
    b = client.uploads.parts.create(upload_id=up.id, data=b"def")
    assert a.object == "upload.part" and a.upload_id == up.id and a.id.startswith("part_")

    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.complete(upload_id=up.id, part_ids=[a.id])  # 3 bytes of 6
    assert "bytes" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.complete(upload_id=up.id, part_ids=[b.id, a.id], md5="0" * 32)
    assert exc.value.param == "md5"

    done = client.uploads.complete(
        upload_id=up.id, part_ids=[b.id, a.id], md5=hashlib.md5(b"defabc").hexdigest()
    )
    assert done.status == "completed" and done.file is not None
    assert client.files.content(done.file.id).content == b"defabc"  # assembled in part_ids order

    other = client.uploads.create(bytes=3, filename="c.txt", mime_type="text/plain", purpose="user_data")
    cancelled = client.uploads.cancel(other.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=other.id, data=b"abc")


# --------------------------------------------------------------------------- batches


def test_batch_runs_to_completion(client: openai.OpenAI) -> None:
    lines = [request_line(f"req-{i}", model="sim-fail" if i in (2, 4) else "gpt-4o-mini") for i in range(8)]
    f = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "t1"}
    )
    assert batch.id.startswith("batch_") and batch.status == "validating" and batch.object == "batch"
    assert batch.expires_at == batch.created_at + 86400 and batch.metadata == {"job": "t1"}
    assert batch.output_file_id is None and batch.in_progress_at is None and batch.usage is None

    seen = {client.batches.retrieve(batch.id).status}
    done = wait_status(client, batch.id, {"completed", "failed"})
    assert done.status == "completed", done.errors
    seen.add("completed")
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (8, 6, 2)
    assert done.model == "gpt-4o-mini"
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at

    out = read_jsonl(client, done.output_file_id)
    assert [o["custom_id"] for o in out] == [f"req-{i}" for i in range(8) if i not in (2, 4)]
    first = out[0]
    assert first["id"].startswith("batch_req_") and first["error"] is None
    assert first["response"]["status_code"] == 200
    body = first["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["role"] == "assistant" and body["usage"]["total_tokens"] > 0

    errors = read_jsonl(client, done.error_file_id)
    assert [e["custom_id"] for e in errors] == ["req-2", "req-4"]
    assert errors[0]["response"]["status_code"] == 400 and "error" in errors[0]["response"]["body"]

    assert done.usage is not None
    assert done.usage.input_tokens == sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
    assert done.usage.output_tokens == sum(o["response"]["body"]["usage"]["completion_tokens"] for o in out)
    assert done.usage.input_tokens_details.cached_tokens == 0
    assert done.usage.output_tokens_details.reasoning_tokens == 0

    out_file = client.files.retrieve(done.output_file_id)
    assert out_file.purpose == "batch_output" and out_file.filename == f"{done.id}_output.jsonl"

    listed = [b.id for b in client.batches.list()]
    assert listed == [batch.id]


def test_batch_endpoints_produce_matching_bodies(client: openai.OpenAI) -> None:
    cases: dict[str, tuple[dict[str, Any], str | None]] = {
        "/v1/responses": ({"model": "gpt-4.1", "input": "hello"}, "response"),
        "/v1/embeddings": ({"model": "text-embedding-3-small", "input": ["a", "b"]}, "list"),
        "/v1/completions": ({"model": "gpt-3.5-turbo-instruct", "prompt": "Once"}, "text_completion"),
        "/v1/moderations": ({"model": "omni-moderation-latest", "input": "nice day"}, None),
    }
    batches = {}
    for endpoint, (body, _) in cases.items():
        f = client.files.create(
            file=("in.jsonl", jsonl([request_line("only", url=endpoint, body=body)])), purpose="batch"
        )
        batches[endpoint] = client.batches.create(
            input_file_id=f.id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        ).id
    for endpoint, (body, kind) in cases.items():
        done = wait_status(client, batches[endpoint], {"completed", "failed"})
        assert done.status == "completed" and done.model == body["model"]
        result = read_jsonl(client, done.output_file_id)[0]["response"]["body"]
        assert result["model"] == body["model"]
        if kind is not None:
            assert result["object"] == kind
        if endpoint == "/v1/responses":
            assert result["output"][0]["content"][0]["type"] == "output_text"
        elif endpoint == "/v1/embeddings":
            assert [d["index"] for d in result["data"]] == [0, 1] and len(result["data"][0]["embedding"]) > 0
        elif endpoint == "/v1/moderations":
            assert result["results"][0]["flagged"] is False


def test_image_and_video_batches(client: openai.OpenAI) -> None:
    cases = {
        "/v1/images/generations": {"model": "gpt-image-1", "prompt": "a red fox", "n": 2},
        "/v1/images/edits": {"model": "gpt-image-1", "prompt": "add a hat", "image": "https://x/fox.png"},
        "/v1/videos": {"model": "sora-2", "prompt": "waves", "seconds": "8"},
    }
    outputs = {}
    for endpoint, body in cases.items():
        f = client.files.create(
            file=("in.jsonl", jsonl([request_line("only", url=endpoint, body=body)])), purpose="batch"
        )
        batch = client.batches.create(
            input_file_id=f.id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
        done = wait_status(client, batch.id, {"completed", "failed"})
        assert done.status == "completed" and done.model == body["model"], done
        outputs[endpoint] = read_jsonl(client, done.output_file_id)[0]["response"]["body"]
    assert len(outputs["/v1/images/generations"]["data"]) == 2
    assert outputs["/v1/images/edits"]["data"][0]["b64_json"]
    assert outputs["/v1/images/generations"]["usage"]["total_tokens"] > 0
    video = outputs["/v1/videos"]
    assert (video["object"], video["status"], video["seconds"]) == ("video", "queued", "8")


def test_invalid_jsonl_fails_validation(client: openai.OpenAI) -> None:
    lines = [
        request_line("ok-1"),
        "{not json",
        {"custom_id": "no-body", "method": "POST", "url": "/v1/chat/completions"},
        request_line("wrong-url", url="/v1/embeddings"),
        request_line("ok-1"),
    ]
    f = client.files.create(file=("bad.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"  # accepted at creation, like OpenAI
    done = wait_status(client, batch.id, {"completed", "failed"})
    assert done.status == "failed" and done.failed_at is not None and done.output_file_id is None
    assert done.errors is not None and done.errors.object == "list"
    found = {(e.line, e.code, e.param) for e in done.errors.data or []}
    assert found == {
        (2, "invalid_json_line", None),
        (3, "missing_required_parameter", "body"),
        (4, "url_mismatch", "url"),
        (5, "duplicate_custom_id", "custom_id"),
    }


def test_batch_create_validation(client: openai.OpenAI) -> None:
    good = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="batch")
    wrong_purpose = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="user_data")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input_file_id": "file-missing", "endpoint": "/v1/chat/completions"}, "input_file_id"),
        ({"input_file_id": wrong_purpose.id, "endpoint": "/v1/chat/completions"}, "input_file_id"),
        ({"input_file_id": good.id, "endpoint": "/v1/audio/speech"}, "endpoint"),
        (
            {"input_file_id": good.id, "endpoint": "/v1/chat/completions", "completion_window": "48h"},
            "completion_window",
        ),
    ]
    for params, param in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.batches.create(**{"completion_window": "24h", **params})
        assert exc.value.status_code == 400 and exc.value.param == param
    assert client.batches.list().data == []


def test_cancel_in_progress_keeps_partial_results(slow_sim: Simulator) -> None:
    c = openai.OpenAI(base_url=slow_sim.openai_api_base, api_key=OPENAI_KEY, max_retries=0)
    total = 40
    f = c.files.create(
        file=("in.jsonl", jsonl([request_line(f"r{i}") for i in range(total)])), purpose="batch"
    )
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_status(c, batch.id, {"in_progress"})
    time.sleep(SLOW_PHASE * 0.4)
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    again = c.batches.cancel(batch.id)
    assert again.status == "cancelling" and again.cancelling_at == cancelling.cancelling_at

    done = wait_status(c, batch.id, {"cancelled"})
    assert done.cancelled_at is not None and done.completed_at is None
    counts = done.request_counts
    assert counts is not None and counts.total == total
    assert 0 < counts.completed < total and counts.failed == 0
    out = read_jsonl(c, done.output_file_id)
    assert [o["custom_id"] for o in out] == [f"r{i}" for i in range(counts.completed)]


def test_cancel_while_validating_produces_nothing(slow_sim: Simulator) -> None:
    c = openai.OpenAI(base_url=slow_sim.openai_api_base, api_key=OPENAI_KEY, max_retries=0)
    f = c.files.create(file=("in.jsonl", jsonl([request_line("a"), request_line("b")])), purpose="batch")
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert c.batches.cancel(batch.id).status == "cancelling"
    done = wait_status(c, batch.id, {"cancelled"})
    assert done.output_file_id is None and done.error_file_id is None
    assert done.request_counts is not None and done.request_counts.completed == 0


def test_cancel_finished_batch_conflicts(client: openai.OpenAI) -> None:
    f = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_status(client, batch.id, {"completed"})
    with pytest.raises(openai.ConflictError) as exc:
        client.batches.cancel(batch.id)
    assert exc.value.status_code == 409 and exc.value.type == "invalid_request_error"
    assert exc.value.code == "batch_not_cancellable"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_batch_list_pagination(client: openai.OpenAI) -> None:
    f = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="batch")
    ids = [
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(5)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more is True
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)


# --------------------------------------------------------------------------- auth and Azure


def test_wrong_key_is_401(sim: Simulator) -> None:
    bad = openai.OpenAI(base_url=sim.openai_api_base, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.files.list()
    assert exc.value.status_code == 401 and exc.value.code == "invalid_api_key"
    r = httpx.get(f"{sim.openai_api_base}/batches")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    bad_azure = openai.AzureOpenAI(
        azure_endpoint=sim.azure_api_base, api_key="nope", api_version=API_VERSION, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad_azure.batches.list()


def test_key_rotation(sim: Simulator, client: openai.OpenAI) -> None:
    assert http_json(sim, "POST", "/_sim/keys", {"openai_key": "rotated"})
    with pytest.raises(openai.AuthenticationError):
        client.files.list()
    rotated = openai.OpenAI(base_url=sim.openai_api_base, api_key="rotated", max_retries=0)
    assert rotated.files.list().data == []
    http_json(sim, "POST", "/_sim/reset")
    assert client.files.list().data == []  # reset restores the configured keys


def test_azure_files_and_batches(azure: openai.AzureOpenAI, sim: Simulator) -> None:
    lines = [request_line(f"az-{i}", model="my-gpt4o-deployment", url="/chat/completions") for i in range(3)]
    raw = azure.files.with_raw_response.create(file=("az.jsonl", jsonl(lines)), purpose="batch")
    assert raw.status_code == 201
    f = raw.parse()
    deadline = time.monotonic() + 5
    while azure.files.retrieve(f.id).status != "processed":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    raw_batch = azure.batches.with_raw_response.create(
        input_file_id=f.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    assert raw_batch.status_code == 201
    batch = raw_batch.parse()
    done = wait_status(azure, batch.id, {"completed", "failed"})
    assert done.status == "completed" and done.model == "my-gpt4o-deployment"
    out = read_jsonl(azure, done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == ["az-0", "az-1", "az-2"]
    assert out[0]["response"]["body"]["model"] == "my-gpt4o-deployment"

    # Azure and OpenAI are separate accounts
    openai_client = openai.OpenAI(base_url=sim.openai_api_base, api_key=OPENAI_KEY, max_retries=0)
    assert openai_client.files.list().data == []
    assert [b.id for b in azure.batches.list()] == [batch.id]


def test_azure_refuses_the_file_purposes_it_does_not_document(
    azure: openai.AzureOpenAI, sim: Simulator
) -> None:
    """Azure's Files API takes assistants, batch, fine-tune and evals: OpenAI's user_data and
    vision are a 400 there, by file and by upload, on the dated and the v1 API."""
    for purpose in ("user_data", "vision"):
        with pytest.raises(openai.BadRequestError) as refused:
            azure.files.create(file=("notes.txt", b"hello"), purpose=purpose)  # type: ignore[arg-type]
        assert refused.value.code == "invalidPayload" and purpose in refused.value.message
        with pytest.raises(openai.BadRequestError):
            azure.uploads.create(bytes=5, filename="n.txt", mime_type="text/plain", purpose=purpose)  # type: ignore[arg-type]
    v1 = openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=AZURE_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        v1.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert azure.files.list().data == []  # nothing kept of a refused upload
    for purpose in ("assistants", "batch", "fine-tune", "evals"):
        assert azure.files.create(file=("n.jsonl", jsonl([request_line(purpose)])), purpose=purpose).id  # type: ignore[arg-type]


def test_azure_requires_api_version(sim: Simulator) -> None:
    r = httpx.get(f"{sim.url}/openai/files", headers={"api-key": AZURE_KEY})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "api-version"
    ok = httpx.get(
        f"{sim.url}/openai/files", params={"api-version": API_VERSION}, headers={"api-key": AZURE_KEY}
    )
    assert ok.status_code == 200 and ok.json()["object"] == "list"


def test_azure_v1_api_takes_openai_clients(sim: Simulator) -> None:
    """Azure's v1 API: /openai/v1/..., the key as a Bearer token or `api-key`, no dated version."""
    v1 = openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=AZURE_KEY, max_retries=0)
    lines = [request_line("v1-0", model="my-deployment", url="/v1/chat/completions")]
    created = v1.files.with_raw_response.create(file=("v1.jsonl", jsonl(lines)), purpose="batch")
    assert created.status_code == 200  # the dated API's 201 is not the v1 API's
    file_id = created.parse().id
    assert [f.id for f in v1.files.list().data] == [file_id]
    by_api_key = httpx.get(f"{sim.url}/openai/v1/files/{file_id}", headers={"api-key": AZURE_KEY})
    assert by_api_key.status_code == 200 and by_api_key.json()["id"] == file_id
    preview = httpx.get(
        f"{sim.url}/openai/v1/files", params={"api-version": "preview"}, headers={"api-key": AZURE_KEY}
    )
    assert preview.status_code == 200
    dated = httpx.get(
        f"{sim.url}/openai/v1/files", params={"api-version": API_VERSION}, headers={"api-key": AZURE_KEY}
    )
    assert dated.status_code == 400 and dated.json()["error"]["param"] == "api-version"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=OPENAI_KEY, max_retries=0).files.list()


# --------------------------------------------------------------------------- faults and plumbing


def test_fault_injection(sim: Simulator, client: openai.OpenAI) -> None:
    http_json(
        sim, "POST", "/_sim/faults", {"status": 429, "times": 1, "retry_after": 2, "path_contains": "/files"}
    )
    with pytest.raises(openai.RateLimitError) as exc:
        client.files.list()
    assert exc.value.response.headers["retry-after"] == "2"
    assert exc.value.type == "rate_limit_error"
    assert client.files.list().data == []  # only one request was affected

    http_json(sim, "POST", "/_sim/faults", {"status": 500, "method": "POST", "path_contains": "/batches"})
    client.files.list()  # GET /files does not match
    with pytest.raises(openai.InternalServerError) as server_exc:
        client.batches.create(
            input_file_id="file-x", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert server_exc.value.status_code == 500 and server_exc.value.type == "server_error"

    http_json(sim, "POST", "/_sim/faults", {"status": None, "delay_seconds": 0.3, "path_contains": "/files"})
    started = time.monotonic()
    assert client.files.list().data == []
    assert time.monotonic() - started >= 0.3

    http_json(sim, "POST", "/_sim/faults", {"status": 503, "times": 5})
    http_json(sim, "DELETE", "/_sim/faults")
    assert client.files.list().data == []


def test_sdk_retries_through_a_429(sim: Simulator) -> None:
    http_json(sim, "POST", "/_sim/faults", {"status": 429, "times": 2, "retry_after": 0.05})
    retrying = openai.OpenAI(base_url=sim.openai_api_base, api_key=OPENAI_KEY, max_retries=2)
    assert retrying.batches.list().data == []


def test_unknown_route_is_404_envelope(sim: Simulator) -> None:
    r = httpx.get(f"{sim.openai_api_base}/nothing", headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("Invalid URL")


def test_standalone_entry_point() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/_sim/health").json() == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
