"""Anthropic's Message Batches behind the OpenAI interface (`providers.api.ProviderApi`).

Files live in the gateway's store (`kept_files`): Anthropic has none. A batch create reads its
input file there, translates each line (`anthropic.messages`) and sends the requests inline to
POST /v1/messages/batches; the OpenAI-side fields are kept in a note per batch
(`batch_notes`). Once a batch has ended, its results are read once and kept as an OpenAI
output file and error file with ids derived from the batch, written conditionally: two
retrieves (or a retrieve and a list) racing build them once.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

import httpx

from gateway.errors import RateLimitError, UpstreamError, UpstreamRequestError
from gateway.formats.jsonl import split_lines
from gateway.observability import logger
from gateway.providers.anthropic import shapes
from gateway.providers.anthropic.messages import TranslationError, messages_request
from gateway.providers.api import ProviderApi
from gateway.providers.batch_notes import BatchNotes
from gateway.providers.batch_results import ERROR, OUTPUT, encoded, has_line, result_line
from gateway.providers.caps import BatchCaps, caps_for
from gateway.providers.config import DEFAULT_ANTHROPIC_VERSION, ProviderDeployment
from gateway.providers.errors import QuotaRefused, bad_request, upstream_error
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

_BATCHES = "/v1/messages/batches"
_SPOOL_BYTES = 8 * 1024 * 1024
# A batch without a note is looked for among the creates that never heard back only this long
# after it was made (adoption gives a create up after 10 minutes): older ones, made outside the
# gateway, cost no listing of the pending notes.
ADOPTABLE_SECONDS = 3600


class AnthropicClient(KeptFileEndpoints):
    def __init__(self, deployment: ProviderDeployment, key_source: KeySource, timeout: float) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self._key_source = key_source
        self._http = http_client(timeout)

    @cached_property
    def notes(self) -> BatchNotes:
        return BatchNotes(self.name)

    # Batches -------------------------------------------------------------------------------
    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        endpoint = body.get("endpoint")
        if endpoint != shapes.CHAT_COMPLETIONS:
            raise bad_request(
                f"Provider '{self.name}' (Anthropic) runs only {shapes.CHAT_COMPLETIONS} batches, "
                f"not {endpoint}.",
                param="endpoint",
                code="unsupported_endpoint",
            )
        input_file_id = str(body["input_file_id"])
        self.files.check_batch_input(input_file_id)  # before anything is written
        custom_ids = shapes.CustomIds()
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            total, model = self._requests_body(input_file_id, custom_ids, spool)
            return self._create(
                body, gateway_id, Replayable(spool, spool.tell()), total, model, custom_ids, timeout
            )

    def _create(
        self,
        body: dict[str, Any],
        gateway_id: str,
        payload: Replayable,
        total: int,
        model: str | None,
        custom_ids: shapes.CustomIds,
        timeout: float | None,
    ) -> dict[str, Any]:
        note = {
            "input_file_id": str(body["input_file_id"]),
            "endpoint": shapes.CHAT_COMPLETIONS,
            "completion_window": body.get("completion_window") or "24h",
            "metadata": body.get("metadata"),
            "model": model,
            "custom_ids": custom_ids.mapped,
            "total": total,
            "attempted_at": int(time.time()),
        }
        # ahead, named after the gateway's own batch id: a lost answer is still adoptable, and
        # nothing the client sends names another create's note
        self.notes.put_pending(gateway_id, note)
        try:
            batch = self._json(
                "POST",
                _BATCHES,
                content=payload,
                headers={"content-type": "application/json", "content-length": str(payload.size)},
                **request_timeout(timeout),
            )
        except RateLimitError as exc:  # 429: the processing queue is full, or the request rate
            raise QuotaRefused.of(exc) from exc
        self.notes.put(str(batch["id"]), note)
        self.notes.forget_pending(gateway_id)
        return shapes.openai_batch(batch, note)

    def _requests_body(
        self, input_file_id: str, custom_ids: shapes.CustomIds, out: IO[bytes]
    ) -> tuple[int, str | None]:
        """Write the create's JSON body, `{"requests": [...]}`, from the kept input file to `out`
        (memory stays bounded: spilled to disk past a few MB); 400 naming the line that does not
        translate, or the limit the batch passes. Returns the request count and the model."""
        size, total, model = out.write(b'{"requests":[') + 2, 0, None
        with self.files.stream_file_content(input_file_id) as stream:
            for number, raw in enumerate(split_lines(stream.iter_bytes()), start=1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    body, custom_id = line["body"], str(line["custom_id"])
                    params = messages_request(body, default_max_tokens=self.deployment.default_max_tokens)
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
                model = model or params.get("model")
                request = {"custom_id": custom_ids.anthropic_id(custom_id), "params": params}
                piece = (b"," if total else b"") + json.dumps(request, separators=(",", ":")).encode()
                total += 1
                size += len(piece)
                if total > shapes.MAX_REQUESTS:
                    raise bad_request(
                        f"An Anthropic message batch holds at most {shapes.MAX_REQUESTS} requests; "
                        "split the input file.",
                        param="input_file_id",
                        code="too_many_requests_in_batch",
                    )
                if size > shapes.MAX_BATCH_BYTES:
                    raise bad_request(
                        f"An Anthropic message batch is at most 256 MB ({shapes.MAX_BATCH_BYTES} bytes) "
                        "of requests; split the input file.",
                        param="input_file_id",
                        code="batch_too_large",
                    )
                out.write(piece)
        out.write(b"]}")
        return total, model

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        return self._openai(self._json("GET", f"{_BATCHES}/{batch_id}", **request_timeout(timeout)))

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        params = {"limit": query.get("limit") or 20}
        if query.get("after"):
            params["after_id"] = query["after"]
        page = self._json("GET", _BATCHES, params=params, **request_timeout(timeout))
        data = [batch for raw in page.get("data") or () if (batch := self._openai(raw, required=False))]
        return {
            "object": "list",
            "data": data,
            "first_id": page.get("first_id"),
            "last_id": page.get("last_id"),
            "has_more": bool(page.get("has_more")),
        }

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self._openai(self._json("POST", f"{_BATCHES}/{batch_id}/cancel"))

    def _openai(self, batch: dict[str, Any], *, required: bool = True) -> dict[str, Any] | Any:
        """The OpenAI Batch of an Anthropic one, its results kept once it has ended. A batch the
        gateway has no note of (made elsewhere) is None in a list, a 404 on its own."""
        upstream_id = str(batch["id"])
        note = self.notes.get(upstream_id)
        created_at = shapes.epoch(batch.get("created_at")) or 0
        if note is None and time.time() - created_at <= ADOPTABLE_SECONDS:
            total = sum(shapes.request_counts(batch).values())
            note = self.notes.claim_pending(upstream_id, created_at, total)
        if note is None:
            if not required:
                return None
            raise UpstreamRequestError(
                404,
                f"No batch found with id '{upstream_id}'.",
                error_type="invalid_request_error",
                code="not_found",
            )
        files = None
        if batch.get("processing_status") == "ended":
            files = note.get("files")
            if files is None:
                files = self._keep_results(batch, note)
                self.notes.put(upstream_id, {**note, "files": files})
        return shapes.openai_batch(batch, note, files)

    # Results --------------------------------------------------------------------------------
    def _keep_results(self, batch: dict[str, Any], note: dict[str, Any]) -> dict[str, str | None]:
        """Read an ended batch's results into its output and error files (ids derived from the
        batch: written once, whoever comes first)."""
        upstream_id = str(batch["id"])
        created = shapes.epoch(batch.get("ended_at")) or int(time.time())
        custom_ids: dict[str, str] = note.get("custom_ids") or {}
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as errors,
        ):
            spools = {OUTPUT: output, ERROR: errors}
            with self._stream("GET", f"{_BATCHES}/{upstream_id}/results") as response:
                for raw in split_lines(response.iter_bytes()):
                    if not raw.strip():
                        continue
                    outcome = shapes.outcome(json.loads(raw), custom_ids, created)
                    if has_line(outcome):
                        kind, line = result_line(outcome, upstream_id)
                        spools[kind].write(encoded(line))
            return {
                "output_file_id": self._kept(upstream_id, OUTPUT, output),
                "error_file_id": self._kept(upstream_id, ERROR, errors),
            }

    def _kept(self, upstream_id: str, kind: str, spool: IO[bytes]) -> str | None:
        return self.files.keep_results(upstream_id, kind, spool, purpose=f"batch_{kind}")

    # Transport -------------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            payload = response.json()
        except ValueError as exc:
            raise UpstreamError(f"provider '{self.name}' answered with a body that is not JSON") from exc
        if not isinstance(payload, dict):
            raise UpstreamError(f"provider '{self.name}' answered with an unexpected JSON shape")
        return payload

    def _stream(self, method: str, path: str) -> AbstractContextManager[httpx.Response]:
        from contextlib import contextmanager

        @contextmanager
        def streamed() -> Iterator[httpx.Response]:
            response = self._send(method, path, stream=True)
            try:
                yield response
            finally:
                response.close()

        return streamed()

    def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = self._attempt(method, path, refresh_key=False, stream=stream, **kwargs)
        if response.status_code == 401:
            logger.warning("provider rejected the key; reading it again", extra={"provider": self.name})
            response.close()
            response = self._attempt(method, path, refresh_key=True, stream=stream, **kwargs)
        if response.status_code >= 400:
            close_failed(response, provider=self.name, path=path, stream=stream)
            raise upstream_error(response, self.name)
        return response

    def _attempt(
        self, method: str, path: str, *, refresh_key: bool, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        key = self._key_source(refresh_key)
        if not key:
            raise UpstreamError(
                f"provider '{self.name}' has no API key configured", code="provider_not_configured"
            )
        headers = {
            "x-api-key": key,
            "anthropic-version": self.deployment.anthropic_version or DEFAULT_ANTHROPIC_VERSION,
            **kwargs.pop("headers", {}),
        }
        request = self._http.build_request(method, self.deployment.api_base + path, headers=headers, **kwargs)
        return send_measured(
            self._http,
            request,
            provider=self.name,
            operation=operation_name(method, path.removeprefix("/v1")),
            stream=stream,
        )

    # Caps -------------------------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return caps_for(self.deployment, model)

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        """Anthropic refuses a batch over its queue at create (429, `QuotaRefused`); a batch it
        took never ends for quota."""
        return False

    def close(self) -> None:
        self._http.close()


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[ProviderApi] = AnthropicClient
