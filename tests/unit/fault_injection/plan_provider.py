"""An in-memory provider for the plan tests: files with content, batches a test finishes when it
says so (no clock, no thread), OpenAI's quota behaviour (a batch over the enqueued-token quota
is created and then reads `failed` with `token_limit_exceeded`) or a synchronous refusal
(`QuotaRefused`, as Anthropic's 429 and Bedrock's ServiceQuotaExceededException). Written
against the adapter interface (providers.api.ProviderApi) only."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.providers.caps import BatchCaps
from gateway.providers.errors import QuotaRefused
from gateway.providers.kept_files import KeptFiles, is_kept

TERMINAL = {"completed", "failed", "expired", "cancelled"}
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def request_line(number: int, custom_id: str | None = None) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{number}"}], "max_tokens": 5}
    line = {
        "custom_id": custom_id or f"req-{number}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }
    return json.dumps(line).encode()


def token_estimate(content: bytes) -> int:
    return sum(len(line) // 4 + 1 for line in content.splitlines() if line.strip())


class _Response:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        size = chunk_size or 65536
        for start in range(0, len(self.data), size):
            yield self.data[start : start + size]


class PlanProvider:
    def __init__(
        self, caps: BatchCaps, *, quota_tokens: int | None = None, refuse_sync: bool = False
    ) -> None:
        self.caps = caps
        self.quota_tokens = quota_tokens  # the provider's own enqueued-token quota
        self.refuse_sync = refuse_sync  # a refusal is a QuotaRefused at create (Anthropic, Bedrock)
        self.files: dict[str, bytes] = {}
        self.file_objects: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.refusals = 0
        self.attempted: set[str] = set()  # custom_ids run once (a directive acts on the first)
        self.fail = False  # every call raises, as an unreachable provider does
        self._seq = 0
        self.now = int(time.time())

    @property
    def kept(self) -> KeptFiles:
        """The gateway's own files (a plan's merged ones), which every adapter's file methods read."""
        return KeptFiles("openai")

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def _enter(self) -> None:
        if self.fail:
            raise ConnectionError("provider unreachable")

    # adapter interface ---------------------------------------------------------------------
    def batch_caps(self, model: str) -> BatchCaps:
        return self.caps

    def quota_refused(self, batch: dict[str, Any]) -> bool:
        errors = (batch.get("errors") or {}).get("data") or []
        return batch.get("status") == "failed" and any(
            e.get("code") == "token_limit_exceeded" for e in errors
        )

    def create_file(self, *, filename: str, content: Any, purpose: str, **_: Any) -> dict[str, Any]:
        self._enter()
        data = content if isinstance(content, bytes) else content.read()
        file_id = self._next("up-file")
        self.files[file_id] = data
        self.file_objects[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": self.now,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        return copy.deepcopy(self.file_objects[file_id])

    def list_files(
        self, *, purpose: str | None = None, limit: int = 100, after: str | None = None, **_: Any
    ) -> dict[str, Any]:
        """Newest first (creation, then id), as OpenAI's `order=desc`."""
        self._enter()
        newest = sorted(
            (f for f in self.file_objects.values() if purpose is None or f["purpose"] == purpose),
            key=lambda f: (f["created_at"], int(f["id"].rsplit("-", 1)[1])),
            reverse=True,
        )
        if after is not None:
            ids = [f["id"] for f in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        return {"object": "list", "data": copy.deepcopy(newest[:limit]), "has_more": len(newest) > limit}

    def retrieve_file(self, file_id: str) -> dict[str, Any]:
        self._enter()
        if is_kept(file_id):
            return self.kept.retrieve_file(file_id)
        return copy.deepcopy(self.file_objects[file_id])

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self._enter()
        if is_kept(file_id):
            return self.kept.delete_file(file_id)
        del self.files[file_id], self.file_objects[file_id]
        return {"id": file_id, "object": "file", "deleted": True}

    @contextmanager
    def stream_file_content(self, file_id: str) -> Iterator[_Response]:
        self._enter()
        yield _Response(self.file_content(file_id))

    def file_content(self, file_id: str) -> bytes:
        return self.kept.file_content(file_id) if is_kept(file_id) else self.files[file_id]

    def _in_flight_tokens(self) -> int:
        return sum(
            token_estimate(self.files[b["input_file_id"]])
            for b in self.batches.values()
            if b["status"] not in TERMINAL
        )

    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        self._enter()
        count = len([line for line in self.files[body["input_file_id"]].splitlines() if line.strip()])
        if self.caps.min_requests is not None and count < self.caps.min_requests:
            # as the Bedrock adapter refuses a job under Bedrock's minimum, before any job
            raise InvalidRequestError(
                f"needs at least {self.caps.min_requests} records per job; this file has {count}.",
                param="input_file_id",
                code="too_few_requests_in_batch",
            )
        tokens = token_estimate(self.files[body["input_file_id"]])
        over = self.quota_tokens is not None and self._in_flight_tokens() + tokens > self.quota_tokens
        if over and self.refuse_sync:
            self.refusals += 1
            raise QuotaRefused(
                429, "Number of concurrent batches exceeds your quota.", error_type="rate_limit_error"
            )
        self.creates.append(copy.deepcopy(body))
        batch_id = self._next("up-batch")
        lines = len([line for line in self.files[body["input_file_id"]].splitlines() if line.strip()])
        batch: dict[str, Any] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "in_progress",
            "created_at": self.now,
            "metadata": body.get("metadata"),
            "request_counts": {"total": lines, "completed": 0, "failed": 0},
            "output_file_id": None,
            "error_file_id": None,
        }
        if over:  # OpenAI and Azure: created, then failed for the enqueued-token quota
            self.refusals += 1
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "token_limit_exceeded", "message": "Enqueued token limit reached."}],
            }
        self.batches[batch_id] = batch
        return copy.deepcopy(batch)

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter()
        return copy.deepcopy(self.batches[batch_id])

    def list_batches(
        self, *, limit: int = 20, after: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        self._enter()
        newest = sorted(self.batches.values(), key=lambda b: (-b["created_at"], b["id"]), reverse=False)
        if after is not None:
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        return {"object": "list", "data": copy.deepcopy(newest[:limit]), "has_more": len(newest) > limit}

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        self._enter()
        batch = self.batches[batch_id]
        if batch["status"] not in TERMINAL:
            batch["status"] = "cancelling"
        return copy.deepcopy(batch)

    # the test's hand ------------------------------------------------------------------------
    def running(self) -> list[str]:
        return [b["id"] for b in self.batches.values() if b["status"] not in TERMINAL]

    def finish(self, batch_id: str, *, expire_after: int | None = None) -> None:
        """The batch ends: every request answered (output lines in reverse order, as a provider
        may write them), `...fail...` custom_ids in the error file; `expire_after`: only that
        many requests ran before the batch expired; a cancelling batch ends `cancelled` after
        half its requests."""
        batch = self.batches[batch_id]
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines() if line.strip()]
        status = "completed"
        if batch["status"] == "cancelling":
            lines, status = lines[: len(lines) // 2], "cancelled"
        elif expire_after is not None:
            lines, status = lines[:expire_after], "expired"
        output, errors = io.BytesIO(), io.BytesIO()
        for line in reversed(lines):
            custom_id = line["custom_id"]
            first = custom_id not in self.attempted  # as the simulator: a directive acts once
            self.attempted.add(custom_id)
            if "sim-expire" in custom_id and first:
                error = {"code": "batch_expired", "message": "expired"}
                errors.write(
                    json.dumps(
                        {"id": f"r-{custom_id}", "custom_id": custom_id, "response": None, "error": error}
                    ).encode()
                    + b"\n"
                )
            elif "fail" in custom_id and (first or "always" in custom_id):
                error = {"code": "server_error", "message": "failed"}
                errors.write(
                    json.dumps(
                        {"id": f"r-{custom_id}", "custom_id": custom_id, "response": None, "error": error}
                    ).encode()
                    + b"\n"
                )
            else:
                response = {
                    "status_code": 200,
                    "request_id": "x",
                    "body": {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "usage": USAGE},
                }
                output.write(
                    json.dumps(
                        {"id": f"r-{custom_id}", "custom_id": custom_id, "response": response, "error": None}
                    ).encode()
                    + b"\n"
                )
        for name, stream in (("output_file_id", output), ("error_file_id", errors)):
            if stream.tell():
                batch[name] = self.create_file(
                    filename=f"{batch_id}_{name}.jsonl", content=stream.getvalue(), purpose="batch_output"
                )["id"]
        failed = errors.getvalue().count(b"\n")
        batch["request_counts"] = {
            "total": batch["request_counts"]["total"],
            "completed": output.getvalue().count(b"\n"),
            "failed": failed,
        }
        batch["status"] = status
        batch[f"{status}_at"] = self.now
