"""The simulator's Bedrock form: per-job caps, the concurrent-jobs quota per model
(ServiceQuotaExceededException), the directives as Bedrock's own record errors and an Expired
job, and the same through the gateway's adapter (QuotaRefused; OpenAI error lines with their
codes). S3 is an embedded moto server; time is the SteppedClock's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway.providers.bedrock.client import BedrockClient
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused
from gateway.runtime import resources
from gateway.storage.s3 import s3_client

from devserver import aws
from devserver.simulator import Simulator, SimulatorConfig, SteppedClock
from devserver.simulator.limits import SimulatorLimits

PHASE = 1.0
BUCKET = "bedrock-limits-test"
ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    moto = aws.start_moto()
    try:
        yield moto.url
    finally:
        moto.stop()


@pytest.fixture
def env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clock = SteppedClock()
    with Simulator(SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock)) as sim:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", sim.bedrock_endpoint_url)
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in s3.list_buckets()["Buckets"]:  # a fresh account per test
            for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
                s3.delete_object(Bucket=bucket["Name"], Key=item["Key"])
            s3.delete_bucket(Bucket=bucket["Name"])
        s3.create_bucket(Bucket=BUCKET)
        bedrock = boto3.client("bedrock", region_name="us-east-1", endpoint_url=sim.bedrock_endpoint_url)
        yield {"s3": s3, "bedrock": bedrock, "sim": sim, "clock": clock}


def _record(n: int, directive: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"question {n} {directive}"}]}],
    }
    return {"recordId": f"R{n:010d}", "modelInput": body}


def _job(env: dict[str, Any], name: str, records: list[dict[str, Any]], model: str = CLAUDE) -> str:
    body = "".join(json.dumps(record) + "\n" for record in records).encode()
    env["s3"].put_object(Bucket=BUCKET, Key=f"in/{name}/records.jsonl", Body=body)
    arn: str = env["bedrock"].create_model_invocation_job(
        jobName=name,
        roleArn=ROLE,
        modelId=model,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/in/{name}/records.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        timeoutDurationInHours=24,
    )["jobArn"]
    return arn


def _status(env: dict[str, Any], arn: str) -> dict[str, Any]:
    job: dict[str, Any] = env["bedrock"].get_model_invocation_job(jobIdentifier=arn)
    return job


def _outputs(env: dict[str, Any], arn: str) -> dict[str, dict[str, Any]]:
    job_id = arn.rsplit("/", 1)[1]
    raw = env["s3"].get_object(Bucket=BUCKET, Key=f"out/{job_id}/records.jsonl.out")["Body"].read()
    return {line["recordId"]: line for line in map(json.loads, raw.splitlines())}


def test_a_job_over_the_record_or_byte_cap_fails(env: dict[str, Any]) -> None:
    env["sim"].set_limits(SimulatorLimits(max_requests=120))
    over = _job(env, "too-many", [_record(n) for n in range(121)])
    fits = _job(env, "fits", [_record(n) for n in range(120)])
    env["clock"].step(PHASE)
    job = _status(env, over)
    assert job["status"] == "Failed" and "more than the maximum of 120 records" in job["message"]
    assert _status(env, fits)["status"] == "InProgress"
    env["sim"].set_limits(SimulatorLimits(max_bytes=1000))
    large = _job(env, "too-large", [_record(n) for n in range(100)])
    env["clock"].step(PHASE)
    assert _status(env, large)["status"] == "Failed"


def test_a_job_under_bedrocks_minimum_of_records_is_created_then_fails_validation(
    env: dict[str, Any],
) -> None:
    """Bedrock's quota "Minimum number of records per batch inference job" (100), checked as the
    job validates its input: the create answers, the job then reads Failed with the reason."""
    short = _job(env, "too-few", [_record(n) for n in range(99)])
    enough = _job(env, "enough", [_record(n) for n in range(100)])
    env["clock"].step(PHASE)
    job = _status(env, short)
    assert job["status"] == "Failed" and "less than the minimum of 100 records" in job["message"]
    assert _status(env, enough)["status"] == "InProgress"


def test_the_concurrent_jobs_quota_refuses_a_create_until_a_job_ends(env: dict[str, Any]) -> None:
    env["sim"].set_limits(SimulatorLimits(concurrent_jobs=2))
    records = [_record(n) for n in range(100)]
    first = _job(env, "one", records)
    _job(env, "two", records)
    with pytest.raises(ClientError) as refused:
        _job(env, "three", records)
    error = refused.value.response
    assert error["Error"]["Code"] == "ServiceQuotaExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "quota of 2" in error["Error"]["Message"]
    _job(env, "other-model", records, model=HAIKU)  # each model has its own quota
    env["clock"].step(2 * PHASE)
    assert _status(env, first)["status"] == "Completed"
    _job(env, "three", records)  # the two ended: room again


def test_directives_in_a_records_prompt_expire_the_job_or_error_a_record_once(env: dict[str, Any]) -> None:
    directives = {1: "sim-expire", 2: "sim-fail-server_error", 3: "sim-fail-rate_limit_exceeded"}
    records = [_record(n, directives.get(n, "")) for n in range(100)]
    first = _job(env, "directed", records)
    env["clock"].step(2 * PHASE)
    job = _status(env, first)
    assert job["status"] == "Expired"
    assert (job["totalRecordCount"], job["processedRecordCount"], job["errorRecordCount"]) == (100, 99, 2)
    lines = _outputs(env, first)
    assert "R0000000001" not in lines  # never run
    assert lines["R0000000002"]["error"]["errorCode"] == 500 and "modelOutput" not in lines["R0000000002"]
    assert lines["R0000000003"]["error"]["errorCode"] == 429
    again = _job(env, "directed-again", records)
    env["clock"].step(2 * PHASE)
    assert _status(env, again)["status"] == "Completed"
    assert all("modelOutput" in line for line in _outputs(env, again).values())


# Through the gateway's adapter ---------------------------------------------------------------


@pytest.fixture
def adapter(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockClient]:
    monkeypatch.setenv(resources.ENV_BEDROCK_ROLE_ARN, ROLE)
    s3_client.cache_clear()
    env["s3"].create_bucket(Bucket=resources.DEFAULT_BUCKET_NAME)
    deployment = ProviderDeployment(name="bedrock", type="bedrock", region="us-east-1")
    yield BedrockClient(deployment, lambda refresh: None, timeout=5)
    s3_client.cache_clear()


def _gateway_batch(client: BedrockClient, gateway_id: str, directives: dict[int, str]) -> dict[str, Any]:
    content = b"".join(
        json.dumps(
            {
                "custom_id": f"line-{n}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": CLAUDE,
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": f"q {n} {directives.get(n, '')}"}],
                },
            }
        ).encode()
        + b"\n"
        for n in range(100)
    )
    uploaded = client.create_file(filename="in.jsonl", content=content, purpose="batch")
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    return client.create_batch(body, gateway_id=gateway_id)


def test_the_adapter_raises_quota_refused_and_translates_directed_records(
    env: dict[str, Any], adapter: BedrockClient
) -> None:
    env["sim"].set_limits(SimulatorLimits(concurrent_jobs=1))
    directives = {0: "sim-expire", 1: "sim-fail-server_error", 2: "sim-fail-rate_limit_exceeded"}
    batch = _gateway_batch(adapter, "batch_first", directives)
    with pytest.raises(QuotaRefused) as refused:
        _gateway_batch(adapter, "batch_second", {})
    assert refused.value.status_code == 400 and refused.value.code == "ServiceQuotaExceededException"
    assert not adapter.quota_refused(batch)

    env["clock"].step(2 * PHASE)
    ended = adapter.retrieve_batch(batch["id"])
    assert ended["status"] == "expired"
    assert ended["request_counts"] == {"total": 100, "completed": 97, "failed": 3}
    lines = adapter.file_content(ended["error_file_id"]).decode().splitlines()
    errors = {line["custom_id"]: line for line in map(json.loads, lines)}
    assert errors["line-0"]["error"]["code"] == "batch_expired"
    assert errors["line-1"]["response"]["status_code"] == 500
    assert errors["line-1"]["response"]["body"]["error"]["code"] == "server_error"
    assert errors["line-2"]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"
    retried = _gateway_batch(adapter, "batch_retry", directives)  # the job ended: room again
    env["clock"].step(2 * PHASE)
    done = adapter.retrieve_batch(retried["id"])
    assert done["status"] == "completed" and done["request_counts"]["failed"] == 0
