"""The simulator's Gemini form over HTTP: the Files API's resumable upload, batches along the
SteppedClock, and the rules Google documents, refused as Google answers them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devserver.simulator import Simulator, SimulatorConfig, SteppedClock
from devserver.simulator.gemini_requests import RequestInvalid, check_request
from devserver.simulator.limits import SimulatorLimits
from tests.unit import stepped_simulator

PHASE = 10.0
KEY = {"x-goog-api-key": "sim-gemini-key"}
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}

clock, sim = stepped_simulator.clock, stepped_simulator.sim  # fixtures


def upload(sim: Simulator, data: bytes, *, declared: int | None = None) -> httpx.Response:
    start = httpx.post(
        sim.gemini_api_base + "/upload/v1beta/files",
        headers={
            **KEY,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data) if declared is None else declared),
            "X-Goog-Upload-Header-Content-Type": "application/jsonl",
        },
        json={"file": {"displayName": "requests"}},
    )
    if start.status_code != 200:
        return start
    return httpx.post(
        start.headers["x-goog-upload-url"],
        headers={**KEY, "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        content=data,
    )


def jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in lines)


def create(sim: Simulator, file_name: str, model: str = "gemini-2.5-flash") -> httpx.Response:
    return httpx.post(
        f"{sim.gemini_api_base}/v1beta/models/{model}:batchGenerateContent",
        headers=KEY,
        json={"batch": {"displayName": "mine", "inputConfig": {"fileName": file_name}}},
    )


def test_upload_then_a_batch_through_its_states_to_its_responses_file(
    sim: Simulator, clock: SteppedClock
) -> None:
    uploaded = upload(sim, jsonl({"key": "a", "request": HELLO}, {"key": "b", "request": {"contents": []}}))
    file = uploaded.json()["file"]
    assert file["name"].startswith("files/") and file["sizeBytes"] == str(len(uploaded.request.content))
    operation = create(sim, file["name"]).json()
    assert (
        operation["name"].startswith("batches/") and operation["metadata"]["state"] == "BATCH_STATE_PENDING"
    )
    url = f"{sim.gemini_api_base}/v1beta/{operation['name']}"
    clock.step(PHASE * 1.5)
    assert httpx.get(url, headers=KEY).json()["metadata"]["state"] == "BATCH_STATE_RUNNING"
    clock.step(PHASE)
    done = httpx.get(url, headers=KEY).json()
    assert done["done"] and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {
        "requestCount": "2",
        "successfulRequestCount": "1",
        "failedRequestCount": "1",
        "pendingRequestCount": "0",
    }
    name = done["response"]["responsesFile"]
    raw = httpx.get(
        f"{sim.gemini_api_base}/download/v1beta/{name}:download", params={"alt": "media"}, headers=KEY
    )
    results = {item["key"]: item for item in map(json.loads, raw.text.splitlines())}
    assert results["a"]["response"]["candidates"][0]["content"]["role"] == "model"
    assert (
        results["b"]["error"]["code"] == 3 and "contents is not specified" in results["b"]["error"]["message"]
    )


def test_an_upload_past_the_limit_and_a_wrong_offset_are_refused(sim: Simulator) -> None:
    sim.set_limits(SimulatorLimits(max_bytes=10))
    too_big = upload(sim, b"x" * 11)
    assert too_big.status_code == 400 and too_big.json()["error"]["status"] == "INVALID_ARGUMENT"
    sim.set_limits(SimulatorLimits())
    start = upload(sim, b"abc", declared=5)
    assert start.status_code == 400 and "finalized at 3 of the 5" in start.json()["error"]["message"]


def test_unknown_model_bad_key_and_quota(sim: Simulator) -> None:
    name = upload(sim, jsonl({"key": "a", "request": HELLO})).json()["file"]["name"]
    assert create(sim, name, model="gemini-9-ultra").status_code == 404
    wrong = httpx.get(sim.gemini_api_base + "/v1beta/batches", headers={"x-goog-api-key": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert httpx.get(sim.gemini_api_base + "/v1beta/batches").status_code == 403
    sim.set_limits(SimulatorLimits(concurrent_jobs=1))
    assert create(sim, name).status_code == 200
    refused = create(sim, name)
    assert refused.status_code == 429 and refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_cancel_list_and_delete(sim: Simulator, clock: SteppedClock) -> None:
    name = upload(sim, jsonl(*({"key": str(n), "request": HELLO} for n in range(4)))).json()["file"]["name"]
    batch = create(sim, name).json()["name"]
    clock.step(PHASE * 1.6)
    assert httpx.post(f"{sim.gemini_api_base}/v1beta/{batch}:cancel", headers=KEY).json() == {}
    cancelled = httpx.get(f"{sim.gemini_api_base}/v1beta/{batch}", headers=KEY).json()
    assert cancelled["metadata"]["state"] == "BATCH_STATE_CANCELLED"
    assert cancelled["metadata"]["batchStats"]["successfulRequestCount"] == "2"
    again = httpx.post(f"{sim.gemini_api_base}/v1beta/{batch}:cancel", headers=KEY)
    assert again.status_code == 400
    listed = httpx.get(sim.gemini_api_base + "/v1beta/batches", headers=KEY, params={"pageSize": 1}).json()
    assert [op["name"] for op in listed["operations"]] == [batch] and "nextPageToken" not in listed
    assert httpx.delete(f"{sim.gemini_api_base}/v1beta/{batch}", headers=KEY).status_code == 200
    assert httpx.get(f"{sim.gemini_api_base}/v1beta/{batch}", headers=KEY).status_code == 404


def contents(*turns: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"contents": [{"role": role, "parts": [part]} for role, part in turns]}


CALL = {"functionCall": {"name": "get_weather", "args": {}}}
ANSWER = {"functionResponse": {"name": "get_weather", "response": {"t": 1}}}


@pytest.mark.parametrize(
    ("request_body", "model", "message"),
    [
        (contents(("user", {"text": "a"}), ("user", {"text": "b"})), "gemini-2.5-flash", "alternate"),
        (contents(("assistant", {"text": "a"})), "gemini-2.5-flash", "valid role"),
        ({**HELLO, "generationConfig": {"stopSequences": list("abcdef")}}, "gemini-2.5-flash", "at most 5"),
        ({**HELLO, "generationConfig": {"temperature": 3}}, "gemini-2.5-flash", "temperature"),
        (
            {**HELLO, "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
            "gemini-2.5-pro",
            "Budget 0",
        ),
        (
            {**HELLO, "generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}}},
            "gemini-2.5-flash",
            "level",
        ),
        (
            {**HELLO, "generationConfig": {"thinkingConfig": {"thinkingLevel": "minimal"}}},
            "gemini-3-pro-preview",
            "minimal",
        ),
        (
            {**HELLO, "generationConfig": {"responseJsonSchema": {"type": "object"}}},
            "gemini-2.5-flash",
            "responseMimeType",
        ),
        (
            contents(("user", {"text": "w"}), ("model", CALL), ("user", ANSWER)),
            "gemini-3-flash-preview",
            "thought_signature",
        ),
        (
            {**HELLO, "tools": [{"functionDeclarations": [{"name": "1bad"}]}]},
            "gemini-2.5-flash",
            "Invalid function name",
        ),
        ({**HELLO, "frequency": 1}, "gemini-2.5-flash", "Unknown name"),
        (
            {**HELLO, "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {}}},
            "gemini-2.0-flash",
            "responseJsonSchema is not supported",
        ),
        (
            contents(("user", {"inlineData": {"mimeType": "image/png", "data": "***"}})),
            "gemini-2.5-flash",
            "Base64",
        ),
    ],
)
def test_a_request_google_refuses(request_body: dict[str, Any], model: str, message: str) -> None:
    with pytest.raises(RequestInvalid, match=message):
        check_request(request_body, model)


def test_requests_google_takes() -> None:
    signed = {**CALL, "thoughtSignature": "c2ln"}
    check_request(
        contents(("user", {"text": "w"}), ("model", signed), ("user", ANSWER)), "gemini-3-flash-preview"
    )
    check_request(
        {**HELLO, "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, "gemini-2.5-flash"
    )
    check_request(
        {
            **HELLO,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object"},
            },
        },
        "gemini-2.5-flash",
    )


def test_the_gemini_records_survive_a_restart_of_make_serve(tmp_path: Any) -> None:
    from devserver.persistence import SimulatorSnapshot

    clock = SteppedClock()
    config = SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock, storage_dir=str(tmp_path))
    with Simulator(config) as first:
        name = upload(first, jsonl({"key": "a", "request": HELLO})).json()["file"]["name"]
        batch = create(first, name).json()["name"]
        records = SimulatorSnapshot.capture(first)
    config = SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock, storage_dir=str(tmp_path))
    with Simulator(config) as second:
        SimulatorSnapshot.restore(second, records)
        clock.step(PHASE * 3)
        done = httpx.get(f"{second.gemini_api_base}/v1beta/{batch}", headers=KEY).json()
        assert done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
        source = httpx.get(f"{second.gemini_api_base}/download/v1beta/{name}:download?alt=media", headers=KEY)
        assert json.loads(source.content)["key"] == "a"
        assert create(second, name).json()["name"] != batch  # ids and order go on


def test_a_multipart_upload_is_one_body_of_metadata_then_media(sim: Simulator) -> None:
    media = jsonl({"key": "a", "request": HELLO})
    boundary = "sim-boundary"
    body = (
        (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            '{"file": {"displayName": "multi"}}\r\n'
            f"--{boundary}\r\nContent-Type: application/jsonl\r\n\r\n"
        ).encode()
        + media
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = httpx.post(
        sim.gemini_api_base + "/upload/v1beta/files",
        headers={
            **KEY,
            "X-Goog-Upload-Protocol": "multipart",
            "Content-Type": f"multipart/related; boundary={boundary}",
        },
        content=body,
    )
    file = answer.json()["file"]
    assert (file["displayName"], file["mimeType"], file["sizeBytes"]) == (
        "multi",
        "application/jsonl",
        str(len(media)),
    )
    stored = httpx.get(
        f"{sim.gemini_api_base}/download/v1beta/{file['name']}:download?alt=media", headers=KEY
    )
    assert stored.content == media
    one_part = httpx.post(
        sim.gemini_api_base + "/upload/v1beta/files",
        headers={
            **KEY,
            "X-Goog-Upload-Protocol": "multipart",
            "Content-Type": f"multipart/related; boundary={boundary}",
        },
        content=f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}--\r\n".encode(),
    )
    assert one_part.status_code == 400 and one_part.json()["error"]["status"] == "INVALID_ARGUMENT"
