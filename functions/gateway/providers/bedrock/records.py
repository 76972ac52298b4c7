"""OpenAI batch input lines -> Amazon Bedrock batch inference records, and Bedrock's output
records -> what became of each request (`batch_results.Outcome`).

A record is `{"recordId", "modelInput"}`, `modelInput` being the InvokeModel body of the job's
model family. Supported families: Anthropic Claude (`anthropic.…`, and cross-region inference
profiles such as `us.anthropic.…` or `global.anthropic.…`), whose body is the Anthropic
Messages request without `model`, plus `"anthropic_version": "bedrock-2023-05-31"` (images as
base64 only: Bedrock refuses URL sources, so such a line is refused with its number). One job
runs one model, so every line of a batch names the same model. recordIds are the line numbers
(`R` + 10 digits): a custom_id may hold characters a recordId may not, and the custom_ids are
kept beside the job. Amazon Nova, Meta Llama 3/4 and OpenAI gpt-oss bodies and outputs are
`bedrock.families`' (one module each), chosen by `family(model_id)` (`family_input`, `outcome`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.providers.anthropic.messages import TranslationError, chat_completion, messages_request
from gateway.providers.batch_results import Outcome
from gateway.providers.bedrock import families as bedrock_families
from gateway.providers.chat_parts import CHAT_COMPLETIONS
from gateway.providers.request_lines import line_endpoint, line_error, request_lines

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# anthropic here; amazon (Nova), meta (Llama 3/4) and openai (gpt-oss) in bedrock_families
SUPPORTED_FAMILIES = ("anthropic", "amazon", "meta", "openai")
# The geographic prefixes of Bedrock's cross-region (system-defined) inference profiles.
INFERENCE_PROFILE_GEOS = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au"})
# Bedrock's batch inference quotas (defaults; the maximums are adjustable per account).
MIN_RECORDS = 100
MAX_RECORDS = 50_000
MAX_INPUT_FILE_BYTES = 1_000_000_000


def family(model_id: str) -> str:
    """`anthropic` for `anthropic.claude-…`, `us.anthropic.claude-…`, `global.anthropic.claude-…`
    and their ARNs alike."""
    parts = model_id.split("/")[-1].split(".")
    return parts[1] if len(parts) > 2 and parts[0] in INFERENCE_PROFILE_GEOS else parts[0]


def record_id(index: int) -> str:
    return f"R{index:010d}"


def record_index(value: str) -> int | None:
    if len(value) == 11 and value[0] == "R" and value[1:].isdigit():
        return int(value[1:])
    return None


@dataclass
class Records:
    """A batch's records as the job's input file, with what the job needs to know of them."""

    model_id: str = ""
    custom_ids: list[str] = field(default_factory=list)
    size: int = 0


def model_input(
    body: dict[str, Any], *, default_max_tokens: int, model_id: str | None = None
) -> dict[str, Any]:
    """The InvokeModel body of one chat completions request for a Claude model on Bedrock
    (`model_id`: the Bedrock model the job runs, when the line names an alias)."""
    params = messages_request(
        body,
        default_max_tokens=default_max_tokens,
        model_id=model_id,
        image_urls=False,
    )
    params.pop("model", None)  # the job names the model
    params.pop("metadata", None)  # InvokeModel takes no metadata.user_id
    return {"anthropic_version": BEDROCK_ANTHROPIC_VERSION, **params}


def check_line(body: dict[str, Any], *, models: dict[str, str], default_max_tokens: int) -> None:
    """The upload check of one line's body: a TranslationError (a ValueError) naming the field."""
    try:
        model_id = bedrock_model(str(body.get("model") or ""), models)
    except InvalidRequestError as exc:
        raise TranslationError("body.model", exc.message) from None
    family_input(body, default_max_tokens=default_max_tokens, model_id=model_id)


def family_input(body: dict[str, Any], *, default_max_tokens: int, model_id: str) -> dict[str, Any]:
    """The InvokeModel body of one line for the family of the model the job runs."""
    translator = bedrock_families.translator(family(model_id), model_id)
    if translator is None:
        return model_input(body, default_max_tokens=default_max_tokens, model_id=model_id)
    return translator.model_input(body, default_max_tokens=default_max_tokens, model_id=model_id)


def _supported(model_id: str) -> bool:
    name = family(model_id)
    return name == "anthropic" or bedrock_families.translator(name, model_id) is not None


def bedrock_model(model: str, models: dict[str, str]) -> str:
    """The Bedrock model id for a line's `model`: the deployment's alias, or the id itself. A
    deployment that lists its models runs those only (its service role invokes no other)."""
    model_id = models.get(model, model)
    if models and model_id not in models.values():
        raise InvalidRequestError(
            f"Model '{model}' is not configured for this Amazon Bedrock deployment; configured: "
            f"{', '.join(sorted(models))}.",
            param="model",
            code="model_not_found",
        )
    if not _supported(model_id):
        examples = ", ".join(
            ["anthropic.claude-3-5-haiku-20241022-v1:0", *bedrock_families.EXAMPLES.values()]
        )
        raise InvalidRequestError(
            f"Model '{model}' is not supported on Amazon Bedrock batches: supported model families "
            f"are Anthropic Claude, Amazon Nova, Meta Llama 3 and 4, OpenAI gpt-oss (e.g. {examples}).",
            param="model",
            code="unsupported_model",
        )
    return model_id


def records(
    lines: Iterable[bytes], *, models: dict[str, str], default_max_tokens: int, into: Records
) -> Iterator[bytes]:
    """The JSONL records of an OpenAI batch input file, line by line; `into` collects the model,
    the custom_ids and the size. A line that cannot be translated, or a limit passed, is a 400
    naming it."""
    for number, url, body, custom_id in request_lines(lines):
        if line_endpoint(url) != CHAT_COMPLETIONS:
            raise line_error(number, f"url {url!r}: Amazon Bedrock batches take {CHAT_COMPLETIONS} only")
        try:
            model_id = bedrock_model(str(body.get("model") or ""), models)
        except InvalidRequestError as exc:
            raise line_error(number, exc.message) from None
        if into.model_id and model_id != into.model_id:
            raise line_error(number, f"model {model_id!r}: a Bedrock batch runs one model ({into.model_id})")
        into.model_id = model_id
        try:
            translated = family_input(body, default_max_tokens=default_max_tokens, model_id=model_id)
        except TranslationError as exc:
            raise line_error(number, str(exc)) from None
        into.custom_ids.append(custom_id)
        if len(into.custom_ids) > MAX_RECORDS:
            raise InvalidRequestError(
                f"Amazon Bedrock batch inference takes at most {MAX_RECORDS} records per job; "
                f"this file has more.",
                param="input_file_id",
                code="too_many_requests_in_batch",
            )
        record = (
            json.dumps(
                {"recordId": record_id(len(into.custom_ids)), "modelInput": translated}, separators=(",", ":")
            ).encode()
            + b"\n"
        )
        into.size += len(record)
        if into.size > MAX_INPUT_FILE_BYTES:
            raise InvalidRequestError(
                f"Amazon Bedrock batch inference takes input files of at most {MAX_INPUT_FILE_BYTES} "
                "bytes per job; this batch's records are larger.",
                param="input_file_id",
                code="batch_too_large",
            )
        yield record


def check_minimum(count: int) -> None:
    if count < MIN_RECORDS:
        raise InvalidRequestError(
            f"Amazon Bedrock batch inference needs at least {MIN_RECORDS} records per job; "
            f"this file has {count}.",
            param="input_file_id",
            code="too_few_requests_in_batch",
        )


def outcome(line: dict[str, Any], custom_ids: list[str], created: int, model_id: str = "") -> Outcome | None:
    """What became of one request, from one line of Bedrock's `<file>.jsonl.out` of a job that
    ran `model_id` (its family's output shape)."""
    index = record_index(str(line.get("recordId") or ""))
    if index is None or not 1 <= index <= len(custom_ids):
        return None  # not a record this gateway wrote
    custom_id = custom_ids[index - 1]
    output = line.get("modelOutput")
    if isinstance(output, dict) and line.get("error") is None:
        model = model_id.split("/")[-1]  # GetModelInvocationJob may name the model by its ARN
        translator = bedrock_families.translator(family(model), model)
        if translator is None:
            return Outcome(custom_id, "succeeded", body=chat_completion(output, created=created))
        body = translator.chat_completion(output, created=created, model_id=model, record_id=record_id(index))
        return Outcome(custom_id, "succeeded", body=body)
    error = line.get("error") or {}
    status = error.get("errorCode")
    return Outcome(
        custom_id,
        "errored",
        error_type="invalid_request_error" if isinstance(status, int) and status < 500 else "api_error",
        error_message=str(error.get("errorMessage") or "Amazon Bedrock could not process this record."),
        status_code=status if isinstance(status, int) else 500,
    )
