"""A point in time a request must answer by, shared by every provider call it makes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.runtime.settings import get_settings


@dataclass(frozen=True)
class Deadline:
    at: float  # time.monotonic() seconds

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, ceiling: float) -> float:
        """A provider call's timeout: its usual `ceiling`, never past the deadline."""
        return min(ceiling, self.remaining())

    def provider_timeout(self) -> float:
        """A provider call's timeout: the configured one, never past the deadline."""
        return self.timeout(get_settings().upstream_timeout_seconds)
