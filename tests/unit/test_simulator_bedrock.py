"""The simulator's Amazon Bedrock batch inference API, driven by a plain boto3 `bedrock` client.

Records are read from and results written to S3 on an embedded moto server, as the local
server runs it. Shapes follow botocore's service model (boto3 parses every answer with it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver import aws
from devserver.simulator import Simulator, SimulatorConfig
from devserver.simulator.bedrock_models import family

PHASE = 1.0
BUCKET = "bedrock-sim-test"
ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def aws_env() -> Iterator[dict[str, Any]]:
    moto = aws.start_moto()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_S3", moto.url)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        sim = Simulator(SimulatorConfig(port=0, batch_phase_seconds=PHASE)).start()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        bedrock = boto3.client("bedrock", region_name="us-west-2", endpoint_url=sim.bedrock_endpoint_url)
        try:
            yield {"s3": s3, "bedrock": bedrock, "sim": sim}
        finally:
            sim.stop()
            moto.stop()


def _record(n: int, **extra: Any) -> dict[str, Any]:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"question {n}"}],
        **extra,
    }
    return {"recordId": f"REC{n:08d}", "modelInput": body}


def _put_records(s3: Any, prefix: str, records: list[dict[str, Any]]) -> str:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/records.jsonl", Body=body)
    return f"s3://{BUCKET}/{prefix}/"


def _create(bedrock: Any, name: str, input_uri: str, **extra: Any) -> str:
    return bedrock.create_model_invocation_job(
        jobName=name,
        roleArn=ROLE,
        modelId=CLAUDE,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        timeoutDurationInHours=24,
        **extra,
    )["jobArn"]


def _wait(bedrock: Any, arn: str, statuses: set[str], timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        job = bedrock.get_model_invocation_job(jobIdentifier=arn)
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in statuses:
            job["seen"] = seen
            return job
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)


def _output_lines(s3: Any, job_id: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=f"out/{job_id}/records.jsonl.out")["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_a_job_runs_to_completed_and_writes_outputs_and_manifest(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    records = [_record(n) for n in range(100)] + [_record(100, anthropic_version="bedrock-2099-01-01")]
    arn = _create(
        bedrock, "complete-job", _put_records(s3, "in/complete", records), tags=[{"key": "k", "value": "v"}]
    )
    assert arn.startswith("arn:aws:bedrock:us-west-2:123456789012:model-invocation-job/")
    job = _wait(bedrock, arn, {"Completed", "PartiallyCompleted", "Failed"})
    assert job["status"] == "PartiallyCompleted", job.get("message")  # one record the model refused
    assert job["seen"][-2] == "InProgress" and job["seen"][0] in ("Submitted", "Validating", "Scheduled")
    assert (job["totalRecordCount"], job["processedRecordCount"]) == (101, 101)
    assert (job["successRecordCount"], job["errorRecordCount"]) == (100, 1)
    assert job["endTime"] >= job["submitTime"]
    job_id = arn.rsplit("/", 1)[1]
    lines = _output_lines(s3, job_id)
    assert [line["recordId"] for line in lines] == [r["recordId"] for r in records]
    first = lines[0]
    assert first["modelInput"] == records[0]["modelInput"]
    assert first["modelOutput"]["type"] == "message" and first["modelOutput"]["usage"]["input_tokens"] > 0
    assert lines[-1]["error"]["errorCode"] == 400 and "modelOutput" not in lines[-1]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"out/{job_id}/manifest.json.out")["Body"].read())
    assert manifest["totalRecordCount"] == 101 and manifest["successRecordCount"] == 100
    assert manifest["errorRecordCount"] == 1 and manifest["inputTokenCount"] > 0


def test_the_same_client_request_token_answers_the_same_job(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    uri = _put_records(s3, "in/token", [_record(n) for n in range(100)])
    first = _create(bedrock, "token-job", uri, clientRequestToken="gw-batch-abc")
    again = _create(bedrock, "token-job", uri, clientRequestToken="gw-batch-abc")
    assert first == again
    with pytest.raises(ClientError) as conflict:
        _create(bedrock, "token-job", uri, clientRequestToken="another-token")
    assert conflict.value.response["Error"]["Code"] == "ConflictException"


def test_fewer_than_100_records_fail_the_job(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    arn = _create(bedrock, "small-job", _put_records(s3, "in/small", [_record(n) for n in range(99)]))
    job = _wait(bedrock, arn, {"Failed", "Completed"})
    assert job["status"] == "Failed" and "100" in job["message"]


def test_a_stop_midway_keeps_the_records_processed_so_far(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    arn = _create(bedrock, "stop-job", _put_records(s3, "in/stop", [_record(n) for n in range(200)]))
    _wait(bedrock, arn, {"InProgress"})
    time.sleep(PHASE / 2)
    bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Stopping"
    job = _wait(bedrock, arn, {"Stopped"})
    assert 0 < job["processedRecordCount"] < 200
    lines = _output_lines(s3, arn.rsplit("/", 1)[1])
    assert len(lines) == job["processedRecordCount"] == job["successRecordCount"]
    with pytest.raises(ClientError) as late:
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert late.value.response["Error"]["Code"] == "ValidationException"


def test_list_pages_newest_first_and_unknown_jobs_are_404(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    uri = _put_records(s3, "in/list", [_record(n) for n in range(100)])
    arns = [_create(bedrock, f"list-job-{n}", uri) for n in range(3)]
    pages = bedrock.get_paginator("list_model_invocation_jobs").paginate(
        nameContains="list-job-", PaginationConfig={"PageSize": 2}
    )
    listed = [[s["jobArn"] for s in page["invocationJobSummaries"]] for page in pages]
    assert listed == [[arns[2], arns[1]], [arns[0]]]
    with pytest.raises(ClientError) as missing:
        bedrock.get_model_invocation_job(jobIdentifier="abcdefabcdef")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_model_families() -> None:
    assert family(CLAUDE) == "anthropic"
    assert family("us.anthropic.claude-3-5-haiku-20241022-v1:0") == "anthropic"
    assert family("meta.llama3-1-8b-instruct-v1:0") == "meta"
