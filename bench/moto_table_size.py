"""What the embedded AWS endpoint (moto) charges per DynamoDB call as the table grows.

    .venv/bin/python bench/moto_table_size.py                  # 100, 400, 1600 objects; ~1 minute
    .venv/bin/python bench/moto_table_size.py --sizes 100 800 --json bench/results/moto.json

Starts the same moto server `make serve` embeds (devserver.moto_server, keep-alive), creates
the stack's table on it, and fills it with gateway objects through the gateway's own
`IdMap.put` (each object with its reverse-id item, half files, half batches, one owner). At
each size it times, with the same `IdMap` code the handlers use:

    GetItem          IdMap.get of one object (files.retrieve, batches.retrieve)
    Query (object)   IdMap.page_objects, limit 10 (files.list)
    Query (all)      IdMap.page, limit 10 (batches.list)

median over --rounds of each round's p50 (--requests calls per round). Real DynamoDB serves a
Query from the index's key order: its cost follows the page, not the table. moto instead
reads and sorts every item of the table on each Query, so the list figures of
`bench/overhead.py` grow with whatever the table holds by then; this bench shows by how much.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._results import write_json  # noqa: E402
from bench._stats import median, milliseconds, percentile  # noqa: E402

DEFAULT_SIZES = (100, 400, 1600)
OBJECT_BYTES = 1200  # about what a stored Batch object weighs as JSON


def fill(id_map: Any, start: int, stop: int) -> None:
    from gateway.storage.id_map import ObjectRecord

    for index in range(start, stop):
        kind = "file" if index % 2 else "batch"
        record = ObjectRecord(
            id=f"{kind}-bench{index:06d}",
            kind=kind,
            owner="master",
            provider="openai",
            created_at=1_700_000_000 + index,
            object={"id": f"{kind}-bench{index:06d}", "status": "validating", "padding": "x" * OBJECT_BYTES},
            upstream_id=f"up-{index}",
        )
        id_map.put(record)


def time_call(call: Callable[[], object], requests: int) -> float:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentile(samples, 50.0)


def measure(id_map: Any, rounds: int, requests: int) -> dict[str, float]:
    from gateway.storage.id_map import PageQuery

    calls: dict[str, Callable[[], object]] = {
        "GetItem": lambda: id_map.get("file-bench000001"),
        "Query (object)": lambda: id_map.page_objects(PageQuery(kind="file", limit=10, owner="master")),
        "Query (all)": lambda: id_map.page(PageQuery(kind="batch", limit=10, owner="master")),
    }
    per_round: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            per_round[name].append(time_call(call, requests))
    return {name: milliseconds(median(values)) for name, values in per_round.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="objects in the table"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    from devserver.aws import ensure_table, start_moto

    moto = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    try:
        import boto3
        from gateway.storage.id_map import IdMap

        ensure_table(boto3.client("dynamodb"))
        id_map = IdMap()
        results: dict[int, dict[str, float]] = {}
        filled = 0
        for size in sorted(args.sizes):
            fill(id_map, filled, size)
            filled = size
            results[size] = measure(id_map, args.rounds, args.requests)
            print(f"  {size} objects done", file=sys.stderr, flush=True)
    finally:
        moto.stop()

    names = list(next(iter(results.values())))
    header = f"{'objects':>8}{'items':>8}" + "".join(f"{name:>16}" for name in names)
    print(f"moto p50 per call, ms (median of {args.rounds} rounds x {args.requests}; lists limit=10)")
    print(header)
    print("-" * len(header))
    for size, figures in results.items():
        # every object brings its reverse-id item along
        print(f"{size:>8}{size * 2:>8}" + "".join(f"{figures[name]:>16.2f}" for name in names))
    if args.json:
        write_json(args.json, {"bench": "moto_table_size", "unit": "ms", "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
