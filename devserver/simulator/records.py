"""In-memory records of files, uploads, batches and injected faults, and their wire shapes."""

from __future__ import annotations

import secrets
import string
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .batchwork import Results, Validation
from .limits import Directive

_ALNUM = string.ascii_letters + string.digits
OPENAI = "openai"
AZURE = "azure"
ANTHROPIC = "anthropic"


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass
class FileRecord:
    id: str
    provider: str
    seq: int
    filename: str
    purpose: str
    bytes: int
    created: float
    path: str
    sha256: str
    expires_at: int | None = None
    ready_at: float = 0.0  # Azure files read "pending" until then

    @property
    def created_at(self) -> int:
        return int(self.created)

    def to_api(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed" if now >= self.ready_at else "pending",
            "status_details": None,
            "expires_at": self.expires_at,
        }


@dataclass
class PartRecord:
    id: str
    created_at: int
    path: str
    bytes: int


@dataclass
class UploadRecord:
    id: str
    provider: str
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    created_at: int
    expires_at: int
    file_expires_after: int | None = None
    status: str = "pending"
    file_id: str | None = None
    parts: dict[str, PartRecord] = field(default_factory=dict)

    def part_to_api(self, part: PartRecord) -> dict[str, Any]:
        return {"id": part.id, "object": "upload.part", "created_at": part.created_at, "upload_id": self.id}


TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class BatchRecord:
    id: str
    provider: str
    seq: int
    endpoint: str
    input_file_id: str
    input_path: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after: int | None
    created: float
    status: str = "validating"
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    stamps: dict[str, int] = field(default_factory=dict)
    # timeline (precise) and background work
    in_progress_start: float | None = None
    finalizing_start: float | None = None
    cancelling_start: float | None = None
    cancel_count: int = 0
    validation: Validation | None = None
    results: Results | None = None  # full run
    partial: Results | None = None  # the requests finished before a cancel
    abandoned: threading.Event = field(default_factory=threading.Event)
    work: Future[None] | None = None  # the background pass (validation and output)
    input_bytes: int = 0
    # the enqueued-token quota's count: the batch's prompt tokens, of `queue_model`, from its
    # in_progress time until it ends (`left_queue_at`)
    enqueued_tokens: int = 0
    queue_model: str | None = None
    left_queue_at: float | None = None
    # custom_id -> its test directive, decided once per batch (a cancel's partial pass agrees)
    directives: dict[str, Directive | None] = field(default_factory=dict)

    @property
    def created_at(self) -> int:
        return int(self.created)

    @property
    def expires_at(self) -> int:
        return self.created_at + 86400

    def enqueued_at(self, at: float) -> bool:
        """Whether the batch's tokens count against its model's quota at time `at`."""
        started = self.in_progress_start
        if started is None or started > at:
            return False
        return self.left_queue_at is None or self.left_queue_at > at

    def to_api(self) -> dict[str, Any]:
        s = self.stamps
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": s.get("in_progress_at"),
            "expires_at": self.expires_at,
            "finalizing_at": s.get("finalizing_at"),
            "completed_at": s.get("completed_at"),
            "failed_at": s.get("failed_at"),
            "expired_at": s.get("expired_at"),
            "cancelling_at": s.get("cancelling_at"),
            "cancelled_at": s.get("cancelled_at"),
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
            "model": self.model,
            "usage": self.usage,
        }


@dataclass
class Fault:
    status: int | None
    times: int
    retry_after: float | None
    delay_seconds: float
    path_contains: str
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return self.path_contains in path
