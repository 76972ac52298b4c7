"""The simulator's Amazon Bedrock batch inference API, driven by a plain boto3 `bedrock` client.

Records are read from and results written to S3 on an embedded moto server, as the local
server runs it. Shapes follow botocore's service model (boto3 parses every answer with it). Jobs
move along the simulator's clock, which these tests step (no waiting for a timed state).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver import aws
from devserver.simulator import Simulator, SimulatorConfig, SteppedClock
from devserver.simulator.bedrock_models import family, respond

PHASE = 1.0
STEP = 0.375  # a third of a phase and a bit, exact in binary: no state boundary is met exactly
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
        clock = SteppedClock()
        sim = Simulator(SimulatorConfig(port=0, batch_phase_seconds=PHASE, clock=clock)).start()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        bedrock = boto3.client("bedrock", region_name="us-west-2", endpoint_url=sim.bedrock_endpoint_url)
        try:
            yield {"s3": s3, "bedrock": bedrock, "sim": sim, "clock": clock}
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


def _statuses(bedrock: Any, clock: SteppedClock, arn: str, steps: int, step: float) -> list[str]:
    """The job's status now and after each of `steps` steps of the clock."""
    seen = [bedrock.get_model_invocation_job(jobIdentifier=arn)["status"]]
    for _ in range(steps):
        clock.step(step)
        seen.append(bedrock.get_model_invocation_job(jobIdentifier=arn)["status"])
    return seen


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
    clock = aws_env["clock"]
    seen = _statuses(bedrock, clock, arn, steps=4, step=STEP)
    assert seen == ["Submitted", "Validating", "Scheduled", "InProgress", "InProgress"]
    halfway = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert 0 < halfway["processedRecordCount"] < 101 and "endTime" not in halfway
    clock.step(PHASE)
    job = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == "PartiallyCompleted", job.get("message")  # one record the model refused
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
    assert _statuses(bedrock, aws_env["clock"], arn, steps=2, step=STEP) == [
        "Submitted",
        "Validating",
        "Failed",
    ]
    job = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert "100" in job["message"]


def test_a_stop_midway_keeps_the_records_processed_so_far(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    arn = _create(bedrock, "stop-job", _put_records(s3, "in/stop", [_record(n) for n in range(200)]))
    clock = aws_env["clock"]
    assert _statuses(bedrock, clock, arn, steps=3, step=STEP)[-1] == "InProgress"
    clock.step(STEP)  # half way through InProgress
    bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Stopping"
    clock.step(PHASE / 2)
    job = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == "Stopped"
    assert job["processedRecordCount"] == 100  # half the records, at half the phase
    lines = _output_lines(s3, arn.rsplit("/", 1)[1])
    assert len(lines) == job["processedRecordCount"] == job["successRecordCount"]
    with pytest.raises(ClientError) as late:
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert late.value.response["Error"]["Code"] == "ValidationException"


def test_list_pages_newest_first_and_unknown_jobs_are_404(aws_env: dict[str, Any]) -> None:
    s3, bedrock = aws_env["s3"], aws_env["bedrock"]
    uri = _put_records(s3, "in/list", [_record(n) for n in range(100)])
    arns = []
    for n in range(3):
        aws_env["clock"].step(0.25)  # submitted one after another
        arns.append(_create(bedrock, f"list-job-{n}", uri))
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
    for geo in ("eu", "apac", "global", "us-gov", "jp", "au"):
        assert family(f"{geo}.anthropic.claude-sonnet-4-5-20250929-v1:0") == "anthropic"
    assert family("meta.llama3-1-8b-instruct-v1:0") == "meta"


def _user(content: Any) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }


SONNET_45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
URL_IMAGE = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
BASE64_IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
}
TOOL_TURNS = [
    {"role": "user", "content": "weather?"},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "functions.get_weather:0", "name": "w", "input": {}}],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "functions.get_weather:0", "content": "15"}],
    },
]


@pytest.mark.parametrize(
    ("model", "model_input", "message"),
    [
        (CLAUDE, {**_user("hi"), "stop_sequences": ["\n"]}, "stop_sequences.0"),
        (SONNET_45, {**_user("hi"), "temperature": 0.5, "top_p": 0.9}, "cannot both be specified"),
        (
            "anthropic.claude-opus-4-1-20250805-v1:0",
            {**_user("hi"), "temperature": 0, "top_p": 1},
            "cannot both",
        ),
        (CLAUDE, {**_user("hi"), "messages": TOOL_TURNS}, "messages.1.content.0.id: String should match"),
        (CLAUDE, _user([{"type": "text", "text": ""}]), "messages.0.content.0: text content blocks"),
        (CLAUDE, _user(""), "messages.0: all messages must have non-empty content"),
        (CLAUDE, _user([{"type": "text", "text": "what is this?"}, URL_IMAGE]), "only base64 image sources"),
    ],
)
def test_records_the_real_api_refuses_are_error_records(
    model: str, model_input: dict[str, Any], message: str
) -> None:
    kind, result = respond(model, model_input)
    assert kind == "error" and result["errorCode"] == 400 and message in result["errorMessage"]


def test_records_within_the_rules_are_answered() -> None:
    assert respond(SONNET_45, {**_user("hi"), "temperature": 0.5})[0] == "output"
    assert respond(CLAUDE, {**_user("hi"), "temperature": 0.5, "top_p": 0.9})[0] == "output"  # Claude 3.5
    assert respond(CLAUDE, _user([{"type": "text", "text": "what is this?"}, BASE64_IMAGE]))[0] == "output"
    assert respond(CLAUDE, {**_user("hi"), "stop_sequences": ["END"]})[0] == "output"
