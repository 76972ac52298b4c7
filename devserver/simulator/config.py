"""Simulator settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .limits import SimulatorLimits


class SteppedClock:
    """A clock that moves only when stepped: pass it as ``SimulatorConfig.clock`` (or set it as an
    Anthropic batches' or Bedrock jobs' ``clock``) to drive them through their states in a test."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SimulatorConfig:
    """How the simulator listens and behaves.

    ``port=0`` picks a free port. ``storage_dir=None`` keeps files in a temporary directory that
    ``Simulator.stop()`` removes. Each batch phase (validating, in_progress, finalizing, and
    cancelling) lasts ``batch_phase_seconds``. Azure files read ``pending`` for
    ``azure_file_processing_seconds`` after upload (default: half a batch phase, at most one second).
    ``clock`` is the time Anthropic batches and Bedrock jobs move along by: a test passes its own
    to step them through their states (the OpenAI and Azure forms' batches follow it too).
    ``limits``: the caps and quotas each form enforces (``limits.SimulatorLimits``; None figures
    are the providers' documented defaults).
    """

    port: int = 0
    openai_key: str = "sim-openai-key"
    azure_key: str = "sim-azure-key"
    anthropic_key: str = "sim-anthropic-key"
    gemini_key: str = "sim-gemini-key"
    batch_phase_seconds: float = 0.5
    storage_dir: str | None = None
    host: str = "127.0.0.1"
    azure_file_processing_seconds: float | None = None
    log_requests: bool = False
    clock: Callable[[], float] = time.time
    limits: SimulatorLimits = field(default_factory=SimulatorLimits)

    def azure_processing_seconds(self) -> float:
        if self.azure_file_processing_seconds is not None:
            return max(0.0, self.azure_file_processing_seconds)
        return min(max(0.0, self.batch_phase_seconds) / 2, 1.0)
