"""One watcher pass over 1,000 unfinished batches at one provider, and the same pass again.

    .venv/bin/python bench/watcher.py                      # 1,000 batches, 3 runs (~1-2 min)
    .venv/bin/python bench/watcher.py --batches 300 --runs 1 --report-only

Each run: a fresh table on an embedded moto server (what `make serve` embeds), 1,000 batch
records `in_progress` at one provider deployment, the provider (an in-process stand-in that
answers OpenAI's list and retrieve shapes and counts the calls) holding them all, its list
pages leaving out `--misses` of them. Pass 1: the provider's counts moved for `--changed` of
them. Pass 2: nothing changed. The watcher is the real one (service.watcher.run_pass); its
DynamoDB calls are counted through botocore's event hooks.

Goals (exit 1 when missed, unless --report-only): pass 1 makes at most ⌈batches/100⌉ list
calls and exactly one retrieve per batch the pages missed, and records each change once; pass 2
writes nothing (no DynamoDB write) and makes the same provider calls.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
PROVIDER = "openai"


class CountingProvider:
    """OpenAI's batch list (newest first, `after` cursor, at most 100) and retrieve, counted."""

    def __init__(self, batches: dict[str, dict[str, Any]], unlisted: set[str]) -> None:
        self.batches, self.unlisted = batches, unlisted
        self.calls: Counter[str] = Counter()

    def list_batches(self, *, limit: int = 20, after: str | None = None, timeout: float | None = None) -> Any:
        self.calls["list"] += 1
        listed = sorted(
            (b for b in self.batches.values() if b["id"] not in self.unlisted),
            key=lambda b: (-b["created_at"], b["id"]),
        )
        if after is not None:
            ids = [b["id"] for b in listed]
            listed = listed[ids.index(after) + 1 :]
        page = listed[: min(limit, 100)]
        return {"object": "list", "data": copy.deepcopy(page), "has_more": len(listed) > len(page)}

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self.calls["retrieve"] += 1
        return copy.deepcopy(self.batches[batch_id])


def _start_aws() -> Any:
    from devserver import aws

    moto = aws.start_moto()
    os.environ.update(aws.DUMMY_CREDENTIALS)
    os.environ.update(AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION=aws.DEFAULT_REGION)
    os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_TRACE_DISABLED="true")
    from gateway.runtime import resources

    os.environ[resources.ENV_PROVIDERS] = json.dumps(
        {PROVIDER: {"type": "openai", "api_base": "http://127.0.0.1:9/v1"}}
    )
    os.environ.pop(resources.ENV_EVENT_BUS_NAME, None)  # the bus is not what is measured
    for name, value in {
        resources.ENV_BUCKET_NAME: "bench",
        resources.ENV_MASTER_KEY_SECRET: "m",
        resources.ENV_PROVIDER_KEYS_SECRET: "p",
        resources.ENV_KEY_PEPPER_SECRET: "k",
    }.items():
        os.environ.setdefault(name, value)
    return moto


def _seed(count: int, run: int) -> dict[str, dict[str, Any]]:
    """A fresh table with `count` in-progress batch records; the provider's copies."""
    import boto3
    from gateway.models.batches import Batch
    from gateway.runtime import resources
    from gateway.runtime.settings import reset_settings
    from gateway.storage.dynamo import dynamodb_client
    from gateway.storage.id_map import IdMap, ObjectRecord

    from devserver.aws import ensure_table

    table = f"bench-watcher-{run}-{time.time_ns()}"
    ensure_table(boto3.client("dynamodb"), table)
    os.environ[resources.ENV_TABLE_NAME] = table
    reset_settings()
    dynamodb_client.cache_clear()
    id_map, upstream, now = IdMap(), {}, int(time.time())
    for number in range(count):
        upstream_id, gateway_id = f"batch_up{number:05d}", f"batch_gw{run}x{number:05d}"
        provider_batch = {
            "id": upstream_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-up-input",
            "completion_window": "24h",
            "status": "in_progress",
            "created_at": now - number,
            "request_counts": {"total": 100, "completed": 10, "failed": 0},
        }
        upstream[upstream_id] = provider_batch
        record = ObjectRecord(
            id=gateway_id,
            kind="batch",
            owner="bench-key",
            provider=PROVIDER,
            created_at=now - number,
            # as the gateway stores it: the wire model's full dump
            object=Batch.model_validate(
                {**provider_batch, "id": gateway_id, "input_file_id": "file-input"}
            ).model_dump(mode="json"),
            upstream_id=upstream_id,
            state={"input_file_id": "file-input"},
        )
        id_map.put(record)
    return upstream


def _count_dynamodb_calls() -> Counter[str]:
    from gateway.storage.dynamo import dynamodb_client

    calls: Counter[str] = Counter()
    dynamodb_client().meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def one_run(count: int, changed: int, misses: int, run: int) -> dict[str, Any]:
    from gateway.service import batches, translate, watcher
    from gateway.service.deadline import Deadline

    upstream = _seed(count, run)
    ids = sorted(upstream)
    provider = CountingProvider(upstream, unlisted=set(ids[:: max(1, count // max(1, misses))][:misses]))
    for module in (watcher, batches, translate):
        module.client_for = lambda _name: provider  # type: ignore[attr-defined]
    for upstream_id in ids[-changed:] if changed else []:
        upstream[upstream_id]["request_counts"] = {"total": 100, "completed": 60, "failed": 1}
    figures: dict[str, Any] = {}
    for label in ("changed", "unchanged"):
        provider.calls.clear()
        dynamo = _count_dynamodb_calls()
        started = time.perf_counter()
        report = watcher.run_pass(Deadline.after(600))
        seconds = time.perf_counter() - started
        figures[label] = {
            "seconds": seconds,
            "list_calls": provider.calls["list"],
            "retrieves": provider.calls["retrieve"],
            "dynamodb_calls": sum(dynamo.values()),
            "dynamodb_writes": sum(n for name, n in dynamo.items() if name in WRITES),
            "dynamodb_by_operation": dict(dynamo),
            "recorded": report.changed,
            "errors": report.errors,
        }
        from gateway.storage.dynamo import dynamodb_client

        dynamodb_client.cache_clear()  # the next pass counts on a fresh client
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=100, help="batches whose counts moved before pass 1")
    parser.add_argument("--misses", type=int, default=3, help="batches the provider's pages leave out")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_report_only_flag(parser)
    args = parser.parse_args(argv)
    moto = _start_aws()
    try:
        runs = [one_run(args.batches, args.changed, args.misses, run) for run in range(args.runs)]
    finally:
        moto.stop()
    print(
        f"{args.batches} unfinished batches at one provider, {args.changed} changed, "
        f"{args.misses} missed by the pages"
    )
    print(
        f"{'pass':>10} {'list':>5} {'retrieve':>8} {'dynamodb':>8} {'writes':>6} {'recorded':>8} "
        f"{'seconds (median)':>17}"
    )
    summary: dict[str, dict[str, float]] = {}
    for label in ("changed", "unchanged"):
        samples = [run[label] for run in runs]
        summary[label] = {
            name: median(sample[name] for sample in samples)
            for name in (
                "list_calls",
                "retrieves",
                "dynamodb_calls",
                "dynamodb_writes",
                "recorded",
                "seconds",
            )
        }
        figures = summary[label]
        print(
            f"{label:>10} {figures['list_calls']:>5.0f} {figures['retrieves']:>8.0f} "
            f"{figures['dynamodb_calls']:>8.0f} {figures['dynamodb_writes']:>6.0f} "
            f"{figures['recorded']:>8.0f} {figures['seconds']:>17.2f}"
        )
    print("pass 1 DynamoDB calls by operation:", runs[0]["changed"]["dynamodb_by_operation"])
    worst = {
        label: {name: max(run[label][name] for run in runs) for name in summary[label]} for label in summary
    }
    pages = math.ceil(args.batches / 100)
    goals = [
        Goal("pass 1 list calls", worst["changed"]["list_calls"], pages, "calls"),
        Goal("pass 1 retrieves", worst["changed"]["retrieves"], args.misses, "calls"),
        Goal(
            "pass 1 changes recorded, off by",
            max(abs(run["changed"]["recorded"] - args.changed) for run in runs),
            0,
            "batches",
        ),
        Goal(
            "pass 2 provider calls",
            worst["unchanged"]["list_calls"] + worst["unchanged"]["retrieves"],
            pages + args.misses,
            "calls",
        ),
        Goal("pass 2 DynamoDB writes", worst["unchanged"]["dynamodb_writes"], 0, "writes"),
    ]
    if args.json:
        write_json(
            args.json, {"args": vars(args) | {"json": str(args.json)}, "runs": runs, "summary": summary}
        )
    return verdict(goals, report_only=args.report_only)


if __name__ == "__main__":
    raise SystemExit(main())
