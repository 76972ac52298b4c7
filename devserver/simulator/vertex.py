"""Vertex AI batch prediction for Gemini: `projects.locations.batchPredictionJobs`.

Paths (under the simulator's ``/vertex`` prefix), fields and states as
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs
and https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage:
``POST v1/projects/{p}/locations/{l}/batchPredictionJobs`` (create), ``GET …/{id}``, ``GET …``
(list: ``filter`` on ``labels.<key>="<value>"``, ``display_name="…"`` and ``state=…`` joined by
AND, ``pageSize`` up to 1,000, ``pageToken``), ``POST …/{id}:cancel``, ``DELETE …/{id}``.

A job reads one JSONL file of rows ``{"request": GenerateContentRequest}`` from Cloud Storage
(`gcs.FakeGcs`) and writes ``<outputUriPrefix>/prediction-model-<time>/predictions.jsonl``:
one line per row run, ``{"status": "", "processed_time", "request", "response"}``, or with
``status`` the row's error and no ``response``. States move along the clock: JOB_STATE_PENDING,
JOB_STATE_QUEUED, JOB_STATE_RUNNING (rows run over one batch phase), JOB_STATE_SUCCEEDED; a
cancel while running keeps the rows run so far (JOB_STATE_CANCELLING, then CANCELLED).

Rules enforced at create (400 INVALID_ARGUMENT): `displayName` (at most 128 characters), a
publisher model name ``publishers/google/models/gemini-…`` (or with its
``projects/{p}/locations/{l}/`` prefix, which must be the job's), ``instancesFormat`` and
``predictionsFormat`` ``jsonl``, exactly one ``gs://`` input URI (Gemini batch takes one file),
a ``gs://`` output prefix, at most 64 labels of Google's label rules. At validation the input
file must exist and hold at most the rows and bytes of a job (``limits``, documented defaults
200,000 requests and 1 GB) or the job FAILS. Jobs past Gemini's concurrency limit queue rather
than being refused (https://cloud.google.com/vertex-ai/generative-ai/docs/batch-prediction), so
no create is refused for quota here. Cancel and delete follow the job's state
(FAILED_PRECONDITION otherwise). Directives (`limits`): ``sim-fail-<code>`` in a row's text
gives that row an error status, ``sim-expire`` leaves it unrun and the job ends JOB_STATE_EXPIRED.
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

from .gcs import FakeGcs, GcsError, split_uri
from .limits import Directive, FirstAttempts, SimulatorLimits
from .vertex_models import RowError, prompt_text, respond, respond_claude

_MODEL = re.compile(
    r"^(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?publishers/(?P<publisher>[a-z0-9-]+)/models/(?P<model>[a-z0-9][a-z0-9._@-]*)$"
)
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_FILTER_TERM = re.compile(r'^\s*(labels\.[a-z][a-z0-9_-]*|display_name|state)\s*=\s*"?([^"]*)"?\s*$')
MAX_DISPLAY_NAME = 128
MAX_LABELS = 64
MAX_PAGE_SIZE = 1000
_FINISHED = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)
_NOT_STARTED = frozenset({"JOB_STATE_PENDING", "JOB_STATE_QUEUED"})


class VertexError(Exception):
    """Google's error envelope: `{"error": {"code", "message", "status"}}`."""

    def __init__(self, code: int, message: str, status: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid(message: str) -> VertexError:
    return VertexError(400, message, "INVALID_ARGUMENT")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Job:
    job_id: str
    name: str
    display_name: str
    model: str
    input_uri: str
    output_prefix: str
    labels: dict[str, str]
    created: float
    state: str = "JOB_STATE_PENDING"
    updated: float = 0.0
    started: float | None = None
    ended: float | None = None
    cancelling_at: float | None = None
    stop_count: int = 0
    rows: list[Any] = field(default_factory=list)
    directives: dict[int, Directive] = field(default_factory=dict)
    error: str | None = None
    succeeded: int = 0
    failed: int = 0
    output_directory: str | None = None
    loaded: bool = False  # the input file was read (validation)

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "model": self.model,
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [self.input_uri]}},
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": self.output_prefix},
            },
            "state": self.state,
            "createTime": _iso(self.created),
            "updateTime": _iso(self.updated or self.created),
            "labels": dict(self.labels),
        }
        if self.started is not None:
            body["startTime"] = _iso(self.started)
        if self.ended is not None:
            body["endTime"] = _iso(self.ended)
        if self.error:
            body["error"] = {"code": 3, "message": self.error}
        if self.output_directory:
            body["outputInfo"] = {"gcsOutputDirectory": self.output_directory}
        if self.state in _FINISHED and self.rows:
            incomplete = len(self.rows) - self.succeeded - self.failed
            body["completionStats"] = {
                "successfulCount": str(self.succeeded),
                "failedCount": str(self.failed),
                "incompleteCount": str(incomplete),
            }
        return body


class VertexJobs:
    def __init__(
        self,
        gcs: FakeGcs,
        phase: Callable[[], float],
        clock: Callable[[], float] = time.time,
        limits: Callable[[], SimulatorLimits] = SimulatorLimits,
        first_attempts: FirstAttempts | None = None,
    ) -> None:
        self.gcs = gcs
        self._phase = phase
        self.clock = clock
        self._limits = limits
        self.first_attempts = first_attempts or FirstAttempts()
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()

    # ------------------------------------------------------------------ operations

    def create(self, project: str, location: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received.")
        display_name = body.get("displayName")
        if not isinstance(display_name, str) or not display_name:
            raise invalid("BatchPredictionJob.display_name is required.")
        if len(display_name) > MAX_DISPLAY_NAME:
            raise invalid(f"BatchPredictionJob.display_name must be at most {MAX_DISPLAY_NAME} characters.")
        model = str(body.get("model") or "")
        match = _MODEL.match(model)
        if match is None:
            raise invalid(
                f"Invalid model resource name: '{model}'. Expected publishers/google/models/<model>."
            )
        if match.group("project") and (match.group("project"), match.group("location")) != (
            project,
            location,
        ):
            raise invalid("The model's project and location must be the job's.")
        supported = {"google": "gemini-", "anthropic": "claude-"}.get(match.group("publisher"))
        if supported is None or not match.group("model").startswith(supported):
            raise invalid(
                f"Model {model} is not supported for batch prediction here (Gemini and Claude models only)."
            )
        input_config = body.get("inputConfig") or {}
        if input_config.get("instancesFormat") != "jsonl":
            raise invalid("inputConfig.instances_format must be jsonl for a Cloud Storage source.")
        uris = (input_config.get("gcsSource") or {}).get("uris")
        if not isinstance(uris, list) or len(uris) != 1 or not str(uris[0]).startswith("gs://"):
            raise invalid(
                "inputConfig.gcs_source.uris: Gemini batch prediction takes exactly one gs:// JSONL file."
            )
        output_config = body.get("outputConfig") or {}
        if output_config.get("predictionsFormat") != "jsonl":
            raise invalid("outputConfig.predictions_format must be jsonl for a Cloud Storage destination.")
        prefix = str((output_config.get("gcsDestination") or {}).get("outputUriPrefix") or "")
        if not prefix.startswith("gs://") or len(prefix) <= len("gs://"):
            raise invalid("outputConfig.gcs_destination.output_uri_prefix must be a gs:// URI.")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
            raise invalid(f"labels: at most {MAX_LABELS}.")
        for key, value in labels.items():
            if not _LABEL_KEY.match(str(key)) or not isinstance(value, str) or not _LABEL_VALUE.match(value):
                raise invalid(
                    f"Invalid label {key!r}: keys and values are lowercase letters, digits, '_' or '-'."
                )
        with self.lock:
            now = self.clock()
            job_id = str(secrets.randbelow(9 * 10**18) + 10**18)
            job = Job(
                job_id=job_id,
                name=f"projects/{project}/locations/{location}/batchPredictionJobs/{job_id}",
                display_name=display_name,
                model=model,
                input_uri=str(uris[0]),
                output_prefix=prefix,
                labels={str(k): str(v) for k, v in labels.items()},
                created=now,
                updated=now,
            )
            self.jobs[job_id] = job
            return job.resource()

    def get(self, project: str, location: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(project, location, job_id)
            self._refresh(job, self.clock())
            return job.resource()

    def list(self, project: str, location: str, query: dict[str, str]) -> dict[str, Any]:
        raw = query.get("pageSize", "100")
        if not raw.isdigit() or not 0 <= int(raw) <= MAX_PAGE_SIZE:
            raise invalid(f"page_size must be between 0 and {MAX_PAGE_SIZE}.")
        size = int(raw) or 100
        terms = _filter_terms(query.get("filter", ""))
        head = f"projects/{project}/locations/{location}/"
        with self.lock:
            now = self.clock()
            # Vertex documents no order for this list: by job id here, which is random
            jobs = sorted(
                (job for job in self.jobs.values() if job.name.startswith(head)), key=lambda job: job.job_id
            )
            for job in jobs:
                self._refresh(job, now)
            jobs = [job for job in jobs if all(_matches(job, name, value) for name, value in terms)]
            start = 0
            if token := query.get("pageToken"):
                ids = [job.job_id for job in jobs]
                if token not in ids:
                    raise invalid("Invalid page token.")
                start = ids.index(token)
            page = jobs[start : start + size]
            body: dict[str, Any] = {"batchPredictionJobs": [job.resource() for job in page]}
            if start + size < len(jobs):
                body["nextPageToken"] = jobs[start + size].job_id
            return body

    def cancel(self, project: str, location: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(project, location, job_id)
            now = self.clock()
            self._refresh(job, now)
            if job.state in _FINISHED or job.state == "JOB_STATE_CANCELLING":
                raise VertexError(
                    400, f"Job {job.name} is already in state {job.state}.", "FAILED_PRECONDITION"
                )
            if job.state == "JOB_STATE_RUNNING":
                job.stop_count = self._done_by(job, now)
                job.state, job.cancelling_at = "JOB_STATE_CANCELLING", now
            else:
                self._end(job, "JOB_STATE_CANCELLED", now, 0)
            job.updated = now
            return {}

    def delete(self, project: str, location: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(project, location, job_id)
            self._refresh(job, self.clock())
            if job.state not in _FINISHED:
                raise VertexError(
                    400,
                    f"The BatchPredictionJob {job.name} cannot be deleted in state {job.state}.",
                    "FAILED_PRECONDITION",
                )
            del self.jobs[job.job_id]
            return {"name": f"{job.name}/operations/{secrets.randbelow(10**18)}", "done": True}

    # ------------------------------------------------------------------ timeline

    def _job(self, project: str, location: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or not job.name.startswith(f"projects/{project}/locations/{location}/"):
            raise VertexError(
                404,
                f"The BatchPredictionJob does not exist: {project}/{location}/batchPredictionJobs/{job_id}",
                "NOT_FOUND",
            )
        return job

    def _done_by(self, job: Job, now: float) -> int:
        assert job.started is not None
        p = self._phase()
        fraction = (now - job.started) / p if p > 0 else 1.0
        return max(0, min(len(job.rows), math.floor(fraction * len(job.rows))))

    def _refresh(self, job: Job, now: float) -> None:
        p = self._phase()
        start = job.created
        if job.state == "JOB_STATE_PENDING" and now >= start + p / 3:
            job.state, job.updated = "JOB_STATE_QUEUED", start + p / 3
        loading = job.state == "JOB_STATE_QUEUED" and not job.loaded and now >= start + 2 * p / 3
        if loading and not self._load(job, start + 2 * p / 3):
            return
        if job.state == "JOB_STATE_QUEUED" and now >= start + p:
            job.state, job.updated, job.started = "JOB_STATE_RUNNING", start + p, start + p
        if job.state == "JOB_STATE_RUNNING" and now >= start + 2 * p:
            expired = any(directive.kind == "expire" for directive in job.directives.values())
            self._end(
                job, "JOB_STATE_EXPIRED" if expired else "JOB_STATE_SUCCEEDED", start + 2 * p, len(job.rows)
            )
        if (
            job.state == "JOB_STATE_CANCELLING"
            and job.cancelling_at is not None
            and now >= job.cancelling_at + p / 2
        ):
            self._end(job, "JOB_STATE_CANCELLED", job.cancelling_at + p / 2, job.stop_count)

    def _load(self, job: Job, at: float) -> bool:
        """Validation: the input file is read; a missing or oversized one fails the job."""
        limits = self._limits()
        max_rows = limits.requests_for("vertex")
        max_bytes = limits.bytes_for("vertex")
        try:
            data = self.gcs.read_uri(job.input_uri)
        except GcsError as exc:
            return self._fail(job, at, f"Failed to read the input file {job.input_uri}: {exc.message}")
        if len(data) > max_bytes:
            return self._fail(job, at, f"The input file is {len(data)} bytes; the maximum is {max_bytes}.")
        rows: list[Any] = []
        for raw in data.splitlines():
            if not raw.strip():
                continue
            try:
                rows.append(json.loads(raw))
            except ValueError:
                rows.append(None)  # an invalid line: its output row carries the error
        if not rows:
            return self._fail(job, at, "The input file has no requests.")
        if len(rows) > max_rows:
            return self._fail(job, at, f"The input file has {len(rows)} requests; the maximum is {max_rows}.")
        job.rows, job.loaded = rows, True
        for index, row in enumerate(rows):
            request = row.get("request") if isinstance(row, dict) else None
            if directive := self.first_attempts.take("vertex", prompt_text(request)):
                job.directives[index] = directive
        return True

    def _fail(self, job: Job, at: float, message: str) -> bool:
        job.state, job.error = "JOB_STATE_FAILED", message
        job.updated = job.ended = at
        return False

    def _end(self, job: Job, state: str, at: float, count: int) -> None:
        if job.rows:
            self._write_predictions(job, count, at)
        job.state = state
        job.updated = job.ended = at

    def _write_predictions(self, job: Job, count: int, at: float) -> None:
        model_id = job.model.rsplit("/", 1)[-1]
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        directory = f"{job.output_prefix.rstrip('/')}/prediction-model-{stamp}"
        lines: list[str] = []
        job.succeeded = job.failed = 0
        for index, row in enumerate(job.rows[:count]):
            directive = job.directives.get(index)
            if directive is not None and directive.kind == "expire":
                continue
            request = row.get("request") if isinstance(row, dict) else None
            # the row's other columns (a Claude row's custom_id) pass through to its output
            passed = (
                {k: v for k, v in row.items() if k not in ("request", "response", "status")}
                if isinstance(row, dict)
                else {}
            )
            line: dict[str, Any] = {**passed, "status": "", "processed_time": _iso(at), "request": request}
            try:
                if row is None:
                    raise RowError(400, "Invalid JSON payload received: the line is not JSON.")
                if directive is not None:
                    raise RowError(directive.status, directive.message, _status_name(directive.status))
                claude = job.model.split("/models/", 1)[0].endswith("publishers/anthropic")
                line["response"] = respond_claude(model_id, request) if claude else respond(model_id, request)
                job.succeeded += 1
            except RowError as exc:
                line["status"] = exc.row_status()
                job.failed += 1
            lines.append(json.dumps(line))
        bucket, _ = split_uri(directory + "/")
        try:
            self.gcs.write_uri(
                f"{directory}/predictions.jsonl", "".join(text + "\n" for text in lines).encode()
            )
        except GcsError as exc:
            job.error = f"Failed to write the predictions to {bucket}: {exc.message}"
            return
        job.output_directory = directory


def _status_name(code: int) -> str:
    return {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "INVALID_ARGUMENT")


def _filter_terms(raw: str) -> list[tuple[str, str]]:
    if not raw.strip():
        return []
    terms = []
    for term in re.split(r"\s+AND\s+", raw.strip()):
        match = _FILTER_TERM.match(term)
        if match is None:
            raise invalid(f"Unsupported filter: {term}")
        terms.append((match.group(1), match.group(2)))
    return terms


def _matches(job: Job, name: str, value: str) -> bool:
    if name == "display_name":
        return job.display_name == value
    if name == "state":
        return job.state == value
    return job.labels.get(name.removeprefix("labels.")) == value
