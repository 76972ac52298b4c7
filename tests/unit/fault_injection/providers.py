"""A small in-memory provider for the fault-injection tests: batches whose status a test sets,
a `stall` that blocks calls the way a hung provider does (until the call's own timeout), and
a record of each call's timeout. Written against the provider's HTTP API shapes only."""

from __future__ import annotations

import copy
import threading
from typing import Any

from gateway.storage.id_map import IdMap, ObjectRecord


class FakeProvider:
    def __init__(self) -> None:
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.timeouts: list[float | None] = []
        self.stall = threading.Event()  # set: every call hangs until its timeout
        self.fail = False  # every call raises, as an unreachable provider does
        self.list_fails = False  # the list call alone answers a 5xx at once
        self.on_retrieve_file: Any = None  # called before retrieve_file answers

    def _enter(self, call: str, timeout: float | None) -> None:
        self.calls.append(call)
        self.timeouts.append(timeout)
        if self.fail:
            raise ConnectionError("provider unreachable")
        if self.stall.is_set():
            threading.Event().wait(timeout if timeout is not None else 60)
            raise TimeoutError(f"{call}: no answer within {timeout} s")

    def retrieve_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter(f"retrieve_batch {upstream_id}", timeout)
        return copy.deepcopy(self.batches[upstream_id])

    def list_batches(
        self, *, limit: int = 20, after: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        if self.list_fails:
            self.calls.append("list_batches")
            self.timeouts.append(timeout)
            raise RuntimeError("provider answered 500")
        self._enter("list_batches", timeout)
        newest = sorted(self.batches.values(), key=lambda b: (-b["created_at"], b["id"]))
        if after is not None:  # the page after that batch, as OpenAI's cursor
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        return {"object": "list", "data": copy.deepcopy(newest[:limit]), "has_more": len(newest) > limit}

    def cancel_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """As OpenAI: an unfinished batch reads `cancelling` until its requests stop."""
        self._enter(f"cancel_batch {upstream_id}", timeout)
        batch = self.batches[upstream_id]
        if batch["status"] not in {"completed", "failed", "expired", "cancelled"}:
            batch["status"] = "cancelling"
        return copy.deepcopy(batch)

    def retrieve_file(self, upstream_id: str) -> dict[str, Any]:
        self._enter(f"retrieve_file {upstream_id}", None)
        if self.on_retrieve_file is not None:
            self.on_retrieve_file()
        return copy.deepcopy(self.files[upstream_id])


def store_batch(
    provider: FakeProvider, number: int, status: str = "in_progress", owner: str = "master"
) -> str:
    """A batch the provider holds as `up-batch-<n>`, recorded in the table as the gateway would."""
    upstream_id, gateway_id = f"up-batch-{number}", f"batch_{number:04d}"
    created_at = 1_700_000_000 + number
    upstream = {
        "id": upstream_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "up-file-in",
        "completion_window": "24h",
        "status": status,
        "created_at": created_at,
    }
    provider.batches[upstream_id] = upstream
    IdMap().put(
        ObjectRecord(
            id=gateway_id,
            kind="batch",
            owner=owner,
            provider="openai",
            created_at=created_at,
            object={**upstream, "id": gateway_id, "input_file_id": "file-in"},
            upstream_id=upstream_id,
            state={"input_file_id": "file-in"},
        )
    )
    return gateway_id
