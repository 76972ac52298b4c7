"""Usage of a finished batch, summed once from its output file, read as a stream.

Only successful lines count (`response.status_code` 2xx): a failed request costs nothing.
Chat completions, completions and embeddings report `prompt_tokens`/`completion_tokens`;
the Responses API reports `input_tokens`/`output_tokens`; both are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from gateway.models.common import GatewayModel


class InputTokensDetails(GatewayModel):
    cached_tokens: int = 0


class OutputTokensDetails(GatewayModel):
    reasoning_tokens: int = 0


class BatchUsage(GatewayModel):
    """openai-python's `BatchUsage`."""

    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class UsageTally(GatewayModel):
    """The batch's usage, with how many requests it counts and how many it does not."""

    usage: BatchUsage = Field(default_factory=BatchUsage)
    succeeded: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Counts:
    """Plain integers while the lines stream by; a model once at the end."""

    succeeded: int = 0
    failed: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def add_line(self, line: dict[str, Any]) -> None:
        response = line.get("response")
        status = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if not (isinstance(status, int) and 200 <= status < 300 and isinstance(body, dict)):
            self.failed += 1
            return
        self.succeeded += 1
        reported = body.get("usage")
        if isinstance(reported, dict):
            self.add_usage(reported)

    def add_usage(self, reported: dict[str, Any]) -> None:
        input_tokens = _count(reported, "input_tokens", "prompt_tokens")
        output_tokens = _count(reported, "output_tokens", "completion_tokens")
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.total_tokens += _count(reported, "total_tokens") or input_tokens + output_tokens
        input_details = _details(reported, "input_tokens_details", "prompt_tokens_details")
        self.cached_tokens += _count(input_details, "cached_tokens")
        output_details = _details(reported, "output_tokens_details", "completion_tokens_details")
        self.reasoning_tokens += _count(output_details, "reasoning_tokens")

    def tally(self) -> UsageTally:
        usage = BatchUsage(
            input_tokens=self.input_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=self.cached_tokens),
            output_tokens=self.output_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=self.reasoning_tokens),
            total_tokens=self.total_tokens,
        )
        return UsageTally(usage=usage, succeeded=self.succeeded, failed=self.failed)


def tally_output(lines: Iterable[bytes]) -> UsageTally:
    """Sums the usage of an output file's lines; lines that are not JSON objects count as failed."""
    counts = _Counts()
    for raw in lines:
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            counts.failed += 1
            continue
        if isinstance(line, dict):
            counts.add_line(line)
        else:
            counts.failed += 1
    return counts.tally()


def _count(source: dict[str, Any], *names: str) -> int:
    for name in names:
        value = source.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0


def _details(source: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        value = source.get(name)
        if isinstance(value, dict):
            return value
    return {}
