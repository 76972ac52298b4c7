"""Which creates are too large to translate and send inside the client's request.

For the provider types whose batches.create reads the kept input file, translates it and sends
it itself (Anthropic: every request inline in the Message Batches create; Gemini: a translated
file to its Files API; Vertex: translated rows to Cloud Storage; Bedrock: records to S3), a
create's time grows with its input: past API Gateway's 29 s the client gets a 504 while the
create may still finish. A create whose input is over its type's figure here takes the plan
path at once (`plan.create.plan_for`): recorded `validating`, answered with one id, the provider
batch made by the watcher as a plan of one part (or more, as the caps require). OpenAI and
Azure send only the file's id: their creates never take this path.

Each type's figure comes from its throughput measured through the local server against the
simulator (`bench/sync_create.py`: the whole create, write-ahead records included), scaled to
the create function's share of a vCPU and to a third of API Gateway's time.

The watcher sends such parts with the same code, so its time is bounded too: a part of these
types holds at most what the watcher sends in `PASS_SEND_SECONDS` (`part_max_bytes`: the plan's
byte limit, below the provider's own cap when it is smaller), and one pass submits parts while
their bytes stay within it (`runner._submit`); the next pass submits the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.routes import API_GATEWAY_TIMEOUT_SECONDS, SCHEDULED_FUNCTIONS, route
from gateway.runtime.settings import get_settings
from gateway.service.adoption import ABANDON_AFTER_SECONDS

MB = 1000 * 1000
# Of API Gateway's 29 s, what the translation and the send may take: a third, the rest a margin
# for a cold start, the records' writes and a provider slower than the simulator.
SEND_SECONDS = API_GATEWAY_TIMEOUT_SECONDS / 3
# Lambda gives a function a full vCPU at 1,769 MB of memory, a share of one below it; the bench
# runs on a full (shared) core.
FULL_VCPU_MB = 1769
CPU_SHARE = min(1.0, route("batches_create").memory_mb / FULL_VCPU_MB)
# What one watcher pass may spend sending parts: a quarter of the time after which a part left
# `submitting` is submitted again (a send three times slower than measured still ends first).
PASS_SEND_SECONDS = ABANDON_AFTER_SECONDS / 4
_WATCHER_MEMORY_MB = next(f.memory_mb for f in SCHEDULED_FUNCTIONS if f.name == "batch_watcher")
WATCHER_CPU_SHARE = min(1.0, _WATCHER_MEMORY_MB / FULL_VCPU_MB)


def threshold_for(mb_per_second: float) -> int:
    """The most input bytes a create that sends `mb_per_second` (on one core) sends in time,
    in whole MB."""
    return int(mb_per_second * CPU_SHARE * SEND_SECONDS) * MB


@dataclass(frozen=True)
class Measured:
    """A provider type's create throughput (input MB a second on one core, fixed costs counted in)."""

    mb_per_second: float
    source: str

    @property
    def max_bytes(self) -> int:
        return threshold_for(self.mb_per_second)

    @property
    def pass_bytes(self) -> int:
        """What the watcher sends in one pass's PASS_SEND_SECONDS, in whole MB."""
        return int(self.mb_per_second * WATCHER_CPU_SHARE * PASS_SEND_SECONDS) * MB


# bench/sync_create.py on 2026-12-07 (2 shared cores, 24 MB files of 500-byte lines, medians of 3
# runs): Anthropic 10.2, Gemini 5.9, Vertex 8.3, Bedrock 5.4 MB/s; kept rounded down to 0.5 MB/s.
_BENCH = "bench/sync_create.py, 24 MB, median of 3 runs, 2026-12-07"
MEASURED: dict[str, Measured] = {
    "anthropic": Measured(10.0, _BENCH),  # 27 MB sent by the create, 434 MB a pass (its cap: 256 MB)
    "gemini": Measured(5.5, _BENCH),  # 15 MB, 238 MB a pass
    "vertex": Measured(8.0, _BENCH),  # 22 MB, 347 MB a pass
    "bedrock": Measured(5.0, _BENCH),  # 13 MB, 217 MB a pass
}


def max_bytes_for(provider_type: str) -> int | None:
    """The most input bytes a create of this provider type sends itself; None: no limit (its
    create sends no input, only a file id). The `sync_create_max_bytes` setting replaces every
    type's measured figure (the local server and the tests lower it)."""
    if provider_type not in MEASURED:
        return None
    configured = get_settings().sync_create_max_bytes
    return MEASURED[provider_type].max_bytes if configured is None else configured


def deployment_type(provider: str) -> str | None:
    deployment = get_settings().providers.get(provider)
    return deployment.type if deployment is not None else None


def part_max_bytes(provider_type: str | None) -> int | None:
    """The most bytes of one part the watcher sends (None: no limit of its own: the watcher
    sends only a file id). The `sync_create_max_bytes` setting does not change it."""
    measured = MEASURED.get(provider_type or "")
    return measured.pass_bytes if measured is not None else None


def too_large_to_send(provider_type: str, size: int) -> bool:
    limit = max_bytes_for(provider_type)
    return limit is not None and size > limit
