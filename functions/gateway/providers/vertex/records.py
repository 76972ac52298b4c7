"""OpenAI batch input lines -> Vertex AI batch prediction rows, and prediction rows -> what became
of each request (`batch_results.Outcome`).

A row is `{"request": GenerateContentRequest}`
(https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage),
the request being `gemini.content.generate_content_request`'s. Vertex copies each row's
`request` into its output row and does not keep the input order (rows run in parallel), so the
row's place travels in the request itself: a `labels` entry `gateway_line: l<number>`
(GenerateContentRequest.labels, "user-defined metadata",
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/generateContent).
Label values take only lowercase letters, digits, `_` and `-`, so the custom_id itself (any
string) stays in the gateway's note, by line number. One job runs one model: every line of a
batch names the same model.

Claude on Vertex (`publishers/anthropic/models/claude-…`) takes rows `{"custom_id", "request"}`,
the request being Anthropic's Messages body without `model`, with `"anthropic_version":
"vertex-2023-10-16"`; the other columns of a row pass through to its output
(https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/batch). The row's
`custom_id` is its line number (`l<number>`), the client's custom_id again staying in the note.
Images by URL are refused, as for Claude on Bedrock (base64 only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.providers.anthropic.messages import TranslationError, messages_request
from gateway.providers.anthropic.messages import chat_completion as messages_completion
from gateway.providers.batch_results import Outcome
from gateway.providers.chat_parts import CHAT_COMPLETIONS
from gateway.providers.gemini.content import chat_completion, generate_content_request
from gateway.providers.request_lines import line_endpoint, line_error, request_lines

LINE_LABEL = "gateway_line"
GEMINI_PUBLISHER = "publishers/google/models/"
CLAUDE_PUBLISHER = "publishers/anthropic/models/"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
# "Quotas and limits" of https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini
MAX_REQUESTS = 200_000
MAX_INPUT_FILE_BYTES = 1_000_000_000
_MODEL_ID = re.compile(r"^gemini-[a-z0-9][a-z0-9.-]*(@[a-z0-9-]+)?$")
# Claude's Vertex ids: `claude-sonnet-4@20250514`, `claude-3-5-haiku@20241022`.
_CLAUDE_ID = re.compile(r"^claude-[a-z0-9][a-z0-9.-]*(@\d{8})?$")
# A row's `status` when a request failed: Google's error JSON, after a prefix such as "Bad Request: ".
_STATUS_JSON = re.compile(r"\{.*\}", re.DOTALL)


def line_label(index: int) -> str:
    return f"l{index:010d}"


def line_index(value: Any) -> int | None:
    if isinstance(value, str) and len(value) == 11 and value[0] == "l" and value[1:].isdigit():
        return int(value[1:])
    return None


@dataclass
class Rows:
    """A batch's rows as the job's input file, with what the job needs to know of them."""

    model: str = ""  # the model id (`gemini-2.5-flash`, `claude-sonnet-4@20250514`)
    custom_ids: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def model_resource(self) -> str:
        return (CLAUDE_PUBLISHER if is_claude(self.model) else GEMINI_PUBLISHER) + self.model


def is_claude(model_id: str) -> bool:
    return model_id.startswith("claude-")


def _model_id(name: str) -> str:
    return name.removeprefix(GEMINI_PUBLISHER).removeprefix(CLAUDE_PUBLISHER)


def vertex_model(model: str, models: dict[str, str]) -> str:
    """The model id of a line's `model`: the deployment's alias, or the id itself (a publisher
    prefix is dropped). A deployment that lists its models runs those only."""
    model_id = _model_id(models.get(model, model))
    if models and model_id not in {_model_id(value) for value in models.values()}:
        raise InvalidRequestError(
            f"Model '{model}' is not configured for this Vertex AI deployment; configured: "
            f"{', '.join(sorted(models))}.",
            param="model",
            code="model_not_found",
        )
    if not _MODEL_ID.match(model_id) and not _CLAUDE_ID.match(model_id):
        raise InvalidRequestError(
            f"Model '{model}' is not supported on Vertex AI batches: Gemini and Claude models only "
            "(e.g. gemini-2.5-flash, claude-sonnet-4@20250514).",
            param="model",
            code="unsupported_model",
        )
    return model_id


def request_row(
    body: dict[str, Any], *, model_id: str, index: int, default_max_tokens: int
) -> dict[str, Any]:
    """One input row of a chat completions body, its line number in it."""
    if is_claude(model_id):
        return {"custom_id": line_label(index), "request": claude_request(body, model_id, default_max_tokens)}
    request = generate_content_request(body, model=model_id)
    request["labels"] = {LINE_LABEL: line_label(index)}
    return {"request": request}


def claude_request(body: dict[str, Any], model_id: str, default_max_tokens: int) -> dict[str, Any]:
    params = messages_request(
        body,
        default_max_tokens=default_max_tokens,
        model_id=model_id,
        image_urls=False,
        structured_outputs=False,
    )
    params.pop("model", None)  # the job names the model
    params.pop("metadata", None)
    return {"anthropic_version": VERTEX_ANTHROPIC_VERSION, **params}


def check_line(body: dict[str, Any], *, models: dict[str, str], default_max_tokens: int) -> None:
    """The upload check of one line's body: a TranslationError (a ValueError) naming the field."""
    try:
        model_id = vertex_model(str(body.get("model") or ""), models)
    except InvalidRequestError as exc:
        raise TranslationError("body.model", exc.message) from None
    request_row(body, model_id=model_id, index=1, default_max_tokens=default_max_tokens)


def rows(
    lines: Iterable[bytes], *, models: dict[str, str], default_max_tokens: int, into: Rows
) -> Iterator[bytes]:
    """The JSONL rows of an OpenAI batch input file, line by line; `into` collects the model,
    the custom_ids and the size. A line that cannot be translated, or a limit passed, is a 400
    naming it."""
    for number, url, body, custom_id in request_lines(lines):
        if line_endpoint(url) != CHAT_COMPLETIONS:
            raise line_error(number, f"url {url!r}: Vertex AI batches take {CHAT_COMPLETIONS} only")
        try:
            model_id = vertex_model(str(body.get("model") or ""), models)
        except InvalidRequestError as exc:
            raise line_error(number, exc.message) from None
        if into.model and model_id != into.model:
            raise line_error(number, f"model {model_id!r}: a Vertex AI batch runs one model ({into.model})")
        into.model = model_id
        try:
            row = request_row(
                body, model_id=model_id, index=len(into.custom_ids) + 1, default_max_tokens=default_max_tokens
            )
        except TranslationError as exc:
            raise line_error(number, str(exc)) from None
        into.custom_ids.append(custom_id)
        if len(into.custom_ids) > MAX_REQUESTS:
            raise InvalidRequestError(
                f"Vertex AI batch prediction takes at most {MAX_REQUESTS} requests per job; "
                "this file has more.",
                param="input_file_id",
                code="too_many_requests_in_batch",
            )
        encoded = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        into.size += len(encoded)
        if into.size > MAX_INPUT_FILE_BYTES:
            raise InvalidRequestError(
                f"Vertex AI batch prediction takes input files of at most {MAX_INPUT_FILE_BYTES} bytes; "
                "this batch's rows are larger.",
                param="input_file_id",
                code="batch_too_large",
            )
        yield encoded
    if not into.custom_ids:
        raise InvalidRequestError("The input file has no requests.", param="input_file_id", code="empty_file")


def row_index(row: dict[str, Any]) -> int | None:
    """A row's line number: its `custom_id` (Claude's rows), or its request's label (Gemini's)."""
    if "custom_id" in row:
        return line_index(row["custom_id"])
    request = row.get("request")
    labels = request.get("labels") if isinstance(request, dict) else None
    return line_index(labels.get(LINE_LABEL)) if isinstance(labels, dict) else None


def outcome(row: dict[str, Any], custom_ids: list[str], *, model: str, created: int) -> Outcome | None:
    """What became of one request, from one row of the job's `predictions.jsonl`: a `response`
    with an empty `status` succeeded, a `status` names the row's error."""
    index = row_index(row)
    if index is None or not 1 <= index <= len(custom_ids):
        return None  # not a row this gateway wrote
    custom_id = custom_ids[index - 1]
    status = row.get("status")
    response = row.get("response")
    if not status and isinstance(response, dict):
        if is_claude(model):
            return Outcome(custom_id, "succeeded", body=messages_completion(response, created=created))
        body = chat_completion(response, model=model, custom_id=custom_id, created=created)
        return Outcome(custom_id, "succeeded", body=body)
    code, message = _row_error(str(status or "The request has no response."))
    return Outcome(
        custom_id,
        "errored",
        error_type="invalid_request_error" if code < 500 and code != 429 else "api_error",
        error_message=message,
        status_code=code,
    )


def _row_error(status: str) -> tuple[int, str]:
    """(HTTP status, message) of a failed row's `status`: Google's error JSON when it holds one
    (`{"error": {"code", "message"}}`), else a 500 with the text as the message."""
    found = _STATUS_JSON.search(status)
    if found:
        try:
            error = json.loads(found.group(0)).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            return int(error["code"]), str(error.get("message") or status)
    return 500, status
