"""What one provider batch may hold (helper `caps` owns this module; this is the agreed shape)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchCaps:
    max_requests: int  # lines in one provider batch
    max_bytes: int  # bytes of one provider batch input file
    enqueued_tokens: int | None  # the provider's enqueued-token quota for this model (None: none)
    max_concurrent: int | None  # provider batches that may run at once (None: no cap)
