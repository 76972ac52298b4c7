"""Vertex AI batch prediction (Gemini, Claude) behind OpenAI's Files and Batches API (`ProviderApi`).

Files are the gateway's own (`kept_files`). A batch is a batch prediction job: at create its
rows (`vertex.records`) are written to `gs://<gcs_bucket>/<gcs_prefix><deployment>/<token>/input.jsonl`,
a note beside the kept files holds the OpenAI fields Vertex does not (input file, endpoint,
metadata, the custom_ids by line), then the job is created with the labels `gateway_batch:
<token>` and `gateway_deployment: <name>` (the token derives from the gateway's batch id): a
create retried after any step finds the job its first attempt made by that label and answers
it, and the rows and the note are written again identically. The first retrieve or list that
sees the job finished reads `predictions.jsonl` from the job's output directory into the OpenAI
output and error files (ids derived from the job: written once, whoever comes first), then
deletes the job's folder in the bucket (the prompts and answers are the gateway's from then on).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gateway.errors import ConflictError, GatewayError, InvalidRequestError, UpstreamRequestError
from gateway.formats.jsonl import split_lines
from gateway.observability import logger
from gateway.providers import batch_results
from gateway.providers.api import ProviderApi, list_page
from gateway.providers.caps import BatchCaps, caps_for
from gateway.providers.config import ProviderDeployment
from gateway.providers.kept_file_endpoints import KeptFileEndpoints
from gateway.providers.vertex import jobs as vertex_jobs
from gateway.providers.vertex import records as vertex_records
from gateway.providers.vertex.google_cloud import GoogleCloud
from gateway.providers.vertex.jobs import Note
from gateway.runtime import resources
from gateway.storage.s3 import is_missing, s3_client

KeySource = Callable[[bool], str | None]
INPUT_FILE = "input.jsonl"
OUTPUT_FOLDER = "output"
DEPLOYMENT_LABEL = "gateway_deployment"
_NOTES_CACHE_SIZE = 1024
_SPOOL_BYTES = 8 * 1024 * 1024
_FOLDER_GONE = "folder_deleted"  # the note's mark: the job's folder in the bucket is deleted


class VertexClient(KeptFileEndpoints):
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self._files = self.files
        self._s3 = s3_client()
        self._google = GoogleCloud(deployment, key_source, timeout)
        self._lock = threading.Lock()
        self._notes: dict[str, Note] = {}  # job id -> its note
        self._folders_gone: set[str] = set()  # jobs whose folder in the bucket is deleted

    # Batches ---------------------------------------------------------------------------------
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        endpoint = body.get("endpoint")
        if endpoint != vertex_records.CHAT_COMPLETIONS:
            raise InvalidRequestError(
                f"Vertex AI batches support the endpoint {vertex_records.CHAT_COMPLETIONS} only.",
                param="endpoint",
                code="unsupported_endpoint",
            )
        # every name derives from the gateway's id, never from anything the client sent
        token = vertex_jobs.job_token(gateway_id)
        made = self._job_of(token)
        if made is not None:  # an earlier attempt of this create made the job
            return self._batch(made)
        collected = vertex_records.Rows()
        input_name = self._folder(token) + INPUT_FILE
        with self._files.stream_file_content(str(body["input_file_id"])) as stream:
            rows = vertex_records.rows(
                split_lines(stream.iter_bytes()),
                models=self.deployment.models,
                default_max_tokens=self.deployment.default_max_tokens,
                into=collected,
            )
            # Written as translated, one part in memory at a time; a line or limit refused midway
            # leaves an upload never committed. The same rows again on a retry.
            self._google.upload_parts(input_name, rows)
        note = Note(
            gateway_batch_id=gateway_id,
            input_file_id=str(body["input_file_id"]),
            endpoint=str(endpoint),
            completion_window=str(body.get("completion_window") or vertex_jobs.WINDOW),
            metadata=body.get("metadata") or None,
            created_at=int(time.time()),
            total=len(collected.custom_ids),
        )
        self._put_json(
            self._note_key(token),
            {**note.as_json(), "model": collected.model, "custom_ids": collected.custom_ids},
        )
        bucket_uri = f"gs://{self._google.bucket}/"
        job = self._google.create_job(
            {
                "displayName": vertex_jobs.DISPLAY_NAME_PREFIX + gateway_id,
                "model": collected.model_resource,
                "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [bucket_uri + input_name]}},
                "outputConfig": {
                    "predictionsFormat": "jsonl",
                    "gcsDestination": {"outputUriPrefix": bucket_uri + self._folder(token) + OUTPUT_FOLDER},
                },
                "labels": {vertex_jobs.BATCH_LABEL: token, DEPLOYMENT_LABEL: self.name},
            }
        )
        return self._batch(job)

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        if not _job_id_form(batch_id):
            raise _not_found(batch_id)
        return self._batch(self._google.get_job(self._google.job_name(batch_id)))

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        """OpenAI's page (newest first, `after` a batch id, `limit`) of this deployment's jobs.
        Vertex's list takes no order (ListBatchPredictionJobsRequest: filter, page size and
        token only), so every page is read and the jobs sorted by their createTime here."""
        limit = int(query.get("limit") or 20)
        after = query.get("after")
        jobs: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            page = self._google.list_jobs(
                filter=f'labels.{DEPLOYMENT_LABEL}="{self.name}"', page_token=page_token
            )
            jobs.extend(page.get("batchPredictionJobs") or ())
            page_token = page.get("nextPageToken")
            if not page_token:
                break
        jobs.sort(key=lambda job: (str(job.get("createTime") or ""), str(job["name"])), reverse=True)
        ids = [vertex_jobs.job_id(str(job["name"])) for job in jobs]
        start = ids.index(after) + 1 if after in ids else (0 if after is None else len(ids))
        data: list[dict[str, Any]] = []
        position = start
        while position < len(jobs) and len(data) < limit:
            job, position = jobs[position], position + 1
            if self._noted(job):  # a job no create of the gateway noted is not one of its batches
                data.append(self._batch(job))
        return list_page(data, has_more=position < len(jobs))

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Cancels the job; answers `cancelling` as OpenAI does: the rows it ran become files on
        the next retrieve or list once it is cancelled."""
        if not _job_id_form(batch_id):
            raise _not_found(batch_id)
        name = self._google.job_name(batch_id)
        job = self._google.get_job(name)
        state = str(job.get("state"))
        if state in vertex_jobs.FINISHED:
            raise ConflictError(
                f"Cannot cancel a batch with status '{vertex_jobs.STATUS[state]}'.",
                param="batch_id",
                code="batch_not_cancellable",
            )
        if state != "JOB_STATE_CANCELLING":
            try:
                self._google.cancel_job(name)
            except UpstreamRequestError as exc:
                if exc.code != "FAILED_PRECONDITION":
                    raise
                # it ended between the read and the cancel
                raise ConflictError(
                    "Cannot cancel a batch that has ended.", param="batch_id", code="batch_not_cancellable"
                ) from None
        batch = vertex_jobs.batch_object({**job, "state": "JOB_STATE_CANCELLING"}, self._note(job))
        batch["cancelling_at"] = int(time.time())
        return batch

    def close(self) -> None:
        self._notes.clear()
        self._google.close()

    # Caps --------------------------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return caps_for(self.deployment, model)

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """Vertex queues Gemini jobs past its concurrency limit instead of failing them; a create
        refused with RESOURCE_EXHAUSTED raises `QuotaRefused` (`google_cloud`)."""
        return False

    # A job and its note ------------------------------------------------------------------------
    def _job_of(self, token: str) -> dict[str, Any] | None:
        page = self._google.list_jobs(filter=f'labels.{vertex_jobs.BATCH_LABEL}="{token}"')
        for job in page.get("batchPredictionJobs") or ():
            if (job.get("labels") or {}).get(DEPLOYMENT_LABEL) == self.name:
                return job
        return None

    def _batch(self, job: dict[str, Any]) -> dict[str, Any]:
        note = self._note(job)
        if job.get("state") in vertex_jobs.WITH_RESULTS:
            self._finish(job, note)
        return vertex_jobs.batch_object(job, note)

    def _token_of(self, job: dict[str, Any]) -> str:
        labels = job.get("labels") or {}
        token = labels.get(vertex_jobs.BATCH_LABEL)
        if labels.get(DEPLOYMENT_LABEL) != self.name or not isinstance(token, str):
            raise _not_found(vertex_jobs.job_id(str(job.get("name"))))
        return token

    def _noted(self, job: dict[str, Any]) -> bool:
        """Whether the gateway keeps a note of the job (its note is swept once the create that
        wrote it gave up, service.kept_sweep)."""
        try:
            self._note(job)
        except UpstreamRequestError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def _note(self, job: dict[str, Any]) -> Note:
        job_id = vertex_jobs.job_id(str(job["name"]))
        note = self._notes.get(job_id)
        if note is None:
            raw = self._get_json(self._note_key(self._token_of(job)))
            if raw is None:
                raise _not_found(job_id)
            note = Note.from_json(raw)
            with self._lock:
                if len(self._notes) >= _NOTES_CACHE_SIZE:
                    self._notes.clear()
                    self._folders_gone.clear()
                self._notes[job_id] = note
                if raw.get(_FOLDER_GONE):
                    self._folders_gone.add(job_id)
        return note

    def _finish(self, job: dict[str, Any], note: Note) -> None:
        """The OpenAI output and error files of a finished job, written once (derived ids,
        conditional writes), then the note that says so: a run interrupted anywhere is finished
        by the next one."""
        job_id = vertex_jobs.job_id(str(job["name"]))
        if note.results:
            if job_id not in self._folders_gone:  # a run that kept them died before deleting
                self._forget_rows(job)
            return
        key = self._note_key(self._token_of(job))
        raw = self._get_json(key) or {}
        if "output_file_id" in raw:  # another run (or this one, its answer lost) finished it
            note.output_file_id, note.error_file_id, note.results = (
                raw["output_file_id"],
                raw["error_file_id"],
                True,
            )
            self._forget_rows(job)
            return
        custom_ids = [str(custom_id) for custom_id in raw.get("custom_ids") or ()]
        model = str(raw.get("model") or "")
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as errors,
        ):
            spools = {batch_results.OUTPUT: output, batch_results.ERROR: errors}
            answered = bytearray(len(custom_ids) + 1)  # by line number: one byte per request
            for row in self._prediction_rows(job):
                result = vertex_records.outcome(row, custom_ids, model=model, created=note.created_at)
                index = vertex_records.row_index(row)
                if result is None or index is None or answered[index]:
                    continue
                answered[index] = 1
                kind, line = batch_results.result_line(result, job_id)
                spools[kind].write(batch_results.encoded(line))
            if job.get("state") == "JOB_STATE_EXPIRED":  # OpenAI's rule: unrun requests expired
                for index, custom_id in enumerate(custom_ids, 1):
                    if not answered[index]:
                        expired = batch_results.Outcome(custom_id, "expired")
                        errors.write(batch_results.encoded(batch_results.result_line(expired, job_id)[1]))
            output_id = self._results_file(job_id, "output", output)
            error_id = self._results_file(job_id, "error", errors)
        # Then the note says the files are written (a run that dies before writes them again).
        self._put_json(key, {**raw, "output_file_id": output_id, "error_file_id": error_id})
        note.output_file_id, note.error_file_id, note.results = output_id, error_id, True
        self._forget_rows(job)

    def _forget_rows(self, job: dict[str, Any]) -> None:
        """The prompts and answers the job's folder holds, deleted once the gateway keeps the
        results, then the note says so (a run that dies between deletes again, finding less).
        Best effort: what a refused delete leaves, the bucket's lifecycle rule removes."""
        token = self._token_of(job)
        key = self._note_key(token)
        try:
            for name in self._google.list_names(self._folder(token)):
                self._google.delete(name)
        except GatewayError:
            logger.warning("vertex rows not deleted", extra={"provider": self.name, "token": token})
            self._folders_gone.add(vertex_jobs.job_id(str(job["name"])))  # tried once per process
            return
        raw = self._get_json(key) or {}
        self._put_json(key, {**raw, _FOLDER_GONE: True})
        self._folders_gone.add(vertex_jobs.job_id(str(job["name"])))

    def _prediction_rows(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every row of the job's prediction files (none if it ran none)."""
        directory = str((job.get("outputInfo") or {}).get("gcsOutputDirectory") or "")
        head = f"gs://{self._google.bucket}/"
        if not directory.startswith(head):
            return
        for name in self._google.list_names(directory.removeprefix(head).rstrip("/") + "/"):
            if not name.rsplit("/", 1)[-1].startswith("predictions") or not name.endswith(".jsonl"):
                continue
            with self._google.download(name) as response:
                for line in response.iter_lines():
                    if line.strip():
                        row = json.loads(line)
                        if isinstance(row, dict):
                            yield row

    def _results_file(self, job_id: str, kind: str, spool: IO[bytes]) -> str | None:
        return self._files.keep_results(job_id, kind, spool, purpose="batch_output")

    # Names and notes ---------------------------------------------------------------------------
    def _folder(self, token: str) -> str:
        return f"{self.deployment.gcs_prefix}{self.name}/{token}/"

    def _note_key(self, token: str) -> str:
        return f"{resources.KEPT_FILES_PREFIX}{self.name}/vertex-jobs/{token}/note.json"

    def _put_json(self, key: str, value: dict[str, Any]) -> None:
        self._s3.put_object(Bucket=self._files.bucket, Key=key, Body=json.dumps(value).encode())

    def _get_json(self, key: str) -> dict[str, Any] | None:
        try:
            body = self._s3.get_object(Bucket=self._files.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        value = json.loads(body)
        return value if isinstance(value, dict) else None


def _job_id_form(batch_id: str) -> bool:
    """A Vertex job id: ASCII digits only (nothing else reaches a URL path)."""
    return 0 < len(batch_id) <= 32 and batch_id.isascii() and batch_id.isdigit()


def _not_found(batch_id: str) -> UpstreamRequestError:
    return UpstreamRequestError(
        404,
        f"No such Batch object: {batch_id}",
        error_type="invalid_request_error",
        param="batch_id",
        code="not_found",
    )


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[ProviderApi] = VertexClient
