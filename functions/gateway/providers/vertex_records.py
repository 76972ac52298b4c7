"""OpenAI batch input lines -> Vertex AI batch prediction rows, and prediction rows -> what became
of each request (`batch_results.Outcome`).

A row is `{"request": GenerateContentRequest}`
(https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage),
the request being `gemini_content.generate_content_request`'s. Vertex copies each row's
`request` into its output row and does not keep the input order (rows run in parallel), so the
row's place travels in the request itself: a `labels` entry `gateway_line: l<number>`
(GenerateContentRequest.labels, "user-defined metadata",
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/generateContent).
Label values take only lowercase letters, digits, `_` and `-`, so the custom_id itself (any
string) stays in the gateway's note, by line number. One job runs one model: every line of a
batch names the same Gemini model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.providers.batch_results import Outcome
from gateway.providers.bedrock_records import line_endpoint
from gateway.providers.chat_to_messages import TranslationError
from gateway.providers.gemini_content import chat_completion, generate_content_request

CHAT_COMPLETIONS = "/v1/chat/completions"
LINE_LABEL = "gateway_line"
GEMINI_PUBLISHER = "publishers/google/models/"
# "Quotas and limits" of https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini
MAX_REQUESTS = 200_000
MAX_INPUT_FILE_BYTES = 1_000_000_000
_MODEL_ID = re.compile(r"^gemini-[a-z0-9][a-z0-9.-]*(@[a-z0-9-]+)?$")
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

    model: str = ""  # the Gemini model id (`gemini-2.5-flash`)
    custom_ids: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def model_resource(self) -> str:
        return GEMINI_PUBLISHER + self.model


def vertex_model(model: str, models: dict[str, str]) -> str:
    """The Gemini model id of a line's `model`: the deployment's alias, or the id itself (a
    `publishers/google/models/` prefix is dropped). A deployment that lists its models runs
    those only."""
    model_id = models.get(model, model).removeprefix(GEMINI_PUBLISHER)
    if models and model_id not in {value.removeprefix(GEMINI_PUBLISHER) for value in models.values()}:
        raise InvalidRequestError(
            f"Model '{model}' is not configured for this Vertex AI deployment; configured: "
            f"{', '.join(sorted(models))}.",
            param="model",
            code="model_not_found",
        )
    if not _MODEL_ID.match(model_id):
        raise InvalidRequestError(
            f"Model '{model}' is not supported on Vertex AI batches: Gemini models only "
            "(e.g. gemini-2.5-flash).",
            param="model",
            code="unsupported_model",
        )
    return model_id


def request_row(body: dict[str, Any], *, model_id: str, index: int) -> dict[str, Any]:
    """One input row: the GenerateContentRequest of a chat completions body, its line labelled."""
    request = generate_content_request(body, model=model_id)
    request["labels"] = {LINE_LABEL: line_label(index)}
    return {"request": request}


def check_line(body: dict[str, Any], *, models: dict[str, str]) -> None:
    """The upload check of one line's body: a TranslationError (a ValueError) naming the field."""
    try:
        model_id = vertex_model(str(body.get("model") or ""), models)
    except InvalidRequestError as exc:
        raise TranslationError("body.model", exc.message) from None
    generate_content_request(body, model=model_id)


def rows(lines: Iterable[bytes], *, models: dict[str, str], into: Rows) -> Iterator[bytes]:
    """The JSONL rows of an OpenAI batch input file, line by line; `into` collects the model,
    the custom_ids and the size. A line that cannot be translated, or a limit passed, is a 400
    naming it."""
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            url = line.get("url")
            body = line["body"]
            custom_id = str(line["custom_id"])
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _line_error(number, "is not a batch request line (custom_id, method, url, body)") from None
        if line_endpoint(url) != CHAT_COMPLETIONS:
            raise _line_error(number, f"url {url!r}: Vertex AI batches take {CHAT_COMPLETIONS} only")
        try:
            model_id = vertex_model(str(body.get("model") or ""), models)
        except InvalidRequestError as exc:
            raise _line_error(number, exc.message) from None
        if into.model and model_id != into.model:
            raise _line_error(number, f"model {model_id!r}: a Vertex AI batch runs one model ({into.model})")
        into.model = model_id
        try:
            row = request_row(body, model_id=model_id, index=len(into.custom_ids) + 1)
        except TranslationError as exc:
            raise _line_error(number, str(exc)) from None
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


def _line_error(number: int, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Line {number}: {message}", param="input_file_id", code="invalid_batch_line")


def row_index(row: dict[str, Any]) -> int | None:
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
