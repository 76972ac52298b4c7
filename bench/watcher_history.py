"""A watcher pass's DynamoDB reads as the history grows: 1,000, 10,000 and 100,000 finished
(settled) batches beside the same live work.

    .venv/bin/python bench/watcher_history.py                  # up to 100,000, 3 passes a size (~4 min)
    .venv/bin/python bench/watcher_history.py --sizes 1000,5000 --passes 1 --report-only

A fresh table on an embedded moto server (what `make serve` embeds); `--live` batch records
`in_progress` at one provider deployment (the stand-in provider of bench/watcher.py holds
them); then the finished history grows to each size, seeded directly with BatchWriteItem (25
items a call, as a settled batch is stored: its settlement, no watch attribute), and
`--passes` watcher passes run at each size (run i = the i-th pass at every size). Counted
through botocore's event hooks: the items the pass's Queries read (`ScannedCount`, what
DynamoDB bills a Query for) and its DynamoDB calls. For contrast, the filtered by_kind Query
the watcher made before the sparse index is run once at each size up to `--contrast-up-to`
(`old query read`; it reads the whole history by construction). Seeding
dominates the time (moto takes about 2 ms an item), so the history grows in one table rather
than once per run; `--tables` repeats the whole thing on fresh tables.

Goals (exit 1 when missed, unless --report-only): at every size, in every run, the pass reads
at most 1.05x what the same run read at the first size, and no more items than the live work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench._goals import Goal, add_report_only_flag, verdict  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median  # noqa: E402
from bench.watcher import PROVIDER, CountingProvider, _start_aws  # noqa: E402

_BATCH_WRITE = 25


def _fresh_table(run: int) -> str:
    import boto3
    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings
    from gateway.storage.dynamo import dynamodb_client

    from devserver.aws import ensure_table

    table = f"bench-watcher-history-{run}-{time.time_ns()}"
    ensure_table(boto3.client("dynamodb"), table)
    os.environ[resources.ENV_TABLE_NAME] = table
    reset_settings()
    dynamodb_client.cache_clear()
    return table


def _batch(number: int, prefix: str, status: str, now: int) -> tuple[dict[str, Any], Any]:
    from gateway.models.batches import Batch
    from gateway.storage.id_map import ObjectRecord

    upstream = {
        "id": f"batch_up{prefix}{number:06d}",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-up-input",
        "completion_window": "24h",
        "status": status,
        "created_at": now - number,
        "request_counts": {"total": 100, "completed": 100 if status == "completed" else 10, "failed": 0},
    }
    record = ObjectRecord(
        id=f"batch_{prefix}{number:06d}",
        kind="batch",
        owner="bench-key",
        provider=PROVIDER,
        created_at=now - number,
        object=Batch.model_validate({**upstream, "id": f"batch_{prefix}{number:06d}"}).model_dump(
            mode="json"
        ),
        upstream_id=str(upstream["id"]),
        state={"input_file_id": "file-input", "model": "gpt-4o-mini", "hold": "0.01"},
    )
    return upstream, record


def _seed_live(count: int, now: int) -> dict[str, dict[str, Any]]:
    from gateway.storage.id_map import IdMap

    id_map, upstream = IdMap(), {}
    for number in range(count):
        provider_batch, record = _batch(number, "live", "in_progress", now)
        upstream[provider_batch["id"]] = provider_batch
        id_map.put(record)
    return upstream


def _seed_history(table: str, start: int, stop: int, now: int) -> None:
    """Settled batches `start`..`stop`, as the table holds them after their settlement."""
    from gateway.storage.dynamo import dynamodb_client, marshal

    settlement = json.dumps(
        {
            "usage": {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500},
            "cost": None,
            "succeeded": 100,
            "failed": 0,
            "model": "gpt-4o-mini",
            "settled_at": now,
        }
    )
    client = dynamodb_client()
    requests: list[dict[str, Any]] = []
    for number in range(start, stop):
        _, record = _batch(number, "done", "completed", now - 86_400)
        record.settlement = {"settled": True}  # settled: to_item leaves the watch attribute out
        item = marshal({**record.to_item(), "settlement": settlement})
        requests.append({"PutRequest": {"Item": item}})
        if len(requests) == _BATCH_WRITE or number == stop - 1:
            pending: dict[str, Any] = {table: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            requests = []


def _count_queries() -> dict[str, Counter[str]]:
    from gateway.storage.dynamo import dynamodb_client

    counts: dict[str, Counter[str]] = {"calls": Counter(), "read": Counter()}
    events = dynamodb_client().meta.events
    events.register("before-call.dynamodb.*", lambda model, **_: counts["calls"].update([model.name]))

    def after_query(parsed: dict[str, Any], **_: Any) -> None:
        counts["read"].update({"scanned": int(parsed.get("ScannedCount") or 0)})
        counts["read"].update({"returned": int(parsed.get("Count") or 0)})

    events.register("after-call.dynamodb.Query", after_query)
    return counts


def _old_query_read(table: str) -> int:
    """Items the filtered by_kind Query of the watcher before the sparse index read."""
    from gateway.models.batches import TERMINAL_BATCH_STATUSES
    from gateway.runtime import resources
    from gateway.storage.dynamo import dynamodb_client

    aliases = {f":s{i}": {"S": s} for i, s in enumerate(sorted(TERMINAL_BATCH_STATUSES))}
    params: dict[str, Any] = {
        "TableName": table,
        "IndexName": resources.INDEX_BY_KIND,
        "KeyConditionExpression": "#kind = :kind",
        "FilterExpression": f"NOT (#st IN ({', '.join(aliases)}))",
        "ExpressionAttributeNames": {"#kind": "kind", "#st": "status"},
        "ExpressionAttributeValues": {":kind": {"S": "batch"}, **aliases},
        "Select": "COUNT",
    }
    scanned = 0
    while True:
        response = dynamodb_client().query(**params)
        scanned += int(response.get("ScannedCount") or 0)
        if not response.get("LastEvaluatedKey"):
            return scanned
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def one_table(
    sizes: list[int], live: int, passes: int, table_number: int, contrast_up_to: int
) -> list[list[dict[str, Any]]]:
    """Per pass index (a run), the figures at each size."""
    from gateway.service import batches, translate, watcher
    from gateway.service.deadline import Deadline
    from gateway.storage.dynamo import dynamodb_client

    table, now = _fresh_table(table_number), int(time.time())
    provider = CountingProvider(_seed_live(live, now), unlisted=set())
    for module in (watcher, batches, translate):
        module.client_for = lambda _name: provider  # type: ignore[attr-defined]
    watcher.run_pass(Deadline.after(600))  # the backfill's one-time scan and the live batches' first look
    runs: list[list[dict[str, Any]]] = [[] for _ in range(passes)]
    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        _seed_history(table, seeded, size, now)
        seed_seconds, seeded = time.perf_counter() - started, size
        # moto pages a Query by re-reading the whole index, so the contrast stops at `contrast_up_to`
        old_read = _old_query_read(table) if table_number == 0 and size <= contrast_up_to else None
        for run in runs:
            dynamodb_client.cache_clear()  # a fresh client: only this pass's calls are counted
            counts = _count_queries()
            started = time.perf_counter()
            report = watcher.run_pass(Deadline.after(600))
            seconds = time.perf_counter() - started
            print(
                f"table {table_number}, history {size}: read {counts['read']['scanned']} items in "
                f"{counts['calls']['Query']} queries ({seconds:.1f} s; seeding took {seed_seconds:.0f} s)",
                flush=True,
            )
            run.append(
                {
                    "history": size,
                    "read": counts["read"]["scanned"],
                    "returned": counts["read"]["returned"],
                    "queries": counts["calls"]["Query"],
                    "dynamodb_calls": sum(counts["calls"].values()),
                    "batches_seen": report.batches_seen,
                    "errors": report.errors,
                    "pass_seconds": seconds,
                    "seed_seconds": seed_seconds,
                    "old_query_read": old_read,
                }
            )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="finished batches, comma-separated")
    parser.add_argument("--live", type=int, default=50, help="unfinished batches (the live work)")
    parser.add_argument("--passes", type=int, default=3, help="passes (runs) at each size")
    parser.add_argument("--tables", type=int, default=1, help="fresh tables, each grown to every size")
    parser.add_argument(
        "--contrast-up-to", type=int, default=10_000, help="run the old filtered query up to this size"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    moto = _start_aws()
    try:
        runs = [
            run
            for number in range(args.tables)
            for run in one_table(sizes, args.live, args.passes, number, args.contrast_up_to)
        ]
    finally:
        moto.stop()
    print(f"{args.live} unfinished batches; finished history seeded to each size; {len(runs)} runs")
    print(
        f"{'history':>8} {'read (median)':>13} {'ratio (worst)':>13} {'queries':>7} {'dynamodb':>8} "
        f"{'pass s':>7} {'old query read':>14}"
    )
    ratios: list[float] = []
    for index, size in enumerate(sizes):
        at_size = [run[index] for run in runs]
        worst = max(run[index]["read"] / max(run[0]["read"], 1) for run in runs)
        ratios.append(worst)
        print(
            f"{size:>8} {median(f['read'] for f in at_size):>13.0f} {worst:>13.2f} "
            f"{median(f['queries'] for f in at_size):>7.0f} "
            f"{median(f['dynamodb_calls'] for f in at_size):>8.0f} "
            f"{median(f['pass_seconds'] for f in at_size):>7.2f} {runs[0][index]['old_query_read']!s:>14}"
        )
    goals = [
        Goal("pass reads, largest history / first size (worst run)", max(ratios), 1.05, "x"),
        Goal(
            "pass reads beyond the live work (worst)",
            max(f["read"] - args.live for run in runs for f in run),
            0,
            "items",
        ),
        Goal("pass errors", max(f["errors"] for run in runs for f in run), 0, "errors"),
    ]
    if args.json:
        write_json(args.json, {"args": vars(args) | {"json": str(args.json)}, "runs": runs})
    return verdict(goals, report_only=args.report_only)


if __name__ == "__main__":
    raise SystemExit(main())
