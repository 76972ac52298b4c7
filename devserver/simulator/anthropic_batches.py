"""Anthropic's Message Batches API: create, retrieve, list, cancel, delete, results (JSONL).

Shapes as Anthropic documents them (`message_batch` objects with RFC 3339 times,
`request_counts`, `results_url`; errors as ``{"type": "error", "error": {type, message}}``).
A batch is `in_progress` for two phases (``batch_phase_seconds`` each): its requests finish one
after another through the second, then it has `ended`. A cancel makes it `canceling` for one
phase, then `ended`, the requests not finished by the cancel `canceled`. Results are worked out
when read, by the Messages responder (`anthropic_messages`), the same each time. Limits and the
test directives (`limits`): requests and bytes per batch, the requests in the processing queue
(a create past it answers 429 `rate_limit_error`); `sim-expire` / `sim-fail-<code>` in a
custom_id give that request an `expired` / `errored` result on its first attempt.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .anthropic_messages import MessageError, message_for
from .errors import ApiError
from .limits import Directive, FirstAttempts, SimulatorLimits

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EXPIRY_SECONDS = 24 * 3600
_ALNUM = string.ascii_letters + string.digits


class AnthropicError(ApiError):
    """An HTTP error answered in Anthropic's shape."""

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


def invalid(message: str) -> AnthropicError:
    return AnthropicError(400, message, type="invalid_request_error")


def not_found(batch_id: str) -> AnthropicError:
    return AnthropicError(404, f"Message batch {batch_id} not found.", type="not_found_error")


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MB" if count % (1024 * 1024) == 0 else f"{count} bytes"


def rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class MessageBatch:
    id: str
    seq: int
    created: float
    requests: list[dict[str, Any]]
    phase: float
    cancel_at: float | None = None
    deleted: bool = False
    directives: dict[int, Directive] = field(default_factory=dict)  # request index -> directive

    def finish_time(self, index: int) -> float:
        return self.created + self.phase + self.phase * (index + 1) / len(self.requests)

    def ended_at(self) -> float:
        if self.cancel_at is not None:
            return min(self.cancel_at + self.phase, self.created + 2 * self.phase)
        return self.created + 2 * self.phase

    def status(self, now: float) -> str:
        if now >= self.ended_at():
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"

    def outcome(self, index: int, now: float) -> str:
        """processing, canceled, or done (succeeded or errored: see `result`)."""
        done_at = self.finish_time(index)
        if self.cancel_at is not None and done_at > self.cancel_at:
            return "canceled" if now >= self.ended_at() else "processing"
        return "done" if now >= done_at else "processing"

    def queued(self, now: float) -> int:
        """Requests still waiting to be processed (the processing queue's count)."""
        if self.status(now) == "ended":
            return 0
        until = now if self.cancel_at is None else min(now, self.cancel_at)
        total = len(self.requests)
        done = math.floor((until - self.created - self.phase) * total / self.phase) if self.phase else 0
        return total - max(0, min(total, done))

    def result(self, index: int) -> dict[str, Any]:
        request = self.requests[index]
        directive = self.directives.get(index)
        if directive is not None and directive.kind == "expire":
            return {"type": "expired"}
        if directive is not None:
            status = directive.status
            kind = "invalid_request_error"
            if status == 429 or status >= 500:
                kind = "rate_limit_error" if status == 429 else "api_error"
            error = MessageError(kind, directive.message, status)
            return {"type": "errored", "error": error.error_response("req_" + self.id[-12:])}
        try:
            return {"type": "succeeded", "message": message_for(request.get("params"), seed=self.id)}
        except MessageError as exc:
            return {"type": "errored", "error": exc.error_response("req_" + self.id[-12:])}

    def counts(self, now: float) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for index in range(len(self.requests)):
            outcome = self.outcome(index, now)
            if outcome == "done":
                counts[self.result(index)["type"]] += 1
            else:
                counts[outcome] += 1
        return counts

    def to_api(self, base_url: str, now: float) -> dict[str, Any]:
        status = self.status(now)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": self.counts(now),
            "ended_at": rfc3339(self.ended_at()) if status == "ended" else None,
            "created_at": rfc3339(self.created),
            "expires_at": rfc3339(self.created + EXPIRY_SECONDS),
            "archived_at": None,
            "cancel_initiated_at": rfc3339(self.cancel_at),
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if status == "ended" else None,
        }


@dataclass
class AnthropicBatches:
    """Every simulated Anthropic batch, under one lock."""

    phase_seconds: Any  # () -> float: the simulator config's current batch phase
    clock: Callable[[], float] = time.time
    batches: dict[str, MessageBatch] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    limits: Callable[[], SimulatorLimits] = SimulatorLimits
    first_attempts: FirstAttempts = field(default_factory=FirstAttempts)
    _seq: int = 0

    def create(self, body: Any, size: int, base_url: str) -> dict[str, Any]:
        limits = self.limits()
        most_bytes = limits.bytes_for("anthropic")
        if size > most_bytes:
            raise AnthropicError(
                413,
                f"Request exceeds the maximum allowed size of {_size(most_bytes)}.",
                type="request_too_large",
            )
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise invalid("requests: List should have at least 1 item")
        most = limits.requests_for("anthropic")
        if len(requests) > most:
            raise invalid(f"requests: List should have at most {most} items")
        seen: set[str] = set()
        for index, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise invalid(
                    f"requests.{index}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'"
                )
            if custom_id in seen:
                raise invalid(f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}")
            seen.add(custom_id)
            if not isinstance(request.get("params"), dict):
                raise invalid(f"requests.{index}.params: Field required")
        with self.lock:
            now = self.clock()
            if limits.queued_requests is not None:
                queued = sum(batch.queued(now) for batch in self.batches.values() if not batch.deleted)
                if queued + len(requests) > limits.queued_requests:
                    raise AnthropicError(
                        429,
                        f"This request would exceed your organization's limit of {limits.queued_requests} "
                        "message batch requests in the processing queue. Please wait for batches in "
                        "progress to end before creating more.",
                        type="rate_limit_error",
                        headers={"retry-after": str(max(1, math.ceil(float(self.phase_seconds()))))},
                    )
            self._seq += 1
            batch_id = "msgbatch_" + "".join(secrets.choice(_ALNUM) for _ in range(24))
            batch = MessageBatch(batch_id, self._seq, now, requests, float(self.phase_seconds()))
            for index, request in enumerate(requests):
                if directive := self.first_attempts.take("anthropic", request["custom_id"]):
                    batch.directives[index] = directive
            self.batches[batch_id] = batch
            return batch.to_api(base_url, now)

    def _batch(self, batch_id: str) -> MessageBatch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.deleted:
            raise not_found(batch_id)
        return batch

    def retrieve(self, batch_id: str, base_url: str) -> dict[str, Any]:
        with self.lock:
            return self._batch(batch_id).to_api(base_url, self.clock())

    def list(self, query: dict[str, str], base_url: str) -> dict[str, Any]:
        try:
            limit = int(query.get("limit") or 20)
        except ValueError:
            raise invalid("limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise invalid("limit: Input should be between 1 and 1000")
        with self.lock:
            newest = sorted((b for b in self.batches.values() if not b.deleted), key=lambda b: -b.seq)
            if after := query.get("after_id"):
                ids = [b.id for b in newest]
                if after not in ids:
                    raise not_found(after)
                newest = newest[ids.index(after) + 1 :]
            if before := query.get("before_id"):
                ids = [b.id for b in newest]
                if before not in ids:
                    raise not_found(before)
                newest = newest[: ids.index(before)][-limit:]
            page = newest[:limit]
            now = self.clock()
            data = [b.to_api(base_url, now) for b in page]
            return {
                "data": data,
                "has_more": len(newest) > limit,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }

    def cancel(self, batch_id: str, base_url: str) -> dict[str, Any]:
        with self.lock:
            batch = self._batch(batch_id)
            now = self.clock()
            if batch.status(now) == "in_progress":
                batch.cancel_at = now
            return batch.to_api(base_url, now)

    def delete(self, batch_id: str) -> dict[str, Any]:
        with self.lock:
            batch = self._batch(batch_id)
            if batch.status(self.clock()) != "ended":
                raise invalid(
                    f"Message batch {batch_id} has not ended yet and cannot be deleted; cancel it first."
                )
            batch.deleted = True
            return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        with self.lock:
            batch = self._batch(batch_id)
            now = self.clock()
            if batch.status(now) != "ended":
                raise invalid(f"Message batch {batch_id} has not ended yet: its results are not available.")
            lines = []
            for index, request in enumerate(batch.requests):
                outcome = batch.outcome(index, now)
                result = batch.result(index) if outcome == "done" else {"type": outcome}
                lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}) + "\n")
            return "".join(lines).encode()
