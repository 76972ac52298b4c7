"""A batch plan's split and merge, end to end through S3: throughput and peak memory.

    .venv/bin/python bench/split.py                          # 20 and 200 MB, 3 runs each
    .venv/bin/python bench/split.py --sizes-mb 2 20 --runs 1 --report-only

Starts a moto server (`python -m moto.server`, objects over 1 MiB spooled to its disk), as in
AWS where S3 is remote and the process that splits and merges is a Lambda function alone.
For each size (MB = 10^6 bytes; 400,000 request lines at 200 MB, about 500 bytes each, the
smaller sizes with the same line size) it writes a valid batch input file to the bucket,
then, each in a fresh process:

1. split: `split_input` over `object_lines(input)` with OpenAI's caps (50,000 requests,
   200 MB a part) into `S3PartSink`s: every part file and its index written to S3 (timed);
2. provider (not timed): a simulated provider answers each part, its output lines about as
   long as the request lines and in reverse order within every 1,000 lines (the merge sorts),
   1 % of the lines failing with `server_error`; then a retry split of just the failed lines
   (`select`), which the provider answers;
3. merge: `merge_results` of every attempt (the retry last) from S3 into an output and an
   error object written with `S3ObjectWriter` (timed).

Checked after each run: the output holds every custom_id once, in input order, and the error
file is empty (every retry succeeded). Reported per size: median MB/s of split (input bytes)
and merge (output bytes), the peak RSS of the split and merge processes, and beside the wall
figures the gateway's own: MB per CPU second of the split and merge processes, the CPU seconds
moto spent meanwhile (S3's side, not the gateway's), the wall seconds spent closing objects
(the last part sent and CompleteMultipartUpload: moto assembles the object there, copying
it, which S3 does not on the Lambda's clock; they stay in the timed figures), and the
machine's 1-minute load average (it is shared: compare figures of one run, not across days).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
OPENAI_CAPS = (50_000, 200 * MB)
FAILING_EVERY = 100  # 1 % of the lines fail on their first attempt
REVERSED_RUN = 1000  # the provider answers each run of this many lines backwards
MOTO_KEY_BUFFER_BYTES = MIB


# -- the child processes (each measured alone) ---------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def _prefix(size: str, attempt: str) -> str:
    return f"plan/{size}/{attempt}/"


def child_split(size: str, attempt: str, select_key: str | None) -> dict[str, Any]:
    from gateway.service.plan.split import PartLimits, split_input
    from gateway.storage.plan_files import object_lines, part_sinks

    select = None
    if select_key:
        wanted = {
            int(number) for number in _s3().get_object(Bucket=BUCKET, Key=select_key)["Body"].read().split()
        }
        select = wanted.__contains__
    closing = [0.0]
    open_part = part_sinks(_prefix(size, attempt), bucket=BUCKET)

    def timed_part(number: int) -> Any:
        sink = open_part(number)
        close = sink.close

        def timed_close() -> None:
            started = time.perf_counter()
            close()
            closing[0] += time.perf_counter() - started

        sink.close = timed_close  # type: ignore[method-assign]
        return sink

    started, cpu = time.perf_counter(), _cpu_seconds()
    slices = split_input(
        object_lines(f"input/{size}.jsonl", bucket=BUCKET),
        PartLimits(OPENAI_CAPS[0], OPENAI_CAPS[1], None),
        timed_part,
        select=select,
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "closing_seconds": closing[0],
        "cpu_seconds": _cpu_seconds() - cpu,
        "parts": len(slices),
        "lines": sum(part.line_count for part in slices),
        "bytes": sum(part.byte_count for part in slices),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _answer(line: bytes, number: int, failing: bool) -> bytes:
    from gateway.formats.custom_ids import custom_id_of

    custom_id = custom_id_of(line)
    if failing:
        error = {"code": "server_error", "message": "The server had an error."}
        return json.dumps(
            {"id": f"batch_req_{number}", "custom_id": custom_id, "response": None, "error": error}
        ).encode()
    content = "answer " * max(0, (len(line) - 260) // 7)
    body = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"content": content}}]}
    answer = {
        "id": f"batch_req_{number}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "body": body},
        "error": None,
    }
    return json.dumps(answer).encode()


def child_provide(size: str, attempt: str, parts: int, fail: bool) -> dict[str, Any]:
    """Answers every part of the attempt; writes the failed lines' numbers for the retry split."""
    from gateway.storage.plan_files import S3ObjectWriter, index_key, object_lines, part_key, read_index

    prefix = _prefix(size, attempt)
    failed: list[int] = []
    for part in range(parts):
        index = read_index(index_key(prefix, part), bucket=BUCKET)
        with (
            S3ObjectWriter(f"{prefix}{part:05d}.output", bucket=BUCKET) as output,
            S3ObjectWriter(f"{prefix}{part:05d}.errors", bucket=BUCKET) as errors,
        ):
            run: list[bytes] = []
            for line in object_lines(part_key(prefix, part), bucket=BUCKET):
                run.append(line)
                if len(run) == REVERSED_RUN:
                    _answer_run(run, index, fail, failed, output, errors)
                    run = []
            _answer_run(run, index, fail, failed, output, errors)
    if fail:
        _s3().put_object(Bucket=BUCKET, Key=f"{prefix}failed", Body="\n".join(map(str, failed)).encode())
    return {"failed": len(failed)}


def _answer_run(
    run: list[bytes], index: dict[str, int], fail: bool, failed: list[int], output: Any, errors: Any
) -> None:
    from gateway.formats.custom_ids import custom_id_of

    for line in reversed(run):
        number = index[custom_id_of(line) or ""]
        failing = fail and number % FAILING_EVERY == 0
        if failing:
            failed.append(number)
        (errors if failing else output).write(_answer(line, number, failing) + b"\n")


def child_merge(size: str, attempts: list[tuple[str, int]]) -> dict[str, Any]:
    from gateway.service.plan.merge import PartResult, merge_results
    from gateway.storage.plan_files import S3ObjectWriter, index_key, object_blocks, read_index

    def result(prefix: str, part: int) -> PartResult:
        return PartResult(
            lambda: read_index(index_key(prefix, part), bucket=BUCKET),
            lambda: object_blocks(f"{prefix}{part:05d}.output", bucket=BUCKET),
            lambda: object_blocks(f"{prefix}{part:05d}.errors", bucket=BUCKET),
        )

    results = [result(_prefix(size, attempt), part) for attempt, parts in attempts for part in range(parts)]
    started, cpu = time.perf_counter(), _cpu_seconds()
    with (
        S3ObjectWriter(f"merged/{size}.output", bucket=BUCKET) as output,
        S3ObjectWriter(f"merged/{size}.errors", bucket=BUCKET) as errors,
    ):
        counts = merge_results(results, output, errors)
        closing = time.perf_counter()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "closing_seconds": time.perf_counter() - closing,
        "cpu_seconds": _cpu_seconds() - cpu,
        "bytes": output.size + errors.size,
        "completed": counts.completed,
        "failed": counts.failed,
        "replaced": counts.replaced,
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


def write_input(size: str, lines: int) -> int:
    from gateway.storage.plan_files import S3ObjectWriter

    with S3ObjectWriter(f"input/{size}.jsonl", bucket=BUCKET) as writer:
        for line in request_lines(lines):
            writer.write(line)
    return writer.size


def check_output(size: str, lines: int) -> None:
    from gateway.formats.custom_ids import custom_id_of
    from gateway.storage.plan_files import object_lines

    expected = (f"request-{index}" for index in range(lines))
    for number, line in enumerate(object_lines(f"merged/{size}.output", bucket=BUCKET)):
        if custom_id_of(line) != next(expected, None):
            raise SystemExit(f"merged output of {size} MB: line {number + 1} out of order or doubled")
    if next(expected, None) is not None:
        raise SystemExit(f"merged output of {size} MB: lines missing")
    if list(object_lines(f"merged/{size}.errors", bucket=BUCKET)):
        raise SystemExit(f"merged errors of {size} MB: a retried line kept its error")


def measure_size(env: dict[str, str], size_mb: float, runs: int) -> dict[str, float]:
    size = f"{size_mb:g}"
    lines = max(1, round(LINES_AT_200_MB * size_mb / 200))
    input_bytes = write_input(size, lines)
    splits, merges = [], []
    loads = [os.getloadavg()[0]]
    for _ in range(runs):
        first = run_child(env, "split", size, "first", None)
        run_child(env, "provide", size, "first", first["parts"], True)
        retry = run_child(env, "split", size, "retry", f"{_prefix(size, 'first')}failed")
        run_child(env, "provide", size, "retry", retry["parts"], False)
        merged = run_child(env, "merge", size, [["first", first["parts"]], ["retry", retry["parts"]]])
        if merged["completed"] != lines or merged["replaced"] != retry["lines"]:
            raise SystemExit(f"merge of {size} MB counted {merged}, expected {lines} lines")
        check_output(size, lines)
        splits.append(first)
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
        print(json.dumps(CHILDREN[args.child](*json.loads(args.child_args))))
        return 0

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
                GATEWAY_BUCKET_NAME=BUCKET,
                POWERTOOLS_TRACE_DISABLED="true",
                TMPDIR=workdir,
            )
            os.environ.update(env)
            _s3().create_bucket(Bucket=BUCKET)
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
