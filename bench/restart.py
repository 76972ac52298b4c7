"""How long `make serve` takes to start from a data directory of N stored items.

    .venv/bin/python bench/restart.py                       # 1,400 items, 100 objects, 3 runs each
    .venv/bin/python bench/restart.py --items 4000 --runs 5 --json bench/results/restart.json

Writes a data directory (devserver.persistence's layout) holding `--items` table items (half
object rows of about 1.2 KB, half their reverse-id rows, as the gateway writes them) and
`--objects` S3 objects of 10 KB, then times `start_gateway(data_dir=...)` in this process
until it serves, alternating two restores in the same run:

    batched   what the devserver does: BatchWriteItem 25 items a call, objects on 8 threads
    one-by-one  the restore before it: one PutItem per item, one PutObject after the other

Each run starts from a fresh copy of the directory and an empty moto backend; the figure is
the median of `--runs` starts, and the ratio one-by-one / batched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._results import write_json  # noqa: E402
from bench._stats import median  # noqa: E402

OBJECT_BYTES = 1200
BODY_BYTES = 10 * 1024


def write_data_dir(directory: Path, items: int, objects: int) -> None:
    """A data directory as a save leaves it, with synthetic gateway rows and S3 objects."""
    rows: list[dict[str, Any]] = []
    for index in range(items // 2):
        kind = "file" if index % 2 else "batch"
        gateway_id = f"{kind}-bench{index:06d}"
        upstream = f"up-{index:06d}"
        created = f"{1_700_000_000_000_000 + index:016d}#{gateway_id}"
        shown = {"id": gateway_id, "object": kind, "status": "completed", "padding": "x" * OBJECT_BYTES}
        rows.append(
            {
                "pk": {"S": gateway_id},
                "kind": {"S": kind},
                "owner": {"S": "master"},
                "owner_kind": {"S": f"master#{kind}"},
                "created_key": {"S": created},
                "provider": {"S": "openai"},
                "upstream_id": {"S": upstream},
                "status": {"S": "completed"},
                "object": {"S": json.dumps(shown)},
                "state": {"S": "{}"},
            }
        )
        rows.append({"pk": {"S": f"upstream#openai#{upstream}"}, "gateway_id": {"S": gateway_id}})
    bodies = directory / "aws" / "objects"
    bodies.mkdir(parents=True)
    entries: list[dict[str, Any]] = []
    for index in range(objects):
        body = os.urandom(BODY_BYTES)
        digest = hashlib.sha256(body).hexdigest()
        (bodies / digest).write_bytes(body)
        entries.append(
            {
                "key": f"file-content/file-bench{index:06d}",
                "body": digest,
                "content_type": None,
                "metadata": {},
            }
        )
    manifest = {
        "version": 2,
        "generation": 1,
        "aws": {"items": rows, "objects": entries, "secrets": {}},
        "simulator_records": None,
    }
    (directory / "snapshot.json").write_text(json.dumps(manifest))


def restore_one_by_one(self: Any, half: dict[str, Any], refused: Any) -> tuple[int, int]:
    """The restore before the batched one: a PutItem per item, a PutObject after the other."""
    from devserver.persistence import _encode_binary

    for item in half["items"]:
        self._dynamodb.put_item(TableName=self.table, Item=_encode_binary(item))
    for entry in half["objects"]:
        with open(self.objects_dir / entry["body"], "rb") as body:
            self._s3.put_object(Bucket=self.bucket, Key=entry["key"], Body=body, Metadata=entry["metadata"])
    return len(half["items"]), len(half["objects"])


def time_start(source: Path, scratch: Path, way: str) -> tuple[float, float]:
    """(seconds until the gateway serves, seconds of those spent restoring the table and bucket)"""
    from moto.moto_api._internal.models import moto_api_backend

    from devserver import start_gateway
    from devserver.persistence import AwsSnapshot, LocalData

    data = scratch / f"data-{way}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(source, data)
    moto_api_backend.reset()
    batched = AwsSnapshot.restore_data
    if way == "one-by-one":
        AwsSnapshot.restore_data = restore_one_by_one  # type: ignore[method-assign]
    restore = LocalData.restore_aws_data
    restoring: list[float] = []

    def timed_restore(self: LocalData) -> None:
        started = time.perf_counter()
        restore(self)
        restoring.append(time.perf_counter() - started)

    LocalData.restore_aws_data = timed_restore  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        gateway = start_gateway(provider_env={}, data_dir=data, watch_interval_seconds=0)
        took = time.perf_counter() - started
    finally:
        AwsSnapshot.restore_data = batched  # type: ignore[method-assign]
        LocalData.restore_aws_data = restore  # type: ignore[method-assign]
    try:
        assert gateway.local_data is not None
        restored = gateway.local_data.restored
        manifest = json.loads((source / "snapshot.json").read_text())["aws"]
        assert (restored.items, restored.objects) == (len(manifest["items"]), len(manifest["objects"])), (
            restored
        )
    finally:
        gateway.local_data.save = lambda **_: None  # type: ignore[method-assign,union-attr]  # no stop save
        gateway.stop()
    return took, restoring[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1400)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import logging

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as temporary:
        scratch = Path(temporary)
        source = scratch / "source"
        write_data_dir(source, args.items, args.objects)
        time_start(source, scratch, "batched")  # warm-up: the first start imports every handler
        samples: dict[str, list[float]] = {"batched": [], "one-by-one": []}
        restores: dict[str, list[float]] = {"batched": [], "one-by-one": []}
        for run in range(args.runs):
            for way in ("one-by-one", "batched") if run % 2 else ("batched", "one-by-one"):
                took, restoring = time_start(source, scratch, way)
                samples[way].append(took)
                restores[way].append(restoring)
                print(f"run {run + 1} {way:<11} start {took:6.2f} s   restore {restoring:6.2f} s", flush=True)
    starts = {way: median(values) for way, values in samples.items()}
    restored = {way: median(values) for way, values in restores.items()}
    print(
        f"\n{args.items} items and {args.objects} objects, median of {args.runs}:\n"
        f"  start    batched {starts['batched']:.2f} s, one-by-one {starts['one-by-one']:.2f} s "
        f"(x{starts['one-by-one'] / starts['batched']:.1f})\n"
        f"  restore  batched {restored['batched']:.2f} s, one-by-one {restored['one-by-one']:.2f} s "
        f"(x{restored['one-by-one'] / restored['batched']:.1f})"
    )
    if args.json:
        report = {"args": vars(args) | {"json": str(args.json)}, "starts": samples, "restores": restores}
        write_json(args.json, report | {"median_start": starts, "median_restore": restored})
    return 0


if __name__ == "__main__":
    sys.exit(main())
