"""A batch plan's split and merge steps, as the plan runner runs them: throughput and peak memory.

    .venv/bin/python bench/split.py                          # 20 and 200 MB, 3 runs each
    .venv/bin/python bench/split.py --sizes-mb 2 20 --runs 1 --report-only

Starts a moto server (`python -m moto.server`, objects over 1 MiB spooled to its disk) for S3 and
DynamoDB, as in AWS where both are remote and the watcher function runs the plan alone. The
provider is a bench-only stand-in of a provider's file store (`BenchProvider`: files as objects
of the same moto S3, `create_file`, `list_files`, `stream_file_content`; no translation, no
batches). For each size (MB = 10^6 bytes; 400,000 request lines at 200 MB, about 500 bytes each,
the smaller sizes with the same line size) it writes a valid batch input file to the provider's
store, then for each run records a new planned batch (OpenAI's caps: 50,000 requests, 200 MB a
part; `retry` of `server_error`) and, each in a fresh process:

1. split: `runner.advance` of the batch as recorded at create, the watcher's split step (each
   part's index written to the gateway's bucket, its lines spooled, its record written ahead,
   its file uploaded to the provider, the part `ready`; the plan's part count) (timed);
2. provider (not timed): every part answered (each part's input read from the provider, its
   output lines about as long as the request lines, in reverse order within every 1,000 lines:
   the merge sorts; 1 % of the lines failing with `server_error`), the parts recorded `done`;
   then `runner.advance` again, the retry split of the failed lines (selection from the
   indexes and the error files), and the retry parts answered;
3. merge: `runner._merge`, the merge the finish step runs: every part's index read from the
   bucket, its result files streamed from the provider, `merge_results` into the output and
   error files, both kept in the gateway's bucket (timed).

Checked after each run: the merged output holds every custom_id once, in input order, and no
error file was written (every retry succeeded). Reported per size: median MB/s of split (input
bytes) and merge (output bytes), the peak RSS of the split and merge processes, and beside the
wall figures the gateway's own: MB per CPU second of the split and merge processes, the CPU
seconds moto spent meanwhile (S3's and DynamoDB's side, not the gateway's), the wall seconds
spent closing (split: each part's index and its upload to the provider; merge: the merged files
kept; moto assembles a multipart object by copying it, which S3 does not on the Lambda's clock;
they stay in the timed figures), and the machine's 1-minute load average (it is shared:
compare figures of one run, not across days).

Goals (exit 1 when missed, unless --report-only): >= 50 MB/s through split and through merge
at the largest size; the peak RSS of split and of merge at the largest size at most 16 MiB
above the smallest size's (memory bounded by one part, not the file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._processes import clean_environment, free_port, http_ready, spawn, wait_until  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._sized_runs import GOAL_RSS_GROWTH_MIB  # noqa: E402
from bench._stats import median  # noqa: E402

MB = 1_000_000
MIB = 1024 * 1024
LINES_AT_200_MB = 400_000
LINE_BYTES = 200 * MB // LINES_AT_200_MB
GOAL_MB_PER_SECOND = 50.0
BUCKET = "bench-split"
TABLE = "bench-split"
OPENAI_CAPS = (50_000, 200 * MB)
FAILING_EVERY = 100  # 1 % of the lines fail on their first attempt
REVERSED_RUN = 1000  # the provider answers each run of this many lines backwards
MOTO_KEY_BUFFER_BYTES = MIB
# set to a path: each split and merge process writes its cProfile statistics to <path>.<step>
PROFILE_ENV = "BENCH_SPLIT_PROFILE"


# -- the provider's file store (bench only) -----------------------------------------------


class _Content:
    """What `stream_file_content` yields: the object's bytes as a response's `iter_bytes`."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        yield from self.body.iter_chunks(chunk_size or 65536)


class BenchProvider:
    """A provider's file store in the moto S3 (`provider-files/<id>`, its file object beside it
    in `provider-meta/<id>`): what the plan runner's split and merge call of a provider client."""

    FILES, META = "provider-files/", "provider-meta/"

    def __init__(self) -> None:
        from gateway.storage.s3 import s3_client

        self.s3 = s3_client()  # the gateway's: no checksum computed over what it sends or reads

    def create_file(self, *, filename: str, content: Any, purpose: str, **_: Any) -> dict[str, Any]:
        """One PUT streaming `content` from where it is (as an HTTP upload to a provider
        streams the file: no copy of it held in memory)."""
        file_id = f"file-{uuid.uuid4().hex}"
        start = content.tell()
        size = content.seek(0, 2) - start
        content.seek(start)
        self.s3.put_object(Bucket=BUCKET, Key=self.FILES + file_id, Body=content, ContentLength=size)
        described = {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.s3.put_object(Bucket=BUCKET, Key=self.META + file_id, Body=json.dumps(described).encode())
        return described

    def list_files(self, *, purpose: str | None = None, **_: Any) -> dict[str, Any]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=self.META).get("Contents") or ()
        described = (
            json.loads(self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()) for item in listed
        )
        found = [file for file in described if purpose is None or file["purpose"] == purpose]
        found.sort(key=lambda file: file["created_at"], reverse=True)
        return {"object": "list", "data": found, "has_more": False}

    @contextmanager
    def stream_file_content(self, file_id: str) -> Iterator[_Content]:
        body = self.s3.get_object(Bucket=BUCKET, Key=self.FILES + file_id)["Body"]
        try:
            yield _Content(body)
        finally:
            body.close()


# -- the child processes (each measured alone) ---------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def _bench_provider() -> BenchProvider:
    """The provider the runner's modules get from `client_for`, in this process."""
    from gateway.service.plan import runner

    provider = BenchProvider()
    runner.client_for = lambda _deployment: provider  # type: ignore[assignment,return-value]
    return provider


def _batch(batch_id: str) -> Any:
    from gateway.storage.id_map import IdMap

    found = IdMap().get(batch_id)
    assert found is not None, batch_id
    return found


def _timed(owner: Any, name: str, spent: list[float]) -> None:
    """`owner.name` timed into `spent[0]` at each call."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    setattr(owner, name, timed)


def child_split(batch_id: str) -> dict[str, Any]:
    """The watcher's split step of the batch (the first `advance` of a planned batch)."""
    from gateway.service.plan import parts, runner
    from gateway.storage.id_map import IdMap

    _bench_provider()
    closing = [0.0]
    _timed(runner._PartWriter, "close", closing)
    record = _batch(batch_id)
    started, cpu = time.perf_counter(), _cpu_seconds()
    if not runner.advance(IdMap(), record):
        raise SystemExit(f"the split of {batch_id} changed nothing")
    seconds = time.perf_counter() - started
    plan = runner.plan_of(_batch(batch_id))
    found = parts.load(IdMap(), batch_id, int(plan["parts"]))
    return {
        "seconds": seconds,
        "closing_seconds": closing[0],
        "cpu_seconds": _cpu_seconds() - cpu,
        "parts": len(found),
        "lines": int(plan["lines"]),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _answer(line: bytes, failing: bool) -> bytes:
    from gateway.formats.custom_ids import custom_id_of

    custom_id = custom_id_of(line)
    if failing:
        error = {"code": "server_error", "message": "The server had an error."}
        response = {"status_code": 500, "request_id": "req", "body": {"error": error}}
        failed = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": None}
        return json.dumps(failed).encode()
    content = "answer " * max(0, (len(line) - 260) // 7)
    body = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"content": content}}]}
    answer = {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "body": body},
        "error": None,
    }
    return json.dumps(answer).encode()


def _failing(line: bytes) -> bool:
    from gateway.formats.custom_ids import custom_id_of

    return (int(str(custom_id_of(line)).rsplit("-", 1)[1]) + 1) % FAILING_EVERY == 0


def child_provide(batch_id: str, first: int, fail: bool) -> dict[str, Any]:
    """Answers the parts from `first` on, as a provider would (each its output and error file),
    and records them done; then, after the first answers, the runner's retry split."""
    from gateway.formats.jsonl import split_lines
    from gateway.service.plan import parts, runner
    from gateway.storage.id_map import IdMap

    provider = _bench_provider()
    plan = runner.plan_of(_batch(batch_id))
    failed = 0
    for part in parts.load(IdMap(), batch_id, int(plan["parts"]))[first:]:
        failed_before = failed
        written: dict[str, IO[bytes]] = {
            "output": tempfile.TemporaryFile(),  # noqa: SIM115
            "error": tempfile.TemporaryFile(),  # noqa: SIM115
        }
        with provider.stream_file_content(part.state["input_upstream_id"]) as response:
            run: list[bytes] = []
            for line in split_lines(response.iter_bytes(1024 * 1024)):
                run.append(line)
                if len(run) == REVERSED_RUN:
                    failed += _answer_run(run, fail, written)
                    run = []
            failed += _answer_run(run, fail, written)
        upstream: dict[str, str | None] = {}
        for which, file in written.items():
            with file:
                size = file.seek(0, 2)
                file.seek(0)
                made = provider.create_file(filename=f"{which}.jsonl", content=file, purpose="batch_output")
                upstream[which] = made["id"] if size else None
        lines, errors = parts.lines(part), failed - failed_before
        part.state = {
            **part.state,
            "output_upstream_id": upstream["output"],
            "error_upstream_id": upstream["error"],
        }
        counts = {"total": lines, "completed": lines - errors, "failed": errors}
        parts.update(part, status="done", upstream_status="completed", request_counts=counts)
        if not parts.save(IdMap(), part):
            raise SystemExit(f"part {part.id} not saved")
    retried = 0
    if fail:
        record = _batch(batch_id)
        if not runner.advance(IdMap(), record):
            raise SystemExit(f"the retry split of {batch_id} changed nothing")
        retried = int(runner.plan_of(_batch(batch_id))["retried"])
    return {"failed": failed, "retried": retried, "parts": int(runner.plan_of(_batch(batch_id))["parts"])}


def _answer_run(run: list[bytes], fail: bool, written: dict[str, Any]) -> int:
    failed = 0
    for line in reversed(run):
        failing = fail and _failing(line)
        failed += failing
        written["error" if failing else "output"].write(_answer(line, failing) + b"\n")
    return failed


def child_merge(batch_id: str) -> dict[str, Any]:
    """The merge the runner's finish step runs (`runner._merge`): every part's index read from
    the gateway's bucket, their results from the provider, the merged files kept."""
    from gateway.providers.kept_files import KeptFiles
    from gateway.service.plan import merged_files, parts, runner
    from gateway.storage.id_map import IdMap

    provider = _bench_provider()
    closing = [0.0]
    _timed(merged_files.StreamedKeep, "close", closing)
    record = _batch(batch_id)
    found = parts.load(IdMap(), batch_id, int(runner.plan_of(record)["parts"]))
    started, cpu = time.perf_counter(), _cpu_seconds()
    merged = runner._merge(provider, record, found, cancelled=False)
    seconds = time.perf_counter() - started
    kept = KeptFiles(record.provider)
    sizes = [
        int(kept.retrieve_file(merged[which])["bytes"]) for which in ("output", "error") if merged[which]
    ]
    return {
        "seconds": seconds,
        "closing_seconds": closing[0],
        "cpu_seconds": _cpu_seconds() - cpu,
        "bytes": sum(sizes),
        "completed": merged["completed"],
        "failed": merged["failed"],
        "output_key": kept.key(merged["output"]),
        "error_file": merged["error"],
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "split": child_split,
    "provide": child_provide,
    "merge": child_merge,
}


# -- the parent ------------------------------------------------------------------------------


def moto_cpu_seconds() -> float:
    """utime + stime of the moto server so far (what S3's side of a step cost)."""
    with open(f"/proc/{MOTO_PID[0]}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MOTO_PID: list[int] = []


def run_child(env: dict[str, str], name: str, *args: Any) -> dict[str, Any]:
    moto_before = moto_cpu_seconds()
    completed = subprocess.run(
        [sys.executable, __file__, "--child", name, json.dumps(args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if completed.returncode != 0:
        raise SystemExit(f"child {name} failed:\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["moto_cpu_seconds"] = moto_cpu_seconds() - moto_before
    return result


def request_lines(count: int) -> Iterator[bytes]:
    """Valid chat-completions requests of about LINE_BYTES each."""
    for index in range(count):
        line = {
            "custom_id": f"request-{index}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "max_tokens": 200,
                "messages": [{"role": "user", "content": ""}],
            },
        }
        frame = len(json.dumps(line)) + 1
        line["body"]["messages"][0]["content"] = "lorem ipsum " * max(0, (LINE_BYTES - frame) // 12)  # type: ignore[index]
        yield json.dumps(line).encode() + b"\n"


def write_input(size: str, lines: int) -> dict[str, Any]:
    """The batch input file, uploaded to the provider's store; its provider file object."""
    with tempfile.TemporaryFile() as content:
        for line in request_lines(lines):
            content.write(line)
        content.seek(0)
        return BenchProvider().create_file(filename=f"input-{size}.jsonl", content=content, purpose="batch")


def new_batch(upstream: dict[str, Any], lines: int) -> str:
    """A planned batch as `batches.create` records it (OpenAI's caps, a retry of
    `server_error`), with a new id: each run merges into files of its own."""
    from gateway.storage.id_map import IdMap, ObjectRecord
    from gateway.storage.watch import PLAN

    batch_id = f"batch_bench{uuid.uuid4().hex[:20]}"
    now = int(time.time())
    plan = {
        "retry": {"expired": False, "failed_codes": ["server_error"]},
        "input_upstream_id": upstream["id"],
        "limits": {"max_requests": OPENAI_CAPS[0], "max_bytes": OPENAI_CAPS[1], "max_tokens": None},
        "min_requests": None,
        "input_lines": lines,
        "input_bytes": upstream["bytes"],
        "max_concurrent": None,
        "enqueued_tokens": None,
        "enqueued_requests": None,
        "parts": None,
    }
    obj = {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-bench-input",
        "completion_window": "24h",
        "status": "validating",
        "created_at": now,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
    }
    record = ObjectRecord(
        id=batch_id,
        kind="batch",
        owner="master",
        provider="openai",
        created_at=now,
        object=obj,
        state={PLAN: plan},
    )
    if not IdMap().put_new(record):
        raise SystemExit(f"batch {batch_id} exists")
    return batch_id


def check_output(output_key: str, lines: int) -> None:
    from gateway.formats.custom_ids import custom_id_of
    from gateway.storage.plan_files import object_lines

    expected = (f"request-{index}" for index in range(lines))
    for number, line in enumerate(object_lines(output_key)):
        if custom_id_of(line) != next(expected, None):
            raise SystemExit(f"merged output {output_key}: line {number + 1} out of order or doubled")
    if next(expected, None) is not None:
        raise SystemExit(f"merged output {output_key}: lines missing")


def measure_size(env: dict[str, str], size_mb: float, runs: int) -> dict[str, float]:
    size = f"{size_mb:g}"
    lines = max(1, round(LINES_AT_200_MB * size_mb / 200))
    upstream = write_input(size, lines)
    input_bytes = int(upstream["bytes"])
    splits, merges = [], []
    loads = [os.getloadavg()[0]]
    for _ in range(runs):
        batch_id = new_batch(upstream, lines)
        split = run_child(env, "split", batch_id)
        answered = run_child(env, "provide", batch_id, 0, True)
        if answered["retried"] != answered["failed"] or answered["failed"] != lines // FAILING_EVERY:
            raise SystemExit(f"{batch_id}: {answered}, expected {lines // FAILING_EVERY} lines retried")
        run_child(env, "provide", batch_id, split["parts"], False)
        merged = run_child(env, "merge", batch_id)
        if merged["completed"] != lines or merged["failed"] or merged["error_file"]:
            raise SystemExit(f"merge of {size} MB counted {merged}, expected {lines} lines, no error")
        check_output(merged["output_key"], lines)
        splits.append(split)
        merges.append(merged)
        loads.append(os.getloadavg()[0])
    return {
        "lines": float(lines),
        "input_bytes": float(input_bytes),
        "parts": float(splits[0]["parts"]),
        "output_bytes": float(merges[0]["bytes"]),
        "split_mb_per_second": median(input_bytes / MB / run["seconds"] for run in splits),
        "merge_mb_per_second": median(run["bytes"] / MB / run["seconds"] for run in merges),
        "split_mb_per_cpu_second": median(input_bytes / MB / run["cpu_seconds"] for run in splits),
        "merge_mb_per_cpu_second": median(run["bytes"] / MB / run["cpu_seconds"] for run in merges),
        "split_moto_cpu_seconds": median(run["moto_cpu_seconds"] for run in splits),
        "merge_moto_cpu_seconds": median(run["moto_cpu_seconds"] for run in merges),
        "split_cpu_seconds": median(run["cpu_seconds"] for run in splits),
        "merge_cpu_seconds": median(run["cpu_seconds"] for run in merges),
        "split_closing_seconds": median(run["closing_seconds"] for run in splits),
        "merge_closing_seconds": median(run["closing_seconds"] for run in merges),
        "split_peak_rss_mib": median(run["peak_rss_kib"] / 1024 for run in splits),
        "merge_peak_rss_mib": median(run["peak_rss_kib"] / 1024 for run in merges),
        "load_average": median(loads),
    }


def goals(results: dict[str, dict[str, float]]) -> list[Goal]:
    sizes = sorted(results, key=float)
    smallest, largest = results[sizes[0]], results[sizes[-1]]
    found = [
        Goal(
            f"split MB/s at {sizes[-1]} MB",
            largest["split_mb_per_second"],
            GOAL_MB_PER_SECOND,
            "MB/s",
            at_most=False,
        ),
        Goal(
            f"merge MB/s at {sizes[-1]} MB",
            largest["merge_mb_per_second"],
            GOAL_MB_PER_SECOND,
            "MB/s",
            at_most=False,
        ),
    ]
    if len(sizes) > 1:
        for leg in ("split", "merge"):
            growth = largest[f"{leg}_peak_rss_mib"] - smallest[f"{leg}_peak_rss_mib"]
            found.append(
                Goal(
                    f"{leg} peak RSS growth {sizes[0]} -> {sizes[-1]} MB", growth, GOAL_RSS_GROWTH_MIB, "MiB"
                )
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[20.0, 200.0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="?", help=argparse.SUPPRESS)
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    if args.child:
        profile = os.environ.get(PROFILE_ENV)
        if profile and args.child != "provide":
            import cProfile

            with cProfile.Profile() as profiler:
                figures = CHILDREN[args.child](*json.loads(args.child_args))
            profiler.dump_stats(f"{profile}.{args.child}")
        else:
            figures = CHILDREN[args.child](*json.loads(args.child_args))
        print(json.dumps(figures))
        return 0

    import boto3
    from gateway.runtime import resources

    from devserver import aws as local_aws

    with tempfile.TemporaryDirectory(prefix="bench-split-") as workdir:
        env = clean_environment()
        port = free_port()
        moto = spawn(
            "moto",
            ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            {**env, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(MOTO_KEY_BUFFER_BYTES), "TMPDIR": workdir},
            Path(workdir),
        )
        MOTO_PID[:] = [moto.pid]
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(moto, http_ready(url + "/moto-api/"))
            env.update(
                AWS_ENDPOINT_URL=url,
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
                POWERTOOLS_TRACE_DISABLED="true",
                POWERTOOLS_LOG_LEVEL="WARNING",
                TMPDIR=workdir,
            )
            env[resources.ENV_BUCKET_NAME] = BUCKET
            env[resources.ENV_TABLE_NAME] = TABLE
            os.environ.update(env)
            _s3().create_bucket(Bucket=BUCKET)
            local_aws.ensure_table(boto3.client("dynamodb"), TABLE)
            results = {f"{size:g}": measure_size(env, size, args.runs) for size in args.sizes_mb}
        finally:
            moto.stop()

    columns = {
        "lines": "lines",
        "parts": "parts",
        "split_mb_per_second": "split MB/s",
        "merge_mb_per_second": "merge MB/s",
        "split_mb_per_cpu_second": "split MB/cpu-s",
        "merge_mb_per_cpu_second": "merge MB/cpu-s",
        "split_closing_seconds": "split close s",
        "split_cpu_seconds": "split cpu s",
        "split_moto_cpu_seconds": "split moto cpu",
        "merge_closing_seconds": "merge close s",
        "merge_cpu_seconds": "merge cpu s",
        "merge_moto_cpu_seconds": "merge moto cpu",
        "split_peak_rss_mib": "split RSS MiB",
        "merge_peak_rss_mib": "merge RSS MiB",
        "load_average": "load avg 1 min",
    }
    print(f"{'size MB':>8} " + " ".join(f"{title:>15}" for title in columns.values()))
    for size, figures in results.items():
        print(f"{size:>8} " + " ".join(f"{figures[name]:>15.1f}" for name in columns))
    checked = goals(results)
    if args.json:
        write_json(
            args.json, {"runs": args.runs, "results": results, "goals": [goal.line() for goal in checked]}
        )
    return verdict(checked, report_only=args.report_only)


if __name__ == "__main__":
    raise SystemExit(main())
