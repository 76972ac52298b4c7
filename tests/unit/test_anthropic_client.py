"""The Anthropic adapter against the simulator: its headers, a rotated key, errors mapped."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from gateway.errors import UpstreamError, UpstreamRequestError
from gateway.providers.anthropic.client import AnthropicClient
from gateway.providers.config import ProviderDeployment
from gateway.runtime import resources

from devserver.simulator import Simulator, SimulatorConfig

LINE = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(port=0, batch_phase_seconds=0.2, anthropic_key="right-key")) as running:
        yield running


def adapter(sim: Simulator, keys: list[str]) -> AnthropicClient:
    deployment = ProviderDeployment(name="anthropic", type="anthropic", api_base=sim.anthropic_api_base)
    served: list[bool] = []

    def key_source(refresh: bool) -> str:
        served.append(refresh)
        return keys[min(len(served), len(keys)) - 1]

    return AnthropicClient(deployment, key_source, timeout=5)


def test_a_rotated_key_is_read_again_and_the_body_sent_again(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim, ["old-key", "right-key"])
    uploaded = client.create_file(
        filename="in.jsonl", content=json.dumps(LINE).encode() + b"\n", purpose="batch"
    )
    batch = client.create_batch(
        {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"},
        gateway_id="batch_rotated",
    )
    assert batch["status"] == "in_progress" and batch["request_counts"]["total"] == 1
    [sent] = sim.state.anthropic.batches.values()
    assert sent.requests[0]["params"]["max_tokens"] == 4096  # the deployment's default


def test_errors_are_the_gateways(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim, ["right-key"])
    with pytest.raises(UpstreamRequestError) as missing:
        client.retrieve_batch("msgbatch_nope")
    assert missing.value.status_code == 404 and missing.value.error_type == "not_found_error"
    wrong = adapter(sim, ["wrong-key"])
    with pytest.raises(UpstreamError) as rejected:
        wrong.list_batches(limit=10)
    assert rejected.value.code == "upstream_authentication_failed"
    keyless = adapter(sim, [""])
    with pytest.raises(UpstreamError) as unconfigured:
        keyless.list_batches(limit=10)
    assert unconfigured.value.code == "provider_not_configured"


def test_the_pending_note_is_named_after_the_gateway_id_never_the_metadata(
    sim: Simulator, kept_bucket: None
) -> None:
    """A create whose POST failed leaves its note ahead under the gateway's own batch id; a
    client's metadata naming another batch names nothing (that batch's note is untouched)."""
    client = adapter(sim, ["right-key"])
    uploaded = client.create_file(
        filename="in.jsonl", content=json.dumps(LINE).encode() + b"\n", purpose="batch"
    )
    victims = {"metadata": {"owner": "victim"}, "total": 9, "attempted_at": 1}
    client.notes.put_pending("batch_victim", victims)
    sim.add_fault(status=500, method="POST", path_contains="/v1/messages/batches")
    body = {
        "input_file_id": uploaded["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"gateway_batch_id": "batch_victim"},
    }
    with pytest.raises(UpstreamError):
        client.create_batch(body, gateway_id="batch_own")
    sim.clear_faults()
    s3 = boto3.client("s3")
    names = [
        item["Key"].removeprefix(client.notes.pending_prefix)
        for item in s3.list_objects_v2(Bucket=client.notes.bucket, Prefix=client.notes.pending_prefix)[
            "Contents"
        ]
    ]
    assert sorted(names) == ["batch_own.json", "batch_victim.json"]
    victim_note = s3.get_object(
        Bucket=client.notes.bucket, Key=client.notes.pending_prefix + "batch_victim.json"
    )
    assert json.loads(victim_note["Body"].read()) == victims


def _nothing_written(sim: Simulator) -> bool:
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.DEFAULT_BUCKET_NAME, Prefix="kept-files/")
    notes = [item["Key"] for item in listed.get("Contents", []) if "/batch-" in item["Key"]]
    return not notes and not sim.state.anthropic.batches


def test_an_input_file_of_another_purpose_is_a_400_before_anything_is_written(
    sim: Simulator, kept_bucket: None
) -> None:
    client = adapter(sim, ["right-key"])
    other = client.create_file(filename="notes.txt", content=b"not json at all\n", purpose="assistants")
    with pytest.raises(UpstreamRequestError) as refused:
        client.create_batch(
            {"input_file_id": other["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            gateway_id="batch_other_purpose",
        )
    assert refused.value.status_code == 400 and refused.value.param == "input_file_id"
    assert refused.value.code == "invalid_file_purpose"
    assert "must be uploaded with purpose 'batch', not 'assistants'" in refused.value.message
    assert _nothing_written(sim)


def test_a_line_that_is_not_a_request_is_a_400_naming_it(sim: Simulator, kept_bucket: None) -> None:
    client = adapter(sim, ["right-key"])
    content = json.dumps(LINE).encode() + b"\n" + b'{"test": "data"}\n'
    uploaded = client.create_file(filename="in.jsonl", content=content, purpose="batch")
    with pytest.raises(UpstreamRequestError) as refused:
        client.create_batch(
            {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            gateway_id="batch_not_a_request",
        )
    assert refused.value.status_code == 400 and refused.value.message.startswith("line 2: ")
    assert _nothing_written(sim)
