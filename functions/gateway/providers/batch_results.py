"""OpenAI batch output and error lines, from what became of each request at a provider that
speaks another API (Anthropic's Message Batches, Bedrock's batch inference).

One line per request that ran or expired: a succeeded one in the output file (`response.body` a
`chat.completion`), an errored or expired one in the error file with OpenAI's `error` shapes. A
request a cancel left unrun has no line and is not counted `failed`, as at OpenAI (a cancelled
batch's counts and files hold the requests that ran; `total` all of them). Line ids derive from
the batch and the custom_id, so a file built twice is the same file. A failed request's
`response.body.error.code` is OpenAI's for its status (`error_code`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

OutcomeKind = Literal["succeeded", "errored", "canceled", "expired"]
OUTPUT, ERROR = "output", "error"

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


@dataclass(frozen=True)
class Outcome:
    """One request's end. `body`: the chat.completion of a succeeded one; `error_type`,
    `error_message`, `status_code`: what the provider said of an errored one."""

    custom_id: str
    kind: OutcomeKind
    body: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    status_code: int = 400
    request_id: str | None = None


def has_line(outcome: Outcome) -> bool:
    """Whether the outcome is written to a file: not for a request a cancel left unrun."""
    return outcome.kind != "canceled"


def result_line(outcome: Outcome, batch_id: str) -> tuple[str, dict[str, Any]]:
    """(OUTPUT or ERROR, the line) for one outcome of batch `batch_id` (the gateway-facing id
    the files belong to, or the upstream id: anything fixed per batch); never for a `canceled`
    one (`has_line`)."""
    if not has_line(outcome):
        raise ValueError("a request a cancel left unrun has no result line")
    line_id = "batch_req_" + hashlib.sha256(f"{batch_id}\x00{outcome.custom_id}".encode()).hexdigest()[:32]
    request_id = outcome.request_id or "req_" + line_id.removeprefix("batch_req_")
    if outcome.kind == "succeeded":
        response = {"status_code": 200, "request_id": request_id, "body": outcome.body}
        return OUTPUT, {"id": line_id, "custom_id": outcome.custom_id, "response": response, "error": None}
    if outcome.kind == "errored":
        error = {
            "message": outcome.error_message or "The provider could not process this request.",
            "type": outcome.error_type or "invalid_request_error",
            "param": None,
            "code": error_code(outcome.status_code),
        }
        response = {"status_code": outcome.status_code, "request_id": request_id, "body": {"error": error}}
        return ERROR, {"id": line_id, "custom_id": outcome.custom_id, "response": response, "error": None}
    return ERROR, {
        "id": line_id,
        "custom_id": outcome.custom_id,
        "response": None,
        "error": {"code": "batch_expired", "message": EXPIRED_MESSAGE},
    }


def error_code(status_code: int) -> str | None:
    """OpenAI's code for a request that failed with this status at a provider that names no code
    (Anthropic's error types, Bedrock's errorCode): what a retry of failed lines selects by
    (`rate_limit_exceeded`, `server_error`); None where OpenAI would name the request's problem."""
    if status_code == 429:
        return "rate_limit_exceeded"
    return "server_error" if status_code >= 500 else None


def encoded(line: dict[str, Any]) -> bytes:
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
