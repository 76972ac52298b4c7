"""What each simulated provider caps and refuses, and the test directives a line's id can carry.

Limits (``SimulatorLimits``, set per run as ``SimulatorConfig.limits``, by ``make serve``'s
``SIM_LIMITS`` JSON, or at run time with ``POST /_sim/limits``). A None cap per batch is the
provider's documented one (``DEFAULTS``, written out here so the simulator stays independent of
the gateway's own table); a None quota is none (quotas depend on an account's tier: a test sets
the one it exercises):

- ``max_requests`` / ``max_bytes``: one batch. OpenAI and Azure fail a batch over them at
  validation (``too_many_tasks``, ``file_too_large``), Anthropic answers the create 400 (413 for
  its body), a Bedrock job over them ends ``Failed``.
- ``enqueued_tokens`` (and ``enqueued_tokens_by_model``): OpenAI's and Azure's quota of prompt
  tokens over a model's batches in progress. A batch that would pass it is created, then fails
  at validation with ``errors.data[0].code == "token_limit_exceeded"`` and the message each sends.
- ``queued_requests``: Anthropic's "batch requests in the processing queue" over batches not
  ended; a create past it answers 429 ``rate_limit_error``.
- ``concurrent_jobs``: Bedrock's submitted and in-progress jobs per model; a create past it
  raises ``ServiceQuotaExceededException``.

Directives (decided once per line, on its first attempt, per custom_id: a later batch holding
the same custom_id runs it normally, as a gateway's retry of the line should see):

- ``...sim-expire...``: the line expires. OpenAI/Azure: an error line with code
  ``batch_expired`` and the batch ends ``expired``; Anthropic: an ``expired`` result; Bedrock:
  the record gets no output and the job ends ``Expired``.
- ``...sim-fail-<code>...`` (``<code>`` of letters and ``_``): the request fails with that code.
  OpenAI/Azure: ``response.body.error.code == <code>`` (status 429 for ``rate_limit_exceeded``,
  500 for ``server_error``, else 400); Anthropic: an ``errored`` result whose error type is
  Anthropic's for that status (``rate_limit_error``, ``api_error``, ``invalid_request_error``);
  Bedrock: the record's ``error`` with that ``errorCode`` status.

OpenAI, Azure and Anthropic read the directive in the custom_id (Anthropic's: one its pattern
takes, 64 characters at most, or the gateway sends a stand-in). A Bedrock record has neither a
custom_id (only a recordId, the line number within its job) nor metadata, so the Bedrock form
reads it in the text of the record's messages (the line's prompt), counted per that text.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, fields
from typing import Any

MIB = 1024 * 1024

# The documented defaults per form: (max_requests, max_bytes).
DEFAULTS: dict[str, tuple[int, int]] = {
    "openai": (50_000, 200 * MIB),
    "azure": (100_000, 200 * MIB),
    "anthropic": (100_000, 256 * MIB),
    "bedrock": (50_000, 1_000_000_000),
    # Gemini Batch Mode: a 2 GB input file; no documented count of requests per batch
    "gemini": (1_000_000, 2_000_000_000),
    # Vertex AI batch prediction for Gemini: requests per job and input file size
    # (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini)
    "vertex": (200_000, 1_000_000_000),
}
_DIRECTIVE = re.compile(r"sim-(expire|fail-([a-z_]+))")
_FAIL_STATUS = {"rate_limit_exceeded": 429, "server_error": 500}


@dataclass
class SimulatorLimits:
    max_requests: int | None = None
    max_bytes: int | None = None
    enqueued_tokens: int | None = None
    enqueued_tokens_by_model: dict[str, int] = field(default_factory=dict)
    queued_requests: int | None = None
    concurrent_jobs: int | None = None

    def requests_for(self, form: str) -> int:
        return self.max_requests or DEFAULTS[form][0]

    def bytes_for(self, form: str) -> int:
        return self.max_bytes or DEFAULTS[form][1]

    def tokens_for(self, model: str | None) -> int | None:
        if model is not None and model in self.enqueued_tokens_by_model:
            return self.enqueued_tokens_by_model[model]
        return self.enqueued_tokens

    @classmethod
    def parse(cls, raw: Any) -> SimulatorLimits:
        """From JSON (``SIMULATOR_LIMITS``, ``POST /_sim/limits``); ValueError names a bad field."""
        if not isinstance(raw, dict):
            raise ValueError("limits must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(names)}")
        for name, value in raw.items():
            per_model = name == "enqueued_tokens_by_model"
            if per_model and not isinstance(value, dict):
                raise ValueError("enqueued_tokens_by_model maps a model to a positive integer")
            values = value.values() if per_model else [value]
            for item in values:
                if item is not None and (not isinstance(item, int) or isinstance(item, bool) or item < 1):
                    raise ValueError(f"{name} must be a positive integer or null")
        return cls(**raw)


@dataclass(frozen=True)
class Directive:
    kind: str  # "expire" or "fail"
    code: str | None = None

    @property
    def status(self) -> int:
        return _FAIL_STATUS.get(self.code or "", 400)

    @property
    def message(self) -> str:
        return f"Simulated failure ({self.code}) on this request's first attempt."


def directive_in(text: str | None) -> Directive | None:
    match = _DIRECTIVE.search(text or "")
    if match is None:
        return None
    return Directive("expire") if match.group(1) == "expire" else Directive("fail", match.group(2))


class FirstAttempts:
    """Which line ids have had their directive applied already (one set per provider form)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def take(self, form: str, line_id: str | None) -> Directive | None:
        """The directive of `line_id` if this is its first attempt, else None (it runs normally)."""
        found = directive_in(line_id)
        if found is None or line_id is None:
            return None
        with self._lock:
            if (form, line_id) in self._seen:
                return None
            self._seen.add((form, line_id))
        return found

    def seen(self) -> set[tuple[str, str]]:
        """A copy, for the local server's snapshot."""
        with self._lock:
            return set(self._seen)

    def restore(self, seen: set[tuple[str, str]]) -> None:
        with self._lock:
            self._seen |= seen

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def compact(number: int) -> str:
    """Azure's way of writing a quota in its message: 30K, 200M, 5B."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if number >= size and number % size == 0:
            return f"{number // size}{suffix}"
    return str(number)
