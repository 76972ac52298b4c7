"""Amazon Bedrock batch inference behind OpenAI's Files and Batches API (`ProviderApi`).

Files are the gateway's own (`kept_files`). A batch is a model invocation job: its records are
written to the bucket's Bedrock input prefix, the job (named and tokened after the gateway's
batch id: a retried create meets the job its first attempt made) reads them with the stack's
service role and writes `<output prefix>/<jobId>/records.jsonl.out` and `manifest.json.out`,
which the first retrieve or list that sees the job finished turns into the OpenAI output and
error files (ids derived from the job: written once, whoever comes first). A note beside each
job keeps the OpenAI fields Bedrock does not hold (input file, endpoint, window, metadata) and
the custom_ids.

boto3's `bedrock` client is made on first use, for the deployment's region; its endpoint comes
from AWS_ENDPOINT_URL_BEDROCK or AWS_ENDPOINT_URL when set (the simulator, LocalStack).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from gateway.errors import (
    ConflictError,
    InvalidRequestError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
)
from gateway.observability import logger
from gateway.observability.provider_calls import TIMEOUT, provider_call
from gateway.providers import batch_results
from gateway.providers.api import ProviderApi, list_page
from gateway.providers.bedrock import jobs as bedrock_jobs
from gateway.providers.bedrock import records as bedrock_records
from gateway.providers.caps import BatchCaps, caps_for
from gateway.providers.config import ProviderDeployment
from gateway.providers.errors import QuotaRefused
from gateway.providers.job_notes import Note
from gateway.providers.kept_file_endpoints import KeptFileEndpoints
from gateway.runtime import resources
from gateway.storage.s3 import is_missing, s3_client

KeySource = Callable[[bool], str | None]  # unused: Bedrock signs with the function's AWS role
RECORDS_FILE = "records.jsonl"
LIST_PAGE_SIZE = 100  # jobs per ListModelInvocationJobs page
RECORDS_PART_BYTES = 8 * 1024 * 1024  # S3's parts are at least 5 MiB, the last excepted
_NOTES_CACHE_SIZE = 1024
_SPOOL_BYTES = 8 * 1024 * 1024


class BedrockClient(KeptFileEndpoints):
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self._timeout = timeout
        self._files = self.files
        self._bucket = self._files.bucket
        self._s3 = s3_client()
        self._client: Any = None
        self._lock = threading.Lock()
        self._notes: dict[str, Note] = {}  # job id -> its note, finished results included

    # Batches ---------------------------------------------------------------------------------
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        endpoint = body.get("endpoint")
        if endpoint != bedrock_records.CHAT_COMPLETIONS:
            raise InvalidRequestError(
                f"Amazon Bedrock batches support the endpoint {bedrock_records.CHAT_COMPLETIONS} only.",
                param="endpoint",
                code="unsupported_endpoint",
            )
        metadata = body.get("metadata") or None
        # the job's name, token, records and note derive from the gateway's id, never the metadata
        token = bedrock_jobs.job_token(gateway_id)
        prefix = self._input_prefix(token)
        collected = bedrock_records.Records()
        with self._files.stream_file_content(str(body["input_file_id"])) as stream:
            translated = bedrock_records.records(
                _lines(stream.iter_bytes()),
                models=self.deployment.models,
                default_max_tokens=self.deployment.default_max_tokens,
                into=collected,
            )
            # Written as translated (bounded memory); a line or limit refused midway leaves an
            # unfinished upload the bucket's lifecycle rule aborts. Written again by a retry.
            self._write_records(prefix + RECORDS_FILE, translated, collected)
        note = Note(
            gateway_batch_id=gateway_id,
            input_file_id=str(body["input_file_id"]),
            endpoint=str(endpoint),
            completion_window=str(body.get("completion_window") or "24h"),
            metadata=metadata,
            created_at=int(time.time()),
            total=len(collected.custom_ids),
        )
        # Written ahead of the job (the records above, the note), each safe to write again.
        self._put_json(self._note_key(token), {**note.as_json(), "custom_ids": collected.custom_ids})
        arn = self._call(
            "create_model_invocation_job",
            jobName=token,
            clientRequestToken=token,
            roleArn=os.environ.get(resources.ENV_BEDROCK_ROLE_ARN, ""),
            modelId=collected.model_id,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": self._uri(prefix + RECORDS_FILE)}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": self._uri(self._output_prefix(token))}},
            timeoutDurationInHours=bedrock_jobs.timeout_hours(note.completion_window),
            tags=[{"key": "gateway_batch_id", "value": note.gateway_batch_id}],
        )["jobArn"]
        return self.retrieve_batch(bedrock_jobs.job_id(arn))

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        return self._batch(self._call("get_model_invocation_job", jobIdentifier=batch_id))

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        """OpenAI's page (newest first, `after` a batch id, `limit`) over Bedrock's pages of the
        gateway's jobs for this deployment."""
        limit = int(query.get("limit") or 20)
        after = query.get("after")
        data: list[dict[str, Any]] = []
        seen_after = after is None
        has_more = False
        request: dict[str, Any] = {
            "nameContains": bedrock_jobs.JOB_NAME_PREFIX,
            "sortBy": "CreationTime",
            "sortOrder": "Descending",
            "maxResults": LIST_PAGE_SIZE,
        }
        while True:
            page = self._call("list_model_invocation_jobs", **request)
            for summary in page.get("invocationJobSummaries") or ():
                if not self._ours(summary):
                    continue
                if not seen_after:
                    seen_after = bedrock_jobs.job_id(str(summary["jobArn"])) == after
                    continue
                if not self._noted(summary):
                    continue  # a job of this deployment that no create of the gateway noted
                if len(data) == limit:
                    has_more = True
                    break
                data.append(self._batch(summary))
            if has_more or not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        return list_page(data, has_more=has_more)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Stops the job; answers `cancelling` as OpenAI does (a job stopped before it ran is
        Stopped at once): its results become files on the next retrieve or list."""
        job = self._call("get_model_invocation_job", jobIdentifier=batch_id)
        if job["status"] in bedrock_jobs.FINISHED:
            status = bedrock_jobs.STATUS[job["status"]]
            raise ConflictError(
                f"Cannot cancel a batch with status '{status}'.",
                param="batch_id",
                code="batch_not_cancellable",
            )
        if job["status"] != "Stopping":
            self._call("stop_model_invocation_job", jobIdentifier=batch_id)
        job_id = bedrock_jobs.job_id(str(job["jobArn"]))
        batch = bedrock_jobs.batch_object({**job, "status": "Stopping"}, self._note(job_id, job))
        batch["cancelling_at"] = int(time.time())
        return batch

    def close(self) -> None:
        self._notes.clear()

    # Caps --------------------------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return caps_for(self.deployment, model)

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """Bedrock refuses a job over its quota at create (ServiceQuotaExceededException,
        `QuotaRefused`); a job it took never ends for quota."""
        return False

    # A job and its note ------------------------------------------------------------------------
    def _batch(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = bedrock_jobs.job_id(str(job["jobArn"]))
        note = self._note(job_id, job)
        if job.get("status") in bedrock_jobs.FINISHED and job.get("status") != "Failed":
            self._finish(job_id, job, note)
        return bedrock_jobs.batch_object(job, note)

    def _noted(self, job: dict[str, Any]) -> bool:
        """Whether the gateway keeps a note of the job (none: not one of its batches; its note
        swept once the create that wrote it gave up, service.kept_sweep)."""
        try:
            self._note(bedrock_jobs.job_id(str(job["jobArn"])), job)
        except UpstreamRequestError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def _ours(self, job: dict[str, Any]) -> bool:
        """A job of this deployment: its input lies under this deployment's prefix."""
        return self._token_of(job) is not None

    def _token_of(self, job: dict[str, Any]) -> str | None:
        uri = str(job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
        head = self._uri(self._input_prefix(""))
        if not uri.startswith(head) or not uri.endswith("/" + RECORDS_FILE):
            return None
        return uri[len(head) :].removesuffix("/" + RECORDS_FILE)

    def _note(self, job_id: str, job: dict[str, Any]) -> Note:
        note = self._notes.get(job_id)
        if note is None:
            token = self._token_of(job)
            raw = None if token is None else self._note_json(self._note_key(token))
            if raw is None:
                raise UpstreamRequestError(
                    404,
                    f"No such Batch object: {job_id}",
                    error_type="invalid_request_error",
                    param="batch_id",
                    code="not_found",
                )
            note = Note.from_json(raw)
            with self._lock:
                if len(self._notes) >= _NOTES_CACHE_SIZE:
                    self._notes.clear()
                self._notes[job_id] = note
        return note

    def _finish(self, job_id: str, job: dict[str, Any], note: Note) -> None:
        """The OpenAI output and error files of a finished job, written once (derived ids,
        conditional writes), then the note that says so: a run interrupted anywhere is finished
        by the next one."""
        if note.results:
            return
        token = self._token_of(job) or ""
        raw = self._get_json(self._note_key(token))
        if "output_file_id" in raw:  # another run finished it
            note.output_file_id, note.error_file_id, note.results = (
                raw["output_file_id"],
                raw["error_file_id"],
                True,
            )
            return
        custom_ids = raw.get("custom_ids") or []
        # Spooled (to /tmp past a few MB, as the Anthropic path does): a large job's results never
        # sit whole in the function's memory.
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as errors,
        ):
            spools = {batch_results.OUTPUT: output, batch_results.ERROR: errors}
            answered = bytearray(len(custom_ids) + 1)  # by record index: one byte per record
            if job.get("processedRecordCount"):  # a job stopped before any record ran writes no file
                base = self._output_prefix(token) + f"{job_id}/"
                for line in self._read_lines(base + RECORDS_FILE + ".out"):
                    index = bedrock_records.record_index(str(line.get("recordId") or ""))
                    outcome = bedrock_records.outcome(
                        line, custom_ids, note.created_at, model_id=str(job.get("modelId") or "")
                    )
                    if outcome is None or index is None:
                        continue
                    answered[index] = 1
                    kind, result = batch_results.result_line(outcome, job_id)
                    spools[kind].write(batch_results.encoded(result))
            if job.get("status") == "Expired":  # a stop's unrun records have no line (OpenAI's rule)
                for index, custom_id in enumerate(custom_ids, 1):
                    if not answered[index]:
                        expired = batch_results.Outcome(custom_id, "expired")
                        errors.write(batch_results.encoded(batch_results.result_line(expired, job_id)[1]))
            output_id = self._results_file(job_id, "output", output)
            error_id = self._results_file(job_id, "error", errors)
        # Last: the note says the files are written (a run that dies before writes them again).
        self._put_json(self._note_key(token), {**raw, "output_file_id": output_id, "error_file_id": error_id})
        note.output_file_id, note.error_file_id, note.results = output_id, error_id, True

    def _results_file(self, job_id: str, kind: str, spool: IO[bytes]) -> str | None:
        return self._files.keep_results(job_id, kind, spool, purpose="batch_output")

    # S3 and Bedrock ----------------------------------------------------------------------------
    def _write_records(self, key: str, records: Iterator[bytes], collected: bedrock_records.Records) -> None:
        """One PutObject when the records fit one part (the minimum checked before writing: a
        file of fewer than 100 records is small), else a multipart upload as they come."""
        from gateway.storage.content_cache import fixed_size_parts

        parts = fixed_size_parts(records, RECORDS_PART_BYTES)
        head = next(parts, b"")
        following = next(parts, None)
        if following is None:
            bedrock_records.check_minimum(len(collected.custom_ids))
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=head)
            return
        upload_id = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key)["UploadId"]
        done: list[dict[str, Any]] = []
        for body in itertools.chain((head, following), parts):
            number = len(done) + 1
            answer = self._s3.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        bedrock_records.check_minimum(len(collected.custom_ids))
        self._s3.complete_multipart_upload(
            Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )

    def _input_prefix(self, token: str) -> str:
        return (
            f"{resources.BEDROCK_INPUT_PREFIX}{self.name}/{token}/"
            if token
            else f"{resources.BEDROCK_INPUT_PREFIX}{self.name}/"
        )

    def _output_prefix(self, token: str) -> str:
        return f"{resources.BEDROCK_OUTPUT_PREFIX}{self.name}/{token}/"

    def _note_key(self, token: str) -> str:
        return f"{resources.KEPT_FILES_PREFIX}{self.name}/bedrock-jobs/{token}/note.json"

    def _uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def _put_json(self, key: str, value: dict[str, Any]) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(value).encode())

    def _get_json(self, key: str) -> dict[str, Any]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        value = json.loads(body)
        return value if isinstance(value, dict) else {}

    def _note_json(self, key: str) -> dict[str, Any] | None:
        """A job's note, None when there is none."""
        try:
            return self._get_json(key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def _read_lines(self, key: str) -> Iterator[dict[str, Any]]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        for raw in body.iter_lines():
            if raw.strip():
                yield json.loads(raw)

    def _bedrock(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    region = (
                        self.deployment.region
                        or os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION")
                    )
                    config = Config(
                        connect_timeout=5, read_timeout=self._timeout, retries={"max_attempts": 2}
                    )
                    self._client = boto3.session.Session().client(
                        "bedrock", region_name=region, config=config
                    )
        return self._client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        with provider_call(self.name, operation) as call:
            try:
                answer: dict[str, Any] = getattr(self._bedrock(), operation)(**params)
            except ClientError as exc:
                call.answered(int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500))
                raise _upstream(exc, self.name) from exc
            except (ReadTimeoutError, ConnectTimeoutError) as exc:
                call.failed(TIMEOUT)
                raise UpstreamError(f"provider '{self.name}' could not be reached") from exc
            except BotoCoreError as exc:
                raise UpstreamError(f"provider '{self.name}' could not be reached") from exc
            call.answered(int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode") or 200))
            return answer


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines of a stream of chunks."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        yield rest


def _upstream(exc: ClientError, provider: str) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or code)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 502)
    logger.warning("provider error", extra={"provider": provider, "status": status, "code": code})
    if code == "ThrottlingException":
        return RateLimitError(f"Amazon Bedrock throttled the request: {message}")
    if code == "ResourceNotFoundException":
        return UpstreamRequestError(404, message, error_type="invalid_request_error", code="not_found")
    if code == "ConflictException":
        return UpstreamRequestError(409, message, error_type="invalid_request_error", code="conflict")
    if code == "ServiceQuotaExceededException":  # as a 400 before; the plan waits and retries it
        return QuotaRefused(400, message, error_type="invalid_request_error", code=code)
    if code == "ValidationException":
        return UpstreamRequestError(400, message, error_type="invalid_request_error", code=code)
    if code == "AccessDeniedException":
        return UpstreamError(
            f"provider '{provider}' denied the request: {message}", code="provider_access_denied"
        )
    return UpstreamError(f"provider '{provider}' answered {status} {code}")


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[ProviderApi] = BedrockClient
