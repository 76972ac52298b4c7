"""Amazon Bedrock batch inference (model invocation jobs): the control plane's REST API.

Paths, fields, status names and error shapes follow botocore's service model for `bedrock`
(CreateModelInvocationJob, GetModelInvocationJob, ListModelInvocationJobs,
StopModelInvocationJob), so a plain boto3 `bedrock` client pointed here works unchanged. The
job reads its JSONL records `{"recordId", "modelInput"}` from S3 (whatever endpoint boto3 is
pointed at: the local moto server) and writes `<output uri>/<jobId>/<file>.out` and
`manifest.json.out` back, as Bedrock does. A job moves along Submitted, Validating, Scheduled,
InProgress (records processed over one batch phase) to Completed; a stop while in progress
keeps the records processed so far (Stopping, then Stopped).

Limits and test directives (`limits`): a job over the records or bytes per job ends Failed; a
create past the concurrent-jobs quota of its model (Submitted to Stopping) raises
ServiceQuotaExceededException (HTTP 400); `sim-expire` / `sim-fail-<code>` in the text of a
record's messages (a record has no custom_id) leave that record unprocessed, the job ending
Expired, or give it an `error` with that status, on that prompt's first attempt.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .limits import Directive, FirstAttempts, SimulatorLimits

MIN_RECORDS = 100
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
_JOB_NAME = re.compile(r"^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}$")
_TOKEN = re.compile(r"^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$")
_JOB_IDENTIFIER = re.compile(
    r"^(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job/)?([a-z0-9]{12})$"
)
_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/bedrock/")
_STOPPABLE = frozenset({"Submitted", "Validating", "Scheduled", "InProgress"})
_FINISHED = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
_RUNNING = frozenset({"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"})

# (model id, modelInput) -> ("output", modelOutput) or ("error", {"errorCode", "errorMessage"})
Responder = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]


class BedrockError(Exception):
    """An AWS rest-json error: `x-amzn-ErrorType` names the shape, the body carries `message`."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


def validation(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def constraint(member: str, rule: str) -> BedrockError:
    """Bedrock's wording for a request field that breaks the service model."""
    detail = f"Value at '{member}' failed to satisfy constraint: {rule}"
    return validation(f"1 validation error detected: {detail}")


@dataclass
class Job:
    job_id: str
    arn: str
    name: str
    model_id: str
    role_arn: str
    token: str | None
    input_uri: str
    output_uri: str
    timeout_hours: int
    tags: list[dict[str, str]]
    submitted: float
    status: str = "Submitted"
    message: str | None = None
    modified: float = 0.0
    ended: float | None = None
    in_progress_start: float | None = None
    stopping_start: float | None = None
    stop_count: int = 0
    records: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (recordId, input, file)
    total: int | None = None
    processed: int = 0
    succeeded: int = 0
    errored: int = 0
    directives: dict[int, Directive] = field(default_factory=dict)  # record index -> directive

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "modelId": self.model_id,
            "roleArn": self.role_arn,
            "status": self.status,
            "submitTime": _iso(self.submitted),
            "lastModifiedTime": _iso(self.modified or self.submitted),
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": self.input_uri, "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": self.output_uri}},
            "timeoutDurationInHours": self.timeout_hours,
            "jobExpirationTime": _iso(self.submitted + self.timeout_hours * 3600),
        }
        if self.token:
            body["clientRequestToken"] = self.token
        if self.message:
            body["message"] = self.message
        if self.ended is not None:
            body["endTime"] = _iso(self.ended)
        if self.total is not None:
            body.update(
                totalRecordCount=self.total,
                processedRecordCount=self.processed,
                successRecordCount=self.succeeded,
                errorRecordCount=self.errored,
            )
        return body


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(raw: str) -> float:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise validation(f"Invalid timestamp '{raw}'.") from None


def _split_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise validation(f"Invalid S3 URI: {uri}")
    return parts.netloc, parts.path.lstrip("/")


class BedrockJobs:
    """Every model invocation job, under one lock; S3 is read and written through `s3()`."""

    def __init__(
        self,
        phase: Callable[[], float],
        s3: Callable[[], Any],
        responder: Responder,
        clock: Callable[[], float] = time.time,
        limits: Callable[[], SimulatorLimits] = SimulatorLimits,
        first_attempts: FirstAttempts | None = None,
    ) -> None:
        self._phase = phase
        self.clock = clock
        self._limits = limits
        self.first_attempts = first_attempts or FirstAttempts()
        self._s3_factory = s3
        self._s3_client: Any = None
        self._respond = responder
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.by_token: dict[str, str] = {}

    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.by_token.clear()

    # ------------------------------------------------------------------ operations

    def create(self, body: dict[str, Any], authorization: str | None) -> dict[str, Any]:
        for name in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
            if not body.get(name):
                raise constraint(name, "Member must not be null")
        name = str(body["jobName"])
        if not _JOB_NAME.match(name):
            raise constraint("jobName", "Member must satisfy regular expression pattern")
        token = body.get("clientRequestToken")
        if token is not None and not _TOKEN.match(str(token)):
            raise constraint("clientRequestToken", "Member must satisfy regular expression pattern")
        hours = int(body.get("timeoutDurationInHours") or 168)
        if not 24 <= hours <= 168:
            raise constraint("timeoutDurationInHours", "Member must have value between 24 and 168")
        input_uri = ((body["inputDataConfig"] or {}).get("s3InputDataConfig") or {}).get("s3Uri")
        output_uri = ((body["outputDataConfig"] or {}).get("s3OutputDataConfig") or {}).get("s3Uri")
        if not input_uri or not output_uri:
            raise constraint("inputDataConfig/outputDataConfig", "an S3 URI is required")
        _split_s3_uri(input_uri)
        _split_s3_uri(output_uri)
        with self.lock:
            if token and token in self.by_token:
                # The idempotency token: the same request again answers the job it made.
                return {"jobArn": self.jobs[self.by_token[token]].arn}
            if any(job.name == name for job in self.jobs.values()):
                raise BedrockError(
                    400, "ConflictException", f"A model invocation job with name {name} already exists."
                )
            now = self.clock()
            self._check_quota(str(body["modelId"]), now)
            job_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
            region = _region(authorization)
            job = Job(
                job_id=job_id,
                arn=f"arn:aws:bedrock:{region}:{ACCOUNT_ID}:model-invocation-job/{job_id}",
                name=name,
                model_id=str(body["modelId"]),
                role_arn=str(body["roleArn"]),
                token=token,
                input_uri=input_uri,
                output_uri=output_uri,
                timeout_hours=hours,
                tags=list(body.get("tags") or []),
                submitted=now,
                modified=now,
            )
            self.jobs[job_id] = job
            if token:
                self.by_token[token] = job_id
            return {"jobArn": job.arn}

    def get(self, identifier: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(identifier)
            self._refresh(job, self.clock())
            return job.to_api()

    def list(self, query: dict[str, str]) -> dict[str, Any]:
        raw_max = query.get("maxResults", "1000")
        try:
            max_results = int(raw_max)
        except ValueError:
            raise validation(f"Invalid maxResults '{raw_max}'.") from None
        if not 1 <= max_results <= 1000:
            raise constraint("maxResults", "Member must have value between 1 and 1000")
        descending = query.get("sortOrder", "Descending") == "Descending"
        now = self.clock()
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: (j.submitted, j.job_id), reverse=descending)
            for job in jobs:
                self._refresh(job, now)
            if status := query.get("statusEquals"):
                jobs = [j for j in jobs if j.status == status]
            if contains := query.get("nameContains"):
                jobs = [j for j in jobs if contains in j.name]
            if after := query.get("submitTimeAfter"):
                jobs = [j for j in jobs if j.submitted > _parse_time(after)]
            if before := query.get("submitTimeBefore"):
                jobs = [j for j in jobs if j.submitted < _parse_time(before)]
            start = 0
            if token := query.get("nextToken"):
                ids = [j.job_id for j in jobs]
                if token not in ids:
                    raise validation("Invalid pagination token.")
                start = ids.index(token)
            page = jobs[start : start + max_results]
            body: dict[str, Any] = {"invocationJobSummaries": [j.to_api() for j in page]}
            if start + max_results < len(jobs):
                body["nextToken"] = jobs[start + max_results].job_id
            return body

    def stop(self, identifier: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(identifier)
            now = self.clock()
            self._refresh(job, now)
            if job.status not in _STOPPABLE:
                raise validation(f"The model invocation job cannot be stopped: its status is {job.status}.")
            if job.status == "InProgress":
                job.stop_count = self._done_by(job, now)
                job.status = "Stopping"
                job.stopping_start = now
            else:
                job.stop_count = 0
                self._end(job, "Stopped", now)
            job.modified = now
            return {}

    def _check_quota(self, model_id: str, now: float) -> None:
        """Submitted and in-progress jobs of one model are capped (the lock is held)."""
        quota = self._limits().concurrent_jobs
        if quota is None:
            return
        running = 0
        for job in self.jobs.values():
            if job.model_id == model_id:
                self._refresh(job, now)
                running += job.status in _RUNNING
        if running >= quota:
            raise BedrockError(
                400,
                "ServiceQuotaExceededException",
                f"The number of submitted and in-progress batch inference jobs for model {model_id} has "
                f"reached your account's quota of {quota}. Wait for a job to end, or request a quota "
                "increase.",
            )

    # ------------------------------------------------------------------ timeline

    def _job(self, identifier: str) -> Job:
        match = _JOB_IDENTIFIER.match(identifier)
        if not match:
            raise constraint("jobIdentifier", "Member must satisfy regular expression pattern")
        job = self.jobs.get(match.group(3))
        if job is None:
            raise BedrockError(
                404, "ResourceNotFoundException", f"The specified job {identifier} could not be found."
            )
        return job

    def _done_by(self, job: Job, now: float) -> int:
        assert job.in_progress_start is not None and job.total is not None
        p = self._phase()
        frac = (now - job.in_progress_start) / p if p > 0 else 1.0
        return max(0, min(job.total, math.floor(frac * job.total)))

    def _refresh(self, job: Job, now: float) -> None:
        """Move the job along its timeline up to `now` (the lock is held)."""
        p = self._phase()
        start = job.submitted
        if (
            job.status not in _FINISHED
            and job.status != "Stopping"
            and now >= start + job.timeout_hours * 3600
        ):
            self._end(job, "Expired", now, job.processed)
            return
        if job.status == "Submitted" and now >= start + p / 3:
            job.status, job.modified = "Validating", start + p / 3
        if job.status == "Validating" and now >= start + 2 * p / 3:
            if not self._load(job):
                return
            job.status, job.modified = "Scheduled", start + 2 * p / 3
        if job.status == "Scheduled" and now >= start + p:
            job.status, job.modified = "InProgress", start + p
            job.in_progress_start = start + p
        if job.status == "InProgress":
            assert job.total is not None
            done = self._done_by(job, now)
            if done < job.total:
                job.processed = done
                return
            # a record a test directive expires is left unrun: the job ends as a timed-out one does
            expired = any(directive.kind == "expire" for directive in job.directives.values())
            self._end(job, "Expired" if expired else "Completed", start + 2 * p, job.total)
        if job.status == "Stopping" and job.stopping_start is not None and now >= job.stopping_start + p / 2:
            self._end(job, "Stopped", job.stopping_start + p / 2, job.stop_count)

    def _load(self, job: Job) -> bool:
        """Validation: read the input records; a job without enough of them fails."""
        bucket, prefix = _split_s3_uri(job.input_uri)
        client = self._s3()
        keys: list[str] = []
        if prefix.endswith(".jsonl"):
            keys = [prefix]
        else:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [
                o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")
            ]
        records: list[tuple[str, dict[str, Any], str]] = []
        size = 0
        try:
            for key in keys:
                raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                size += len(raw)
                text = raw.decode()
                for number, line in enumerate(text.splitlines(), 1):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("modelInput"), dict):
                        raise ValueError(f"line {number} of {key} has no modelInput object")
                    record_id = str(record.get("recordId") or f"{len(records) + 1:011d}")
                    records.append((record_id, record["modelInput"], key.rsplit("/", 1)[-1]))
        except (ValueError, UnicodeDecodeError) as exc:
            self._fail(job, f"Invalid input: {exc}")
            return False
        except Exception as exc:  # S3's errors end the job, as Bedrock reports them
            self._fail(job, f"Unable to read the input data from {job.input_uri}: {exc}")
            return False
        if len(records) < MIN_RECORDS:
            self._fail(
                job,
                f"The number of records in the input data ({len(records)}) is less than the minimum "
                f"of {MIN_RECORDS} records required for a batch inference job.",
            )
            return False
        limits = self._limits()
        if len(records) > limits.requests_for("bedrock"):
            self._fail(
                job,
                f"The number of records in the input data ({len(records)}) is more than the maximum of "
                f"{limits.requests_for('bedrock')} records per batch inference job.",
            )
            return False
        if size > limits.bytes_for("bedrock"):
            self._fail(
                job,
                f"The input data ({size} bytes) is larger than the maximum of {limits.bytes_for('bedrock')} "
                "bytes per batch inference job.",
            )
            return False
        job.records = records
        job.total = len(records)
        for index, (_, model_input, _) in enumerate(records):
            if directive := self.first_attempts.take("bedrock", _prompt(model_input)):
                job.directives[index] = directive
        return True

    def _fail(self, job: Job, message: str) -> None:
        job.status, job.message = "Failed", message
        job.modified = job.ended = self.clock()

    def _end(self, job: Job, status: str, at: float, count: int = 0) -> None:
        """Write the outputs of the first `count` records and the manifest; the job is over."""
        if job.total is not None:
            self._write_outputs(job, count)
        if status == "Completed" and job.errored:
            status = "PartiallyCompleted"
        job.status = status
        job.modified = job.ended = at

    def _write_outputs(self, job: Job, count: int) -> None:
        bucket, prefix = _split_s3_uri(job.output_uri)
        base = f"{prefix.rstrip('/')}/{job.job_id}/" if prefix.strip("/") else f"{job.job_id}/"
        lines: dict[str, list[str]] = {}
        input_tokens = output_tokens = 0
        job.succeeded = job.errored = 0
        processed = 0
        for index, (record_id, model_input, source) in enumerate(job.records[:count]):
            directive = job.directives.get(index)
            if directive is not None and directive.kind == "expire":
                continue  # never run: no output line
            processed += 1
            kind: str
            result: dict[str, Any]
            if directive is not None:
                kind, result = "error", {"errorCode": directive.status, "errorMessage": directive.message}
            else:
                kind, result = self._respond(job.model_id, model_input)
            line: dict[str, Any] = {"recordId": record_id, "modelInput": model_input}
            if kind == "output":
                line["modelOutput"] = result
                counted = _token_counts(result)
                input_tokens += counted[0]
                output_tokens += counted[1]
                job.succeeded += 1
            else:
                line["error"] = result
                job.errored += 1
            lines.setdefault(source, []).append(json.dumps(line))
        client = self._s3()
        for source in {source for _, _, source in job.records}:
            content = "".join(text + "\n" for text in lines.get(source, []))
            client.put_object(Bucket=bucket, Key=f"{base}{source}.out", Body=content.encode())
        job.processed = processed
        manifest = {
            "totalRecordCount": job.total,
            "processedRecordCount": processed,
            "successRecordCount": job.succeeded,
            "errorRecordCount": job.errored,
            "inputTokenCount": input_tokens,
            "outputTokenCount": output_tokens,
        }
        client.put_object(Bucket=bucket, Key=f"{base}manifest.json.out", Body=json.dumps(manifest).encode())


def _token_counts(output: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of a model's answer, in each family's shape (Claude's and
    gpt-oss's `usage`, Nova's `usage` in camelCase, Llama's `…_token_count`)."""
    usage = output.get("usage") if isinstance(output.get("usage"), dict) else {}
    pairs = (
        ("input_tokens", "output_tokens"),
        ("inputTokens", "outputTokens"),
        ("prompt_tokens", "completion_tokens"),
    )
    for source, (given, made) in [(usage, pair) for pair in pairs] + [
        (output, ("prompt_token_count", "generation_token_count"))
    ]:
        if given in source:
            return int(source.get(given) or 0), int(source.get(made) or 0)
    return 0, 0


def _prompt(model_input: dict[str, Any]) -> str:
    """The text of a record's messages (Llama's: its prompt): where the Bedrock form reads a
    test directive."""
    texts: list[str] = [model_input["prompt"]] if isinstance(model_input.get("prompt"), str) else []
    for message in model_input.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                texts.append(block["text"])
    return "\n".join(texts)


def _region(authorization: str | None) -> str:
    """The region the client signed for (SigV4's credential scope)."""
    match = _CREDENTIAL_REGION.search(authorization or "")
    return match.group(1) if match else DEFAULT_REGION
