"""The Gemini API's Batch Mode behind OpenAI's Files and Batches API (`providers.api.ProviderApi`).

Files are the gateway's own (`kept_files`), as for Anthropic and Bedrock: a Gemini file lives 48
hours and holds Gemini requests, while the client's file must live as OpenAI's do and holds
OpenAI lines, translated only at batch create (by then the batch's model is known). A create
translates the kept input file (`gemini.content`) into a JSONL of `{"key": custom_id, "request":
GenerateContentRequest}` lines, uploads it to the Gemini Files API (resumable upload), and
creates the batch on `models/{model}:batchGenerateContent` with `displayName` `gw-<gateway
batch id>`. A note per batch (`batch_notes`) keeps the OpenAI fields Gemini does not hold.

Interruptible at each step: the note is written ahead under the gateway's batch id; a retried
create that finds that note first looks for a batch of its displayName and adopts it; a
retrieve or list that meets a batch without a note takes the pending note its displayName
names. Once a batch has finished, the first retrieve or list reads its responses file into the
OpenAI output and error files (ids derived from the batch: written once, whoever comes first).

API key: the deployment's provider key, sent as `x-goog-api-key`
(https://ai.google.dev/gemini-api/docs/api-key); a key Google calls invalid (400
API_KEY_INVALID) is read again once, as a 401 is for the other providers.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import httpx

from gateway.errors import (
    ConflictError,
    GatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
)
from gateway.formats.jsonl import split_lines
from gateway.observability import logger
from gateway.providers.api import ProviderApi, list_page
from gateway.providers.batch_notes import BatchNotes
from gateway.providers.batch_results import ERROR, OUTPUT, Outcome, encoded, result_line
from gateway.providers.caps import BatchCaps, caps_for, failed_for_quota
from gateway.providers.config import DEFAULT_GEMINI_API_BASE, ProviderDeployment
from gateway.providers.errors import QuotaRefused, bad_request
from gateway.providers.gemini import shapes
from gateway.providers.gemini.content import TranslationError, check_line, generate_content_request
from gateway.providers.gemini.errors import gemini_error, key_rejected
from gateway.providers.http_send import (
    KeySource,
    Replayable,
    close_failed,
    http_client,
    operation_name,
    request_timeout,
    send_measured,
)
from gateway.providers.kept_file_endpoints import KeptFileEndpoints

_SPOOL_BYTES = 8 * 1024 * 1024
_LIST_PAGE_SIZE = 100
_MAX_LIST_PAGES = 10  # a retried create looks this far back for its batch, a list pages this far
MAX_INPUT_BYTES = 2_000_000_000  # "Input file size limit: 2GB" (https://ai.google.dev/gemini-api/docs/rate-limits#batch-mode)
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class GeminiClient(KeptFileEndpoints):
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self._key_source = key_source
        self._base = deployment.api_base or DEFAULT_GEMINI_API_BASE
        self._http = http_client(timeout)

    @cached_property
    def notes(self) -> BatchNotes:
        return BatchNotes(self.name)

    # Batches -----------------------------------------------------------------------------------
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        endpoint = body.get("endpoint")
        if endpoint != shapes.CHAT_COMPLETIONS:
            raise bad_request(
                f"Provider '{self.name}' (Gemini) runs only {shapes.CHAT_COMPLETIONS} batches, "
                f"not {endpoint}.",
                param="endpoint",
                code="unsupported_endpoint",
            )
        input_file_id = str(body["input_file_id"])
        self.files.check_batch_input(input_file_id)
        display = shapes.display_name(gateway_id)
        retry = self.notes.get_pending(gateway_id) is not None
        if retry:  # the first try may have made the batch
            found = self._find(display)
            if found is not None:
                batch = self._openai(found)
                self.notes.forget_pending(gateway_id)
                return batch
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            custom_ids, model = self._translate(input_file_id, spool)
            note = {
                "gateway_batch_id": gateway_id,
                "input_file_id": input_file_id,
                "endpoint": shapes.CHAT_COMPLETIONS,
                "completion_window": body.get("completion_window") or "24h",
                "metadata": body.get("metadata"),
                "model": model,
                "total": len(custom_ids),
                "custom_ids": custom_ids,
                "attempted_at": int(time.time()),
            }
            # ahead, under the gateway's own id: a lost answer is still adoptable by displayName
            self.notes.put_pending(gateway_id, note)
            try:
                file_name = self._upload(spool, display, timeout)
            except GatewayError:
                if not retry:  # no batch names this gateway id at Google: nothing to adopt
                    self.notes.forget_pending(gateway_id)
                raise
        request = {"batch": {"displayName": display, "inputConfig": {"fileName": file_name}}}
        try:
            operation = self._json(
                "POST",
                f"/v1beta/models/{self.deployment.base_model(model)}:batchGenerateContent",
                json=request,
                **request_timeout(timeout),
            )
        except RateLimitError as exc:  # 429 RESOURCE_EXHAUSTED: Google made nothing
            self.notes.forget_pending(gateway_id)
            raise QuotaRefused.of(exc) from exc
        except UpstreamRequestError:  # refused (4xx): Google made nothing
            if not retry:
                self.notes.forget_pending(gateway_id)
            raise
        self.notes.put(shapes.batch_id(operation), note)
        self.notes.forget_pending(gateway_id)
        return shapes.openai_batch(operation, note)

    def _translate(self, input_file_id: str, out: IO[bytes]) -> tuple[list[str], str]:
        """Write the Gemini input JSONL of the kept file to `out`; 400 naming the line that does
        not translate, or the size Gemini refuses. Returns the custom_ids and the model."""
        custom_ids: list[str] = []
        model: str | None = None
        size = 0
        with self.files.stream_file_content(input_file_id) as stream:
            for number, raw in enumerate(split_lines(stream.iter_bytes()), start=1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    line_body, custom_id = line["body"], str(line["custom_id"])
                    if model is None:  # the batch's model, one path segment of the create's URL
                        check_line(line_body, models=self.deployment.models)
                        model = str(line_body["model"])
                    request = generate_content_request(line_body, model=self.deployment.base_model(model))
                except TranslationError as exc:
                    raise bad_request(
                        f"line {number}: {exc}", param="input_file_id", code="untranslatable_line"
                    ) from exc
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    raise bad_request(
                        f"line {number}: is not a batch request line (custom_id, method, url, body)",
                        param="input_file_id",
                        code="invalid_json_line",
                    ) from None
                piece = (
                    json.dumps({"key": custom_id, "request": request}, separators=(",", ":")).encode() + b"\n"
                )
                size += len(piece)
                if size > MAX_INPUT_BYTES:
                    raise bad_request(
                        f"A Gemini batch input file is at most 2 GB ({MAX_INPUT_BYTES} bytes); "
                        "split the input file.",
                        param="input_file_id",
                        code="batch_too_large",
                    )
                out.write(piece)
                custom_ids.append(custom_id)
        if model is None:
            raise bad_request("The input file holds no requests.", param="input_file_id", code="empty_file")
        return custom_ids, model

    def _upload(self, spool: IO[bytes], display: str, timeout: float | None) -> str:
        """The Files API's resumable upload (https://ai.google.dev/api/files#method:-media.upload):
        a start that declares the size, then the bytes with `upload, finalize`."""
        size = spool.tell()
        start = self._send(
            "POST",
            "/upload/v1beta/files",
            json={"file": {"displayName": display}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            },
            **request_timeout(timeout),
        )
        upload_url = start.headers.get("x-goog-upload-url")
        start.close()
        if not upload_url or not upload_url.startswith(self._base):
            raise UpstreamError(f"provider '{self.name}' answered an upload start without its upload URL")
        done = self._send(
            "POST",
            upload_url,
            content=Replayable(spool, size),
            headers={
                "Content-Length": str(size),
                "X-Goog-Upload-Offset": "0",
                "X-Goog-Upload-Command": "upload, finalize",
            },
            **request_timeout(timeout),
        )
        name = _payload(done, self.name).get("file", {}).get("name")
        if not shapes.is_file_name(name):
            raise UpstreamError(f"provider '{self.name}' answered an upload without its file name")
        return name

    def _find(self, display: str) -> dict[str, Any] | None:
        """The batch of this displayName among the newest (a retried create's first attempt)."""
        for operation in self._operations():
            if shapes.metadata(operation).get("displayName") == display:
                return operation
        return None

    def _operations(self) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(_MAX_LIST_PAGES):
            params: dict[str, Any] = {"pageSize": _LIST_PAGE_SIZE}
            if token:
                params["pageToken"] = token
            page = self._json("GET", "/v1beta/batches", params=params)
            yield from (op for op in page.get("operations") or () if isinstance(op, dict))
            token = page.get("nextPageToken")
            if not token:
                return

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        return self._openai(self._operation(batch_id, timeout))

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        """OpenAI's page (newest first, `after` a batch id, `limit`) over the gateway's batches."""
        limit = int(query.get("limit") or 20)
        after = query.get("after")
        seen_after = after is None
        data: list[dict[str, Any]] = []
        has_more = False
        for operation in self._operations():
            if not seen_after:
                seen_after = shapes.batch_id(operation) == after
                continue
            batch = self._openai(operation, required=False)
            if batch is None:
                continue
            if len(data) == limit:
                has_more = True
                break
            data.append(batch)
        return list_page(data, has_more=has_more)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        operation = self._operation(batch_id, None)
        if shapes.state(operation) in shapes.FINISHED:
            status = shapes.STATUS[shapes.state(operation)]
            raise ConflictError(
                f"Cannot cancel a batch with status '{status}'.",
                param="batch_id",
                code="batch_not_cancellable",
            )
        self._send("POST", f"/v1beta/batches/{batch_id}:cancel").close()
        batch = self._openai(self._operation(batch_id, None))
        if batch["status"] in ("validating", "in_progress"):  # Google has not stopped it yet
            batch = {**batch, "status": "cancelling", "cancelling_at": int(time.time())}
        return batch

    def _operation(self, batch_id: str, timeout: float | None) -> dict[str, Any]:
        if not _BATCH_ID.match(batch_id):  # Gemini's ids; anything else names no batch of ours
            raise _not_found(batch_id)
        return self._json("GET", f"/v1beta/batches/{batch_id}", **request_timeout(timeout))

    def _openai(self, operation: dict[str, Any], *, required: bool = True) -> dict[str, Any] | Any:
        """The OpenAI Batch of a Gemini one, its results kept once it has finished. A batch with
        no note of its own takes the pending note its displayName names (a create that never
        heard back); one made outside the gateway is None in a list, a 404 on its own."""
        upstream_id = shapes.batch_id(operation)
        note = self.notes.get(upstream_id)
        if note is None:
            gateway_id = shapes.gateway_id_of(shapes.metadata(operation).get("displayName"))
            pending = self.notes.get_pending(gateway_id) if gateway_id else None
            if pending is not None and shapes.holds(operation, int(pending.get("total") or 0)):
                self.notes.put(upstream_id, pending)
                self.notes.forget_pending(str(gateway_id))
                note = pending
        if note is None:
            if not required:
                return None
            raise _not_found(upstream_id)
        files = note.get("files")
        if files is None and shapes.state(operation) in shapes.FINISHED:
            files = self._keep_results(operation, note)
            self.notes.put(upstream_id, {**note, "files": files})  # a run that dies writes them again
            if note.get("gateway_batch_id"):  # a pending note whose delete was lost ends here
                self.notes.forget_pending(str(note["gateway_batch_id"]))
            self._delete_gemini_files(operation)
        return shapes.openai_batch(operation, note, files)

    def _delete_gemini_files(self, operation: dict[str, Any]) -> None:
        """Once the results are kept: the batch's input and responses files at Gemini, which
        count against the project's 20 GB of file storage until they expire (48 hours). Best
        effort: one that stays expires."""
        input_config = shapes.metadata(operation).get("inputConfig") or {}
        for name in (input_config.get("fileName"), shapes.responses_file(operation)):
            if shapes.is_file_name(name):
                try:
                    self._send("DELETE", f"/v1beta/{name}").close()
                except GatewayError:
                    logger.warning("could not delete a Gemini file", extra={"provider": self.name})

    # Results -------------------------------------------------------------------------------------
    def _keep_results(self, operation: dict[str, Any], note: dict[str, Any]) -> dict[str, str | None]:
        upstream_id = shapes.batch_id(operation)
        meta = shapes.metadata(operation)
        created = shapes.epoch(meta.get("endTime")) or int(time.time())
        model = str(note.get("model") or "")
        answered: set[str] = set()
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as errors,
        ):
            spools = {OUTPUT: output, ERROR: errors}
            if responses := shapes.responses_file(operation):
                response = self._send(
                    "GET", f"/download/v1beta/{responses}:download", params={"alt": "media"}, stream=True
                )
                try:
                    for raw in split_lines(response.iter_bytes()):
                        line = json.loads(raw) if raw.strip() else None
                        if isinstance(line, dict):
                            outcome = shapes.outcome(line, model=model, created=created)
                            answered.add(outcome.custom_id)
                            kind, result = result_line(outcome, upstream_id)
                            spools[kind].write(encoded(result))
                finally:
                    response.close()
            if shapes.state(operation) == "BATCH_STATE_EXPIRED":  # unrun requests: an error line each
                for custom_id in note.get("custom_ids") or ():
                    if custom_id not in answered:
                        errors.write(encoded(result_line(Outcome(custom_id, "expired"), upstream_id)[1]))
            return {
                "output_file_id": self._kept(upstream_id, OUTPUT, output),
                "error_file_id": self._kept(upstream_id, ERROR, errors),
            }

    def _kept(self, upstream_id: str, kind: str, spool: IO[bytes]) -> str | None:
        return self.files.keep_results(upstream_id, kind, spool, purpose=f"batch_{kind}")

    # Transport -----------------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _payload(self._send(method, path, **kwargs), self.name)

    def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = self._attempt(method, path, refresh_key=False, stream=stream, **kwargs)
        if key_rejected(response):
            logger.warning("provider rejected the key; reading it again", extra={"provider": self.name})
            response.close()
            response = self._attempt(method, path, refresh_key=True, stream=stream, **kwargs)
        if response.status_code >= 400:
            close_failed(response, provider=self.name, path=path.split("?", 1)[0], stream=stream)
            raise gemini_error(response, self.name)
        return response

    def _attempt(
        self, method: str, path: str, *, refresh_key: bool, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        key = self._key_source(refresh_key)
        if not key:
            raise UpstreamError(
                f"provider '{self.name}' has no API key configured", code="provider_not_configured"
            )
        headers = {"x-goog-api-key": key, **kwargs.pop("headers", {})}
        url = path if path.startswith(self._base) else self._base + path
        request = self._http.build_request(method, url, headers=headers, **kwargs)
        operation = operation_name(method, url[len(self._base) :].removeprefix("/v1beta").split("?", 1)[0])
        return send_measured(self._http, request, provider=self.name, operation=operation, stream=stream)

    # Caps ----------------------------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return caps_for(self.deployment, model)

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """A create over the quota is refused at once (429 RESOURCE_EXHAUSTED: `QuotaRefused`); a
        batch Google took and then failed with RESOURCE_EXHAUSTED ended for quota too."""
        if failed_for_quota(batch):
            return True
        errors = batch.get("errors") or {}
        return batch.get("status") == "failed" and any(
            error.get("code") == shapes.RESOURCE_EXHAUSTED for error in errors.get("data") or ()
        )

    def close(self) -> None:
        self._http.close()


def _payload(response: httpx.Response, provider: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as exc:
        raise UpstreamError(f"provider '{provider}' answered with a body that is not JSON") from exc
    finally:
        response.close()
    if not isinstance(payload, dict):
        raise UpstreamError(f"provider '{provider}' answered with an unexpected JSON shape")
    return payload


def _not_found(batch_id: str) -> UpstreamRequestError:
    return UpstreamRequestError(
        404,
        f"No batch found with id '{batch_id}'.",
        error_type="invalid_request_error",
        param="batch_id",
        code="not_found",
    )


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[ProviderApi] = GeminiClient
