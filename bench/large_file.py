"""Large batch files through the gateway: throughput of each leg and the server's peak memory.

    .venv/bin/python bench/large_file.py                          # 20 MB and 200 MB, ~3-5 minutes
    .venv/bin/python bench/large_file.py --sizes 20 --keep-temp   # one size, keep files and logs
    .venv/bin/python bench/large_file.py --sizes 20,200 --runs 3 --json bench/results/large_file.json

For each size (MB = 10^6 bytes) the bench starts a fresh stack of three processes of its own,
as in AWS where S3 and the provider are remote and the serving process is the gateway alone:

- the provider simulator, `python -m devserver.simulator` (batch phases of `--phase-seconds`),
- a moto server, `python -m moto.server` (S3 objects over MOTO_S3_DEFAULT_KEY_BUFFER_SIZE
  spool to disk, so moto does not hold every part in memory),
- the gateway, `python -m devserver` (what `make serve` runs) with OPENAI_API_KEY /
  OPENAI_API_BASE / AZURE_* pointing at the simulator and AWS_ENDPOINT_URL at moto, so it
  embeds neither: its RSS is the gateway's.

Then the official SDK drives one run through the gateway, leg by leg:

1. upload: `client.uploads.upload_file_chunked(part_size=4 MiB)` of a generated batch JSONL,
   create + parts + complete (each part lands in S3 as an object);
2. transfer: from complete until `files.retrieve` reads `processed`: the gateway's
   file_transfer function streams the parts from S3 to the provider's POST /files;
3. batch: `batches.create` until `completed` (simulator time: reported, excluded from MB/s);
4. download: `files.with_streaming_response.content(output_file_id)` read with `iter_bytes`
   (the bench never holds the file). The output is over the Lambda response limit, so the
   gateway streams it from the provider into S3 and answers 302 ("cache" sub-leg, until the
   302 arrives) and the SDK fetches the presigned URL from S3 ("fetch" sub-leg, not through
   the gateway). The download leg is both.

The input lines are chat completions with `n` = 8 and padding sized so that the simulator's
output line (8 choices) is about as long as the input line: the output is about the input's
size (the actual size is reported). Integrity: the simulator's sha256 of what it received is
compared with the input's, and the downloaded byte count with the output file's `bytes`.

Memory: a sampler thread reads VmRSS of the gateway, moto and the simulator every 50 ms (peak
per leg), and VmHWM of the gateway at the end (its lifetime peak RSS; each size gets a new
gateway process). CPU seconds (utime + stime from /proc/<pid>/stat) of each process per leg
show where the time goes on this 2-core machine; MB/gw-cpu-s (bytes of the leg per CPU second
of the gateway process) is the gateway's own speed, whatever moto, the simulator, the bench
and other users of the machine take (its 1-minute load average is reported beside).

End-to-end MB/s = (input bytes uploaded + input bytes transferred + output bytes downloaded)
/ (upload + transfer + download seconds); the batch leg is excluded. Goals (issue 4): the
gateway's peak RSS for 200 MB within 32 MB of the 20 MB run's, and >= 50 MB/s end to end;
(issue 23) >= 50 MB/s through the upload leg alone.
The bench exits 1 when it misses one (`--report-only`: exit 0 whatever the figures).
With `--runs N` every figure is the median of N runs (each run a fresh stack).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx2  # noqa: E402  (the openai SDK's HTTP client)
from openai import DefaultHttpxClient, OpenAI  # noqa: E402

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._processes import Process, clean_environment, free_port, http_ready, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median  # noqa: E402

MB = 1_000_000
MIB = 1024 * 1024
MASTER_KEY = "sk-bench-large-file"
SIM_OPENAI_KEY = "sim-openai-key"
SIM_AZURE_KEY = "sim-azure-key"
AZURE_API_VERSION = "2025-04-01-preview"
PART_SIZE = 4 * MIB  # <= routes.MAX_UPLOAD_PART_BYTES (4,669,440)
CHOICES = 8  # `n` of every request: the output line is about as long as the padded input line
MOTO_KEY_BUFFER_BYTES = 1 * MIB  # S3 objects above this spool to disk in moto
LEG_TIMEOUT_SECONDS = 1800.0
POLL_SECONDS = 0.2
SAMPLE_SECONDS = 0.05
GOAL_RSS_DELTA_MB = 32.0
GOAL_END_TO_END_MBPS = 50.0
GOAL_UPLOAD_MBPS = 50.0  # the upload leg alone (issue 23)
MAX_REQUESTS = 50_000  # one batch's lines (OpenAI's limit, the simulator's and the gateway's check)
LEGS = ("upload", "transfer", "batch", "download")
PROCESSES = ("gateway", "moto", "simulator")


# -- processes ---------------------------------------------------------------------------


@dataclass
class Stack:
    gateway_url: str  # the SDK's base_url (…/v1)
    simulator_url: str  # http://127.0.0.1:<port>
    moto_url: str
    processes: dict[str, Process] = field(default_factory=dict)


@contextlib.contextmanager
def start_stack(workdir: Path, phase_seconds: float) -> Iterator[Stack]:
    """Simulator, moto and the gateway as three processes; all stopped on exit."""
    env = clean_environment()
    stack = Stack("", "", "")
    try:
        sim_port, moto_port, gateway_port = free_port(), free_port(), free_port()
        sim_storage = workdir / "simulator-files"
        sim_storage.mkdir()
        simulator = spawn(
            "simulator",
            [
                *("-m", "devserver.simulator", "--port", str(sim_port)),
                *("--batch-phase-seconds", str(phase_seconds), "--storage-dir", str(sim_storage)),
            ],
            env,
            workdir,
        )
        stack.processes["simulator"] = simulator
        moto_env = {
            **env,
            "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(MOTO_KEY_BUFFER_BYTES),
            "TMPDIR": str(workdir),
        }
        moto = spawn(
            "moto", ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], moto_env, workdir
        )
        stack.processes["moto"] = moto
        stack.simulator_url = f"http://127.0.0.1:{sim_port}"
        stack.moto_url = f"http://127.0.0.1:{moto_port}"
        wait_until(simulator, http_ready(stack.simulator_url + "/_sim/health"))
        wait_until(moto, http_ready(stack.moto_url + "/moto-api/"))
        gateway_env = {
            **env,
            "PORT": str(gateway_port),
            "GATEWAY_MASTER_KEY": MASTER_KEY,
            "OPENAI_API_KEY": SIM_OPENAI_KEY,
            "OPENAI_API_BASE": stack.simulator_url + "/v1",
            "AZURE_API_KEY": SIM_AZURE_KEY,
            "AZURE_API_BASE": stack.simulator_url,
            "AZURE_API_VERSION": AZURE_API_VERSION,
            "AWS_ENDPOINT_URL": stack.moto_url,
        }
        gateway = spawn("gateway", ["-m", "devserver"], gateway_env, workdir)
        stack.processes["gateway"] = gateway
        stack.gateway_url = f"http://127.0.0.1:{gateway_port}/v1"
        wait_until(gateway, http_ready(f"http://127.0.0.1:{gateway_port}/health"))
        yield stack
    finally:
        for process in reversed(list(stack.processes.values())):
            process.stop()


# -- /proc -------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # fields 14 and 15 of stat


class Sampler:
    """Samples VmRSS of the stack's processes in a thread; keeps the peak of each per leg."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.leg = "start"
        self.peaks: dict[str, dict[str, int]] = {}  # leg -> process -> peak VmRSS KiB
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            peaks = self.peaks.setdefault(self.leg, {})
            for name, pid in self.pids.items():
                rss = proc_status_kib(pid, "VmRSS")
                if rss > peaks.get(name, 0):
                    peaks[name] = rss
            self.samples += 1


# -- input -------------------------------------------------------------------------------


def _request_line(index: int, padding: str) -> bytes:
    line = {
        "custom_id": f"request-{index:07d}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "n": CHOICES,
            "messages": [{"role": "user", "content": f"Request {index}: {padding}"}],
        },
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def _padding(length: int) -> str:
    words = "summarize the following passage about batch processing of large request files "
    return (words * (length // len(words) + 1))[:length]


def calibrate_padding(workdir: Path) -> int:
    """Padding (characters) that makes an input line about as long as its output line.

    Runs the simulator's own batch code (devserver.simulator.batchwork) on a sample.
    """
    from devserver.simulator import batchwork

    sample = workdir / "calibration.jsonl"
    lines = [_request_line(i, _padding(100)) for i in range(200)]
    sample.write_bytes(b"".join(lines))
    _, results = batchwork.process(str(sample), "/v1/chat/completions", str(workdir))
    assert results.output is not None, "the simulator produced no output for the sample"
    output_line = results.output.bytes / len(lines)
    results.discard()
    sample.unlink()
    input_line = sum(len(line) for line in lines) / len(lines)
    return max(0, 100 + round(output_line - input_line))


def padding_for_requests(target_bytes: int) -> int:
    """Padding that keeps a file of `target_bytes` within one batch's MAX_REQUESTS lines (its
    outputs are then longer than its inputs, as the bench reports)."""
    frame = len(_request_line(0, ""))  # the shortest line (its index has the fewest digits)
    return max(0, -(-target_bytes // MAX_REQUESTS) - frame)


@dataclass
class InputFile:
    path: Path
    bytes: int
    lines: int
    sha256: str


def generate_input(path: Path, target_bytes: int, padding_chars: int) -> InputFile:
    """Batch lines up to about `target_bytes` (never more), written in 1 MiB blocks."""
    padding = _padding(padding_chars)
    sha = hashlib.sha256()
    size = lines = 0
    block: list[bytes] = []
    block_size = 0
    with path.open("wb") as out:
        while True:
            line = _request_line(lines, padding)
            if size + len(line) > target_bytes:
                break
            block.append(line)
            block_size += len(line)
            size += len(line)
            lines += 1
            if block_size >= MIB:
                data = b"".join(block)
                out.write(data)
                sha.update(data)
                block, block_size = [], 0
        data = b"".join(block)
        out.write(data)
        sha.update(data)
    return InputFile(path, size, lines, sha.hexdigest())


# -- one run -----------------------------------------------------------------------------


@dataclass
class Leg:
    seconds: float
    bytes: int  # through the gateway in this leg (0 for the batch leg)
    cpu_seconds: dict[str, float]  # process -> CPU seconds in this leg ("bench" = this process)
    peak_rss_mib: dict[str, float]  # process -> peak sampled VmRSS in this leg

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 and self.bytes else 0.0


@dataclass
class RunResult:
    size_mb: int
    input_bytes: int
    input_lines: int
    output_bytes: int
    legs: dict[str, Leg]
    sub_legs: dict[str, float]  # download.cache / download.fetch seconds
    gateway_peak_rss_mib: float  # VmHWM at the end
    gateway_rss_at_start_mib: float
    moto_peak_rss_mib: float
    simulator_peak_rss_mib: float
    rss_samples: int
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load at the start and the end of the run
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # "leg/process" -> summary

    @property
    def end_to_end_bytes(self) -> int:
        return sum(self.legs[name].bytes for name in ("upload", "transfer", "download"))

    @property
    def end_to_end_seconds(self) -> float:
        return sum(self.legs[name].seconds for name in ("upload", "transfer", "download"))

    @property
    def end_to_end_mb_per_s(self) -> float:
        return self.end_to_end_bytes / MB / self.end_to_end_seconds


class Profiler:
    """`py-spy record` of some of the stack's processes, one raw (collapsed stacks) file per leg."""

    def __init__(self, py_spy: str, pids: Mapping[str, int], outdir: Path) -> None:
        self.py_spy = py_spy
        self.pids = dict(pids)
        self.outdir = outdir
        self.files: dict[str, dict[str, Path]] = {}  # leg -> process -> collapsed stacks

    @contextlib.contextmanager
    def record(self, leg: str) -> Iterator[None]:
        running: list[subprocess.Popen[bytes]] = []
        try:
            for name, pid in self.pids.items():
                out = self.outdir / f"profile-{leg}-{name}.txt"
                self.files.setdefault(leg, {})[name] = out
                command = [self.py_spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"]
                command += ["--rate", "200", "--output", str(out)]
                with (self.outdir / f"py-spy-{leg}-{name}.log").open("wb") as log:
                    running.append(
                        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                    )
            time.sleep(0.3)  # py-spy attaches
            yield
        finally:
            for popen in running:  # SIGINT: py-spy writes its file and exits
                if popen.poll() is None:
                    popen.send_signal(signal.SIGINT)
            for popen in running:
                try:
                    popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(timeout=5)


def _frame_file(frame: str) -> str:
    """'function (path/file.py:12)' -> 'path/file.py'."""
    inner = frame.rsplit(" (", 1)[-1].rstrip(")")
    return inner.rsplit(":", 1)[0]


def _component(path: str) -> str:
    """The component of a source file as py-spy names it (package-relative): the project's
    module (gateway/..., handlers/..., devserver/...), else the top package or stdlib module."""
    if _is_project(path):
        return path
    return path.split("/", 1)[0].removesuffix(".py")


def _is_project(path: str) -> bool:
    return path.startswith(("gateway/", "handlers/", "devserver/")) or "/functions/" in path


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Samples of a collapsed-stacks file: self time by component and by function, and time
    inclusive of each project function (functions/, devserver/)."""
    total = 0
    by_component: dict[str, int] = {}
    by_leaf: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        component = _component(_frame_file(leaf))
        by_component[component] = by_component.get(component, 0) + count
        by_leaf[leaf] = by_leaf.get(leaf, 0) + count
        seen: set[str] = set()
        for frame in frames:
            file = _frame_file(frame)
            if _is_project(file) and frame not in seen:
                seen.add(frame)
                name = frame.split(" (", 1)[0] + " (" + _component(file) + ")"
                inclusive[name] = inclusive.get(name, 0) + count

    def top_of(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return [(name, round(100.0 * n / total, 1)) for name, n in ranked]

    return {
        "samples": total,
        "self_by_component_pct": top_of(by_component),
        "self_by_function_pct": top_of(by_leaf),
        "inclusive_project_pct": top_of(inclusive),
    }


class LegClock:
    """Wall time and per-process CPU time of consecutive legs; tells the sampler the leg."""

    def __init__(self, sampler: Sampler, profiler: Profiler | None = None) -> None:
        self.sampler = sampler
        self.profiler = profiler
        self.legs: dict[str, Leg] = {}

    def _cpu(self) -> dict[str, float]:
        cpu = {name: proc_cpu_seconds(pid) for name, pid in self.sampler.pids.items()}
        cpu["bench"] = time.process_time()
        return cpu

    @contextlib.contextmanager
    def leg(self, name: str, moved_bytes: Callable[[], int]) -> Iterator[None]:
        with self.profiler.record(name) if self.profiler else contextlib.nullcontext():
            self.sampler.leg = name
            cpu_before = self._cpu()
            started = time.perf_counter()
            yield
            seconds = time.perf_counter() - started
        cpu_after = self._cpu()
        peaks = self.sampler.peaks.get(name, {})
        self.legs[name] = Leg(
            seconds=seconds,
            bytes=moved_bytes(),
            cpu_seconds={p: round(cpu_after[p] - cpu_before[p], 2) for p in cpu_before},
            peak_rss_mib={p: round(kib / 1024, 1) for p, kib in peaks.items()},
        )
        self.sampler.leg = f"after-{name}"


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LEG_TIMEOUT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def _simulator_received_sha256(stack: Stack, size: int) -> str | None:
    """The sha256 the simulator recorded for the newest file of `size` bytes it received."""
    headers = {"Authorization": f"Bearer {SIM_OPENAI_KEY}"}
    files = httpx2.get(stack.simulator_url + "/v1/files", headers=headers, params={"limit": 100}, timeout=30)
    files.raise_for_status()
    matching = [f for f in files.json().get("data", []) if f.get("bytes") == size]
    if not matching:
        return None
    newest = max(matching, key=lambda f: f.get("created_at", 0))
    info = httpx2.get(f"{stack.simulator_url}/_sim/received/{newest['id']}", timeout=30)
    if info.status_code != 200:
        return None
    sha = info.json().get("sha256")
    return str(sha) if sha else None


def run_once(
    size_mb: int,
    input_file: InputFile,
    workdir: Path,
    phase_seconds: float,
    py_spy: str | None = None,
    profile_processes: tuple[str, ...] = ("gateway",),
) -> RunResult:
    load_at_start = os.getloadavg()[0]
    with start_stack(workdir, phase_seconds) as stack:
        pids = {name: process.pid for name, process in stack.processes.items()}
        profiled = {name: pids[name] for name in profile_processes}
        profiler = Profiler(py_spy, profiled, workdir) if py_spy else None
        gateway_pid = pids["gateway"]
        rss_at_start = proc_status_kib(gateway_pid, "VmRSS") / 1024
        events: list[tuple[float, int, str]] = []  # (perf_counter, status, host) of every response

        def on_response(response: httpx2.Response) -> None:
            events.append((time.perf_counter(), response.status_code, response.url.host))

        http_client = DefaultHttpxClient(timeout=600.0, event_hooks={"response": [on_response]})
        client = OpenAI(
            base_url=stack.gateway_url, api_key=MASTER_KEY, max_retries=0, http_client=http_client
        )
        downloaded = 0
        output_bytes = 0
        download_started = 0.0
        with Sampler(pids) as sampler, client:
            clock = LegClock(sampler, profiler)
            with clock.leg("upload", lambda: input_file.bytes):
                upload = client.uploads.upload_file_chunked(
                    file=input_file.path, mime_type="application/jsonl", purpose="batch", part_size=PART_SIZE
                )
            if upload.status != "completed" or upload.file is None:
                raise RuntimeError(f"upload ended {upload.status}: {upload}")
            file_id = upload.file.id

            def processed() -> bool:
                status = client.files.retrieve(file_id).status
                if status == "error":
                    raise RuntimeError(f"transfer failed: {client.files.retrieve(file_id)}")
                return status == "processed"

            with clock.leg("transfer", lambda: input_file.bytes):
                _wait_for("the transfer", processed)

            batch_box: list[Any] = []

            def batch_done() -> bool:
                batch = client.batches.retrieve(batch_box[0].id)
                batch_box[0] = batch
                if batch.status in ("failed", "expired", "cancelled"):
                    raise RuntimeError(f"batch ended {batch.status}: {batch}")
                return batch.status == "completed"

            with clock.leg("batch", lambda: 0):
                batch_box.append(
                    client.batches.create(
                        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
                    )
                )
                _wait_for("the batch", batch_done)
            output_file_id = batch_box[0].output_file_id
            if not output_file_id:
                raise RuntimeError(f"the batch has no output file: {batch_box[0]}")
            output_bytes = client.files.retrieve(output_file_id).bytes

            with clock.leg("download", lambda: output_bytes):
                download_started = time.perf_counter()
                events.clear()
                with client.files.with_streaming_response.content(output_file_id) as response:
                    for chunk in response.iter_bytes(MIB):
                        downloaded += len(chunk)
            download_ended = time.perf_counter()
        gateway_hwm = proc_status_kib(gateway_pid, "VmHWM") / 1024
        moto_hwm = proc_status_kib(pids["moto"], "VmHWM") / 1024
        sim_hwm = proc_status_kib(pids["simulator"], "VmHWM") / 1024
        received_sha = _simulator_received_sha256(stack, input_file.bytes)
    if downloaded != output_bytes:
        raise RuntimeError(f"downloaded {downloaded} bytes, the output file has {output_bytes}")
    if received_sha is not None and received_sha != input_file.sha256:
        raise RuntimeError("the provider received other bytes than were uploaded (sha256 differs)")
    redirect_at = next((at for at, status, _ in events if status in (301, 302, 303, 307, 308)), None)
    sub_legs: dict[str, float] = {}
    if redirect_at is not None:
        sub_legs = {
            "download.cache": redirect_at - download_started,
            "download.fetch": download_ended - redirect_at,
        }
    profiles = (
        {
            f"{leg}/{name}": summarize_profile(path)
            for leg, files in profiler.files.items()
            for name, path in files.items()
        }
        if profiler
        else {}
    )
    return RunResult(
        profiles=profiles,
        size_mb=size_mb,
        input_bytes=input_file.bytes,
        input_lines=input_file.lines,
        output_bytes=output_bytes,
        legs=clock.legs,
        sub_legs=sub_legs,
        gateway_peak_rss_mib=round(gateway_hwm, 1),
        gateway_rss_at_start_mib=round(rss_at_start, 1),
        moto_peak_rss_mib=round(moto_hwm, 1),
        simulator_peak_rss_mib=round(sim_hwm, 1),
        rss_samples=sampler.samples,
        load_average=(round(load_at_start, 2), round(os.getloadavg()[0], 2)),
    )


# -- report ------------------------------------------------------------------------------


@dataclass
class SizeSummary:
    """Medians over the runs of one size."""

    size_mb: int
    runs: int
    input_bytes: int
    input_lines: int
    output_bytes: int
    seconds: dict[str, float]
    mb_per_s: dict[str, float]
    cpu_seconds: dict[str, dict[str, float]]  # leg -> process -> CPU seconds
    peak_rss_mib: dict[str, dict[str, float]]  # leg -> process -> sampled peak
    end_to_end_mb_per_s: float
    gateway_peak_rss_mib: float
    gateway_rss_at_start_mib: float
    moto_peak_rss_mib: float
    simulator_peak_rss_mib: float
    mb_per_gateway_cpu_s: dict[str, float] = field(default_factory=dict)  # leg -> MB / gateway CPU s
    load_average: float = 0.0  # the runs' median 1-minute load (this machine is shared)


def summarize_size(results: list[RunResult]) -> SizeSummary:
    first = results[0]
    names = list(first.legs) + list(first.sub_legs)

    def seconds_of(result: RunResult, name: str) -> float:
        return result.legs[name].seconds if name in result.legs else result.sub_legs.get(name, 0.0)

    seconds = {name: median(seconds_of(r, name) for r in results) for name in names}
    mb_per_s = {name: median(r.legs[name].mb_per_s for r in results) for name in first.legs}
    for sub in first.sub_legs:
        mb_per_s[sub] = median(r.output_bytes / MB / r.sub_legs[sub] for r in results if r.sub_legs.get(sub))
    cpu = {
        leg: {
            p: median(r.legs[leg].cpu_seconds.get(p, 0.0) for r in results)
            for p in first.legs[leg].cpu_seconds
        }
        for leg in first.legs
    }
    rss = {
        leg: {p: median(r.legs[leg].peak_rss_mib.get(p, 0.0) for r in results) for p in PROCESSES}
        for leg in first.legs
    }
    return SizeSummary(
        size_mb=first.size_mb,
        runs=len(results),
        input_bytes=first.input_bytes,
        input_lines=first.input_lines,
        output_bytes=int(median(r.output_bytes for r in results)),
        seconds=seconds,
        mb_per_s=mb_per_s,
        cpu_seconds=cpu,
        peak_rss_mib=rss,
        end_to_end_mb_per_s=median(r.end_to_end_mb_per_s for r in results),
        gateway_peak_rss_mib=median(r.gateway_peak_rss_mib for r in results),
        gateway_rss_at_start_mib=median(r.gateway_rss_at_start_mib for r in results),
        moto_peak_rss_mib=median(r.moto_peak_rss_mib for r in results),
        simulator_peak_rss_mib=median(r.simulator_peak_rss_mib for r in results),
        mb_per_gateway_cpu_s={
            leg: median(_per_gateway_cpu_second(r.legs[leg]) for r in results)
            for leg in first.legs
            if first.legs[leg].bytes
        },
        load_average=median(max(r.load_average) for r in results),
    )


def _per_gateway_cpu_second(leg: Leg) -> float:
    """MB through the leg per CPU second of the gateway process: its own work, whatever moto,
    the simulator and the bench (and other users of this machine) take."""
    cpu = leg.cpu_seconds.get("gateway", 0.0)
    return leg.bytes / MB / cpu if cpu > 0 else math.inf


def print_report(summaries: list[SizeSummary]) -> dict[str, Any]:
    print()
    print(
        f"{'size':>6}  {'leg':<15} {'seconds':>8} {'MB/s':>7} {'MB/gw-cpu-s':>11}  "
        f"{'CPU s gw/moto/sim/bench':>24}  {'peak RSS MiB gw/moto/sim':>25}"
    )
    for s in summaries:
        for name, seconds in s.seconds.items():
            leg = name if name in s.cpu_seconds else None
            rate = f"{s.mb_per_s[name]:7.1f}" if s.mb_per_s.get(name) else "      -"
            per_cpu = s.mb_per_gateway_cpu_s.get(name)
            rate += f" {per_cpu:11.1f}" if per_cpu else " " * 12
            if leg is not None:
                c = s.cpu_seconds[leg]
                cpu = f"{c['gateway']:5.1f} {c['moto']:5.1f} {c['simulator']:5.1f} {c['bench']:5.1f}"
                r = s.peak_rss_mib[leg]
                rss = f"{r['gateway']:7.1f} {r['moto']:7.1f} {r['simulator']:7.1f}"
            else:
                cpu, rss = "", ""
            label = name if leg is not None else "  " + name.split(".", 1)[1]
            print(f"{s.size_mb:>4}MB  {label:<15} {seconds:8.2f} {rate}  {cpu:>24}  {rss:>25}")
        total = sum(s.seconds[n] for n in ("upload", "transfer", "download"))
        print(
            f"{s.size_mb:>4}MB  {'end to end':<15} {total:8.2f} "
            f"{s.end_to_end_mb_per_s:7.1f}  (upload+transfer+download; batch excluded)"
        )
        print(
            f"{s.size_mb:>4}MB  input {s.input_bytes / MB:.1f} MB in {s.input_lines} lines, output "
            f"{s.output_bytes / MB:.1f} MB; gateway VmHWM {s.gateway_peak_rss_mib:.1f} MiB "
            f"(RSS at start {s.gateway_rss_at_start_mib:.1f}); moto VmHWM {s.moto_peak_rss_mib:.1f}, "
            f"simulator VmHWM {s.simulator_peak_rss_mib:.1f}"
            + (f"  [median of {s.runs} runs]" if s.runs > 1 else "")
            + f"; load average {s.load_average:.2f} (1 min, the highest of start and end, median)"
        )
        print()
    verdict: dict[str, Any] = {}
    if len(summaries) >= 2:
        small, large = min(summaries, key=lambda s: s.size_mb), max(summaries, key=lambda s: s.size_mb)
        delta = large.gateway_peak_rss_mib - small.gateway_peak_rss_mib
        verdict["gateway_peak_rss_delta_mib"] = round(delta, 1)
        verdict["rss_goal_met"] = abs(delta) <= GOAL_RSS_DELTA_MB
        print(
            f"gateway peak RSS {large.size_mb} MB - {small.size_mb} MB: {delta:+.1f} MiB "
            f"(goal within {GOAL_RSS_DELTA_MB:.0f}): {'met' if verdict['rss_goal_met'] else 'NOT met'}"
        )
    largest = max(summaries, key=lambda s: s.size_mb)
    verdict["end_to_end_mb_per_s"] = round(largest.end_to_end_mb_per_s, 1)
    verdict["throughput_goal_met"] = largest.end_to_end_mb_per_s >= GOAL_END_TO_END_MBPS
    print(
        f"end to end at {largest.size_mb} MB: {largest.end_to_end_mb_per_s:.1f} MB/s "
        f"(goal >= {GOAL_END_TO_END_MBPS:.0f}): {'met' if verdict['throughput_goal_met'] else 'NOT met'}"
    )
    print(
        "end to end = (input uploaded + input transferred + output downloaded) bytes / "
        "(upload + transfer + download) seconds; MB = 10^6 bytes"
    )
    return verdict


def print_profiles(result: RunResult) -> None:
    for leg, summary in result.profiles.items():
        if not summary.get("samples"):
            continue
        print(f"  profile {leg}, {result.size_mb} MB ({summary['samples']} on-CPU samples):")
        for title, key in (
            ("self, by component", "self_by_component_pct"),
            ("self, by function", "self_by_function_pct"),
            ("inclusive, project code", "inclusive_project_pct"),
        ):
            print(f"    {title}:")
            for name, pct in summary[key]:
                print(f"      {pct:5.1f}%  {name}")


# -- main --------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20,200", help="input sizes in MB (10^6 bytes), comma-separated")
    parser.add_argument("--runs", type=int, default=1, help="runs per size (each a fresh stack); medians")
    parser.add_argument("--phase-seconds", type=float, default=0.5, help="the simulator's batch phase")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the input files and process logs")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        default=None,
        help="profile the gateway process per leg with this py-spy binary (perturbs the timings)",
    )
    parser.add_argument(
        "--profile",
        default="gateway",
        help="with --py-spy: which processes to profile (gateway,moto,simulator)",
    )
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or args.runs < 1:
        parser.error("give at least one size and one run")
    signal.signal(signal.SIGTERM, _on_sigterm)
    profile_processes = tuple(p.strip() for p in args.profile.split(",") if p.strip())
    if not set(profile_processes) <= set(PROCESSES):
        parser.error(f"--profile takes some of {', '.join(PROCESSES)}")

    tempdir = Path(tempfile.mkdtemp(prefix="bench-large-file-"))
    summaries: list[SizeSummary] = []
    runs: list[RunResult] = []
    try:
        calibrated = calibrate_padding(tempdir)
        for size_mb in sizes:
            padding = max(calibrated, padding_for_requests(size_mb * MB))
            input_file = generate_input(tempdir / f"batch-{size_mb}mb.jsonl", size_mb * MB, padding)
            print(
                f"{size_mb} MB: {input_file.bytes} bytes, {input_file.lines} lines "
                f"(padding {padding} chars, n={CHOICES})",
                flush=True,
            )
            results = []
            for run in range(args.runs):
                workdir = tempdir / f"run-{size_mb}mb-{run + 1}"
                workdir.mkdir()
                result = run_once(
                    size_mb, input_file, workdir, args.phase_seconds, args.py_spy, profile_processes
                )
                print_profiles(result)
                legs = ", ".join(f"{n} {leg.seconds:.1f} s" for n, leg in result.legs.items())
                print(
                    f"  run {run + 1}: {legs}; end to end {result.end_to_end_mb_per_s:.1f} MB/s; "
                    f"gateway VmHWM {result.gateway_peak_rss_mib:.1f} MiB",
                    flush=True,
                )
                results.append(result)
            runs.extend(results)
            summaries.append(summarize_size(results))
            if not args.keep_temp:
                input_file.path.unlink()
        report_verdict = print_report(summaries)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            report = {
                "bench": "large_file",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "settings": {
                    "part_size": PART_SIZE,
                    "choices": CHOICES,
                    "padding_chars": padding,
                    "phase_seconds": args.phase_seconds,
                    "moto_key_buffer_bytes": MOTO_KEY_BUFFER_BYTES,
                    "runs": args.runs,
                },
                "sizes": [asdict(s) for s in summaries],
                "runs": [
                    {
                        **asdict(r),
                        "end_to_end_mb_per_s": r.end_to_end_mb_per_s,
                        "end_to_end_bytes": r.end_to_end_bytes,
                    }
                    for r in runs
                ],
                "verdict": report_verdict,
            }
            write_json(args.json, report)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep_temp:
            print(f"kept {tempdir}")
        else:
            import shutil

            shutil.rmtree(tempdir, ignore_errors=True)
    return verdict(goals(summaries), report_only=args.report_only)


def goals(summaries: list[SizeSummary]) -> list[Goal]:
    """End to end and the upload leg at the largest size; with two sizes or more, the gateway's
    peak RSS apart."""
    largest = max(summaries, key=lambda s: s.size_mb)
    checked = [
        Goal(
            f"end to end at {largest.size_mb} MB",
            largest.end_to_end_mb_per_s,
            GOAL_END_TO_END_MBPS,
            "MB/s",
            at_most=False,
        ),
        Goal(
            f"upload at {largest.size_mb} MB",
            largest.mb_per_s.get("upload", math.nan),
            GOAL_UPLOAD_MBPS,
            "MB/s",
            at_most=False,
        ),
    ]
    if len(summaries) >= 2:
        small = min(summaries, key=lambda s: s.size_mb)
        delta = largest.gateway_peak_rss_mib - small.gateway_peak_rss_mib
        name = f"gateway peak RSS {largest.size_mb} MB vs {small.size_mb} MB (absolute difference)"
        checked.append(Goal(name, abs(delta), GOAL_RSS_DELTA_MB, "MiB"))
    return checked


if __name__ == "__main__":
    sys.exit(main())
