"""The simulator's Google forms enforce what Google documents: the service-account token
exchange, Cloud Storage's object rules, Vertex AI's batch prediction job rules and states.
Driven with plain HTTP and google-auth, as any client would (no gateway code)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions
from google.auth.transport import Response as AuthResponse
from google.oauth2 import service_account

from devserver.simulator import Simulator, SimulatorConfig, SteppedClock

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
BUCKET = "sim-vertex-batches"
PHASE = 10.0


class _Request:
    """google.auth.transport.Request over httpx (the test's own, not the gateway's)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any) -> Any:
        answer = self.http.request(method, url, content=body, headers=headers)

        class _Answer(AuthResponse):
            status = answer.status_code
            headers = answer.headers
            data = answer.content

        return _Answer()


@pytest.fixture(scope="module")
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture(scope="module")
def sim(clock: SteppedClock) -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(clock=clock, batch_phase_seconds=PHASE)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def http(sim: Simulator) -> Iterator[httpx.Client]:
    key = json.loads(sim.google_service_account_key())
    with httpx.Client() as client:
        credentials = service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
        credentials.refresh(_Request(client))
        client.headers["Authorization"] = f"Bearer {credentials.token}"
        yield client


def _jobs_url(sim: Simulator) -> str:
    return sim.vertex_api_base + "/v1/projects/sim-project/locations/us-central1/batchPredictionJobs"


def _upload(sim: Simulator, http: httpx.Client, name: str, data: bytes, **params: Any) -> httpx.Response:
    return http.post(
        f"{sim.gcs_api_base}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": name, **params},
        content=data,
    )


def _job_body(input_uri: str, **fields: Any) -> dict[str, Any]:
    return {
        "displayName": "a job",
        "model": "publishers/google/models/gemini-2.5-flash",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{BUCKET}/out"},
        },
        **fields,
    }


def _row(text: str, **request: Any) -> bytes:
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], **request}
    return json.dumps({"request": body}).encode() + b"\n"


# The token endpoint -----------------------------------------------------------------------------
def test_a_key_the_simulator_did_not_make_is_refused(sim: Simulator) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = json.loads(sim.google_service_account_key())
    key["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
    with httpx.Client() as client, pytest.raises(exceptions.RefreshError, match="invalid_grant"):
        credentials.refresh(_Request(client))


def test_a_token_without_the_cloud_platform_scope_is_refused(sim: Simulator) -> None:
    key = json.loads(sim.google_service_account_key())
    credentials = service_account.Credentials.from_service_account_info(
        key, scopes=["https://www.googleapis.com/auth/devstorage.read_only"]
    )
    with httpx.Client() as client, pytest.raises(exceptions.RefreshError, match="invalid_scope"):
        credentials.refresh(_Request(client))


def test_storage_and_vertex_need_a_token(sim: Simulator) -> None:
    for url in (f"{sim.gcs_api_base}/storage/v1/b/{BUCKET}/o", _jobs_url(sim)):
        answer = httpx.get(url, headers={"Authorization": "Bearer ya29.made-up"})
        assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
        assert httpx.get(url).status_code == 401


# Cloud Storage ----------------------------------------------------------------------------------
def test_objects_are_written_read_listed_and_deleted(sim: Simulator, http: httpx.Client) -> None:
    for name in ("list/a.jsonl", "list/b.jsonl", "other/c.jsonl"):
        assert _upload(sim, http, name, b"x").status_code == 200
    listing = f"{sim.gcs_api_base}/storage/v1/b/{BUCKET}/o"
    page = http.get(listing, params={"prefix": "list/", "maxResults": 1}).json()
    assert [item["name"] for item in page["items"]] == ["list/a.jsonl"] and page["nextPageToken"]
    rest = http.get(listing, params={"prefix": "list/", "pageToken": page["nextPageToken"]}).json()
    assert [item["name"] for item in rest["items"]] == ["list/b.jsonl"] and "nextPageToken" not in rest
    media = http.get(f"{listing}/{quote('list/a.jsonl', safe='')}", params={"alt": "media"})
    assert media.content == b"x"
    assert http.delete(f"{listing}/{quote('list/a.jsonl', safe='')}").status_code == 204
    assert http.get(f"{listing}/{quote('list/a.jsonl', safe='')}").status_code == 404


@pytest.mark.parametrize("name", ["", "line\nbreak", "..", ".well-known/acme-challenge/x", "n" * 1025])
def test_object_names_follow_the_naming_rules(sim: Simulator, http: httpx.Client, name: str) -> None:
    answer = _upload(sim, http, name, b"x")
    assert answer.status_code == 400, answer.text


def test_a_generation_precondition_and_an_unknown_bucket(sim: Simulator, http: httpx.Client) -> None:
    assert _upload(sim, http, "once.jsonl", b"1", ifGenerationMatch="0").status_code == 200
    assert _upload(sim, http, "once.jsonl", b"2", ifGenerationMatch="0").status_code == 412
    unknown = http.post(
        f"{sim.gcs_api_base}/upload/storage/v1/b/no-such-bucket/o",
        params={"uploadType": "media", "name": "a"},
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 404


# Vertex AI jobs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"model": "gemini-2.5-flash"}, "Invalid model resource name"),
        ({"model": "publishers/meta/models/llama-3.3-70b"}, "Gemini and Claude models only"),
        ({"model": "publishers/anthropic/models/gemini-2.5-flash"}, "Gemini and Claude models only"),
        (
            {"model": "projects/other/locations/us-central1/publishers/google/models/gemini-2.5-flash"},
            "project",
        ),
        ({"displayName": ""}, "display_name"),
        ({"displayName": "n" * 129}, "at most 128"),
        ({"labels": {"Upper": "x"}}, "Invalid label"),
        ({"labels": {"k": "has space"}}, "Invalid label"),
        (
            {"inputConfig": {"instancesFormat": "bigquery", "bigquerySource": {"inputUri": "bq://p.d.t"}}},
            "jsonl",
        ),
        (
            {"inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://b/1", "gs://b/2"]}}},
            "exactly one",
        ),
        (
            {
                "outputConfig": {
                    "predictionsFormat": "jsonl",
                    "gcsDestination": {"outputUriPrefix": "s3://b/out"},
                }
            },
            "gs://",
        ),
    ],
)
def test_a_create_breaking_a_documented_rule_is_refused(
    sim: Simulator, http: httpx.Client, change: dict[str, Any], found: str
) -> None:
    answer = http.post(_jobs_url(sim), json={**_job_body(f"gs://{BUCKET}/in.jsonl"), **change})
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert found in answer.json()["error"]["message"]


def test_a_job_runs_along_the_clock_and_writes_predictions(
    sim: Simulator, http: httpx.Client, clock: SteppedClock
) -> None:
    rows = _row("one") + _row("two", generationConfig={"temperature": 3}) + _row("three")
    assert _upload(sim, http, "run/in.jsonl", rows).status_code == 200
    job = http.post(
        _jobs_url(sim), json=_job_body(f"gs://{BUCKET}/run/in.jsonl", labels={"run": "r1"})
    ).json()
    assert job["state"] == "JOB_STATE_PENDING"
    url = f"{sim.vertex_api_base}/v1/{job['name']}"
    states = []
    for _ in range(5):
        clock.step(PHASE / 2)
        states.append(http.get(url).json()["state"])
    assert states == [  # queued from a third of a phase, running from one, done at two
        "JOB_STATE_QUEUED",
        "JOB_STATE_RUNNING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_SUCCEEDED",
    ]
    done = http.get(url).json()
    assert done["completionStats"] == {"successfulCount": "2", "failedCount": "1", "incompleteCount": "0"}
    directory = done["outputInfo"]["gcsOutputDirectory"].removeprefix(f"gs://{BUCKET}/")
    media = http.get(
        f"{sim.gcs_api_base}/storage/v1/b/{BUCKET}/o/{quote(directory + '/predictions.jsonl', safe='')}",
        params={"alt": "media"},
    )
    lines = [json.loads(line) for line in media.text.splitlines()]
    assert [line["request"]["contents"][0]["parts"][0]["text"] for line in lines] == ["one", "two", "three"]
    assert lines[0]["status"] == "" and lines[0]["response"]["candidates"][0]["finishReason"] == "STOP"
    assert "temperature" in lines[1]["status"] and "response" not in lines[1]
    listed = http.get(_jobs_url(sim), params={"filter": 'labels.run="r1"'}).json()["batchPredictionJobs"]
    assert [item["name"] for item in listed] == [job["name"]]
    # a finished job can be deleted, then it is gone
    assert http.delete(url).status_code == 200 and http.get(url).status_code == 404


def test_a_missing_input_file_fails_the_job(sim: Simulator, http: httpx.Client, clock: SteppedClock) -> None:
    job = http.post(_jobs_url(sim), json=_job_body(f"gs://{BUCKET}/missing.jsonl")).json()
    clock.step(PHASE)
    failed = http.get(f"{sim.vertex_api_base}/v1/{job['name']}").json()
    assert failed["state"] == "JOB_STATE_FAILED" and "missing.jsonl" in failed["error"]["message"]


def test_cancel_and_delete_follow_the_jobs_state(
    sim: Simulator, http: httpx.Client, clock: SteppedClock
) -> None:
    assert _upload(sim, http, "cancel/in.jsonl", _row("a") * 4).status_code == 200
    waiting = http.post(_jobs_url(sim), json=_job_body(f"gs://{BUCKET}/cancel/in.jsonl")).json()
    running = http.post(_jobs_url(sim), json=_job_body(f"gs://{BUCKET}/cancel/in.jsonl")).json()
    assert http.post(f"{sim.vertex_api_base}/v1/{waiting['name']}:cancel").status_code == 200
    assert http.get(f"{sim.vertex_api_base}/v1/{waiting['name']}").json()["state"] == "JOB_STATE_CANCELLED"
    clock.step(PHASE * 1.5)  # half of the rows have run
    url = f"{sim.vertex_api_base}/v1/{running['name']}"
    deleting = http.delete(url)
    assert deleting.status_code == 400 and deleting.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert http.post(f"{url}:cancel").status_code == 200
    assert http.get(url).json()["state"] == "JOB_STATE_CANCELLING"
    clock.step(PHASE / 2)
    cancelled = http.get(url).json()
    assert cancelled["state"] == "JOB_STATE_CANCELLED"
    assert cancelled["completionStats"] == {
        "successfulCount": "2",
        "failedCount": "0",
        "incompleteCount": "2",
    }
    again = http.post(f"{url}:cancel")
    assert again.status_code == 400 and again.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_a_claude_row_keeps_its_custom_id_and_its_version_is_checked(
    sim: Simulator, http: httpx.Client, clock: SteppedClock
) -> None:
    good = {
        "messages": [{"role": "user", "content": "Hi"}],
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 20,
    }
    rows = [
        {"custom_id": "request-1", "request": good},
        {"custom_id": "request-2", "request": {**good, "anthropic_version": "2023-06-01"}},
        {"custom_id": "request-3", "request": {**good, "model": "claude-sonnet-4"}},
    ]
    assert (
        _upload(
            sim, http, "claude/in.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
        ).status_code
        == 200
    )
    body = _job_body(
        f"gs://{BUCKET}/claude/in.jsonl", model="publishers/anthropic/models/claude-sonnet-4@20250514"
    )
    job = http.post(_jobs_url(sim), json=body).json()
    clock.step(PHASE * 2)
    done = http.get(f"{sim.vertex_api_base}/v1/{job['name']}").json()
    directory = done["outputInfo"]["gcsOutputDirectory"].removeprefix(f"gs://{BUCKET}/")
    media = http.get(
        f"{sim.gcs_api_base}/storage/v1/b/{BUCKET}/o/{quote(directory + '/predictions.jsonl', safe='')}",
        params={"alt": "media"},
    )
    lines = {line["custom_id"]: line for line in map(json.loads, media.text.splitlines())}
    assert lines["request-1"]["response"]["type"] == "message" and lines["request-1"]["status"] == ""
    assert "anthropic_version" in lines["request-2"]["status"] and "response" not in lines["request-2"]
    assert "model" in lines["request-3"]["status"]


def test_a_resumable_upload_takes_parts_in_order_and_commits_on_the_last(
    sim: Simulator, http: httpx.Client
) -> None:
    start = http.post(
        f"{sim.gcs_api_base}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "resumable", "name": "parts/obj.jsonl"},
        headers={"X-Upload-Content-Type": "application/jsonl"},
    )
    assert start.status_code == 200
    session = start.headers["location"]
    part = b"a" * (256 * 1024)
    odd = http.put(session, content=part[:1000], headers={"Content-Range": "bytes 0-999/*"})
    assert odd.status_code == 400  # not a multiple of 256 KiB and not the last
    first = http.put(session, content=part, headers={"Content-Range": f"bytes 0-{len(part) - 1}/*"})
    assert first.status_code == 308 and first.headers["range"] == f"bytes=0-{len(part) - 1}"
    gap = http.put(session, content=b"b", headers={"Content-Range": "bytes 5-5/6"})
    assert gap.status_code == 400  # not where the upload stands
    listing = f"{sim.gcs_api_base}/storage/v1/b/{BUCKET}/o/{quote('parts/obj.jsonl', safe='')}"
    assert http.get(listing).status_code == 404  # nothing until the last part
    end = len(part) + 2
    last = http.put(session, content=b"bc", headers={"Content-Range": f"bytes {len(part)}-{end - 1}/{end}"})
    assert last.status_code == 200 and last.json()["size"] == str(end)
    assert http.get(listing, params={"alt": "media"}).content == part + b"bc"
    assert http.put(session, content=b"x", headers={"Content-Range": "bytes 0-0/1"}).status_code == 404
