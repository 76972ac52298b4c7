"""`make serve`'s data across restarts: the embedded moto server's and the simulator's state.

moto keeps everything in memory and has no persistence of its own, so the gateway's AWS data
(the DynamoDB table's items, the S3 objects, the virtual keys' pepper) is read out into a
directory (the table from moto's backend in one DynamoDB turn when it runs in this process, else
by Scan; the rest through the AWS APIs) and written back through the APIs at the next start. The
provider simulator keeps its files on disk under the same directory (its storage_dir) and its
records (files, uploads, batches, Anthropic batches, Bedrock jobs) in a pickle beside them.

One snapshot holds both halves, one generation: the AWS half is read first and the simulator's
right after it, so every provider object a gateway row names is in the simulator's half (the
gateway writes a provider object's id only after the provider made it). The simulator's records
go to a new `records-<generation>.pickle`, then `snapshot.json` (the AWS half and the name of
that pickle) replaces the previous one atomically: a stop or a kill at any point leaves either
the previous generation or the new one, never half of each.

A snapshot is taken every `interval` seconds (counted from the start of the previous one) and
on a clean stop (Ctrl-C, SIGTERM); an S3 object whose ETag did not change is not read again.
A kill loses at most what changed in the last interval plus the time one save takes.

A restore writes the items 25 at a time (BatchWriteItem) and the objects on a few threads; an
item or object moto refuses is logged and kept aside under `refused/`, and the rest restored.
A data directory from before the one-generation snapshot (aws/state.json and
simulator/records.pickle saved seconds apart) is read too; a batch whose simulator record it
lacks is recorded `failed` in the simulator (code `batch_lost`), so the gateway ends it.

Layout of the data directory:

    snapshot.json                     the AWS half (table items, S3 object index, the key pepper)
                                      and the simulator records' file name (atomic, 0600)
    aws/objects/<sha256>              S3 object bodies, by content
    simulator/                        the simulator's storage_dir (files, parts, batch inputs)
    simulator/records-<generation>.pickle
    refused/                          what a restore could not write back, with the reason
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger("devserver.persistence")

DEFAULT_INTERVAL_SECONDS = 5.0
STATE_VERSION = 2
LEGACY_STATE_VERSION = 1
MANIFEST = "snapshot.json"
AWS_DIR = "aws"
SIMULATOR_DIR = "simulator"
REFUSED_DIR = "refused"
LEGACY_AWS_STATE = "state.json"
LEGACY_SIMULATOR_RECORDS = "records.pickle"
BATCH_WRITE_SIZE = 25  # BatchWriteItem's limit
OBJECT_RESTORE_THREADS = 8
LOST_BATCH_CODE = "batch_lost"
_FINISHED_BATCH = frozenset({"completed", "failed", "expired", "cancelled"})

__all__ = [
    "AwsSnapshot",
    "LocalData",
    "Restored",
    "SimulatorSnapshot",
]


@dataclass(frozen=True)
class Restored:
    """What a start found on disk (all zero on a first start)."""

    items: int = 0
    objects: int = 0
    secrets: int = 0
    simulator_files: int = 0
    simulator_batches: int = 0
    refused: int = 0  # items and objects moto would not take back (kept under refused/)
    repaired: int = 0  # batches the simulator's half lacked, recorded failed

    @property
    def empty(self) -> bool:
        return not any(dataclasses.astuple(self))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# -- AWS (moto) through its APIs -----------------------------------------------------------


def _encode_binary(value: Any) -> Any:
    """DynamoDB's typed JSON with bytes (B, BS) as base64 text, and back."""
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {key: _encode_binary(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode_binary(item) for item in value]
    return value


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Every table item at once, as boto3's Scan returns them (None: not available, Scan instead).
TableReader = Callable[[], list[dict[str, Any]] | None]


@dataclass
class Refused:
    """What a restore could not write back, and why (kept aside, never silently dropped)."""

    items: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    objects: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items) + len(self.objects)


class AwsSnapshot:
    """The gateway's table items, bucket objects and kept secrets, out of and back into moto.

    Only the secrets named in `secrets` are kept: the master key and the provider keys are
    written from the environment at every start, and real provider keys have no business on
    disk.
    """

    def __init__(
        self,
        directory: Path,
        endpoint_url: str,
        *,
        table: str,
        bucket: str,
        secrets: tuple[str, ...],
        read_table: TableReader | None = None,
    ) -> None:
        self.directory = directory
        self._read_table = read_table
        self.table = table
        self.bucket = bucket
        self.kept_secrets = secrets
        session = boto3.session.Session()
        region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._dynamodb = session.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
        self._s3 = session.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._secrets = session.client("secretsmanager", endpoint_url=endpoint_url, region_name=region)
        self._saved_bodies: dict[tuple[str, str], dict[str, Any]] = {}  # (key, ETag) -> entry

    @property
    def objects_dir(self) -> Path:
        return self.directory / "objects"

    # -- save

    def capture(self, abandon: Callable[[], bool] = lambda: False) -> dict[str, Any] | None:
        """The AWS half of a snapshot (object bodies are written under objects/ as they are
        read), or None when `abandon()` turned true on the way."""
        items = self._items(abandon)
        if items is None or abandon():
            return None
        return {"items": items, "objects": self._objects(), "secrets": self._secret_values()}

    def _items(self, abandon: Callable[[], bool]) -> list[Any] | None:
        if self._read_table is not None:
            read = self._read_table()
            if read is not None:
                return [_encode_binary(item) for item in read]
        items: list[Any] = []
        for page in self._dynamodb.get_paginator("scan").paginate(TableName=self.table):
            if abandon():
                return None
            items.extend(_encode_binary(item) for item in page["Items"])
        return items

    def _objects(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for listed in page.get("Contents", []):
                known = (listed["Key"], listed["ETag"])
                entry = self._saved_bodies.get(known)
                if entry is None or not (self.objects_dir / entry["body"]).exists():
                    entry = self._save_object(listed["Key"])
                    if entry is None:
                        continue  # deleted since the listing
                seen[known] = entry
                entries.append(entry)
        self._saved_bodies = seen
        return entries

    def _save_object(self, key: str) -> dict[str, Any] | None:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        digest = hashlib.sha256()
        fd, temporary = tempfile.mkstemp(dir=self.objects_dir, prefix=".body.")
        with os.fdopen(fd, "wb") as handle:
            for chunk in response["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
        body = digest.hexdigest()
        os.replace(temporary, self.objects_dir / body)
        return {
            "key": key,
            "body": body,
            "content_type": response.get("ContentType"),
            "metadata": response.get("Metadata") or {},
        }

    def drop_unreferenced_bodies(self, referenced: set[str]) -> None:
        if not self.objects_dir.exists():
            return
        for path in self.objects_dir.iterdir():
            if path.name not in referenced and not path.name.startswith("."):
                path.unlink(missing_ok=True)

    def _secret_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in self.kept_secrets:
            try:
                values[name] = self._secrets.get_secret_value(SecretId=name)["SecretString"]
            except ClientError as exc:
                if _error_code(exc) != "ResourceNotFoundException":
                    raise
        return values

    # -- restore

    def restore_secrets(self, half: dict[str, Any]) -> int:
        """Before the bootstrap, which keeps an existing key pepper: the virtual keys' hashes
        only match with the pepper they were made with."""
        for name, value in half["secrets"].items():
            try:
                self._secrets.create_secret(Name=name, SecretString=value)
            except ClientError as exc:
                if _error_code(exc) != "ResourceExistsException":
                    raise
                self._secrets.put_secret_value(SecretId=name, SecretString=value)
        return len(half["secrets"])

    def restore_data(self, half: dict[str, Any], refused: Refused) -> tuple[int, int]:
        """After the bootstrap created the table and the bucket: their items and objects. What
        moto refuses goes to `refused`; the rest is restored."""
        items = self._restore_items(half["items"], refused)
        with ThreadPoolExecutor(OBJECT_RESTORE_THREADS, thread_name_prefix="restore-s3") as pool:
            outcomes = list(pool.map(self._restore_object, half["objects"]))
        for entry, problem in zip(half["objects"], outcomes, strict=True):
            if problem is not None:
                refused.objects.append({"entry": entry, "reason": problem})
        return items, outcomes.count(None)

    def _restore_items(self, items: list[Any], refused: Refused) -> int:
        restored = 0
        for chunk in _chunks(items, BATCH_WRITE_SIZE):
            typed = [_encode_binary(item) for item in chunk]
            try:
                self._batch_write(typed)
                restored += len(typed)
            except ClientError:
                # One item spoils the whole batch: write them one by one to find it.
                for raw, item in zip(chunk, typed, strict=True):
                    try:
                        self._dynamodb.put_item(TableName=self.table, Item=item)
                        restored += 1
                    except ClientError as exc:
                        reason = f"{_error_code(exc)}: {exc.response.get('Error', {}).get('Message', exc)}"
                        logger.warning("restore: table item %s refused (%s); kept aside", _pk(raw), reason)
                        refused.items.append({"item": raw, "reason": reason})
        return restored

    def _batch_write(self, items: list[Any]) -> None:
        requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in itertools.count():
            answer = self._dynamodb.batch_write_item(RequestItems={self.table: requests})
            requests = answer.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))

    def _restore_object(self, entry: dict[str, Any]) -> str | None:
        """None when restored, else why not."""
        extra: dict[str, Any] = {"Metadata": entry["metadata"]}
        if entry.get("content_type"):
            extra["ContentType"] = entry["content_type"]
        try:
            with open(self.objects_dir / entry["body"], "rb") as body:
                self._s3.put_object(Bucket=self.bucket, Key=entry["key"], Body=body, **extra)
        except (OSError, ClientError) as exc:
            logger.warning("restore: S3 object %s refused (%s); kept aside", entry["key"], exc)
            return str(exc)
        return None


def _pk(item: dict[str, Any]) -> str:
    value = item.get("pk")
    return str(value.get("S")) if isinstance(value, dict) else "?"


# -- the provider simulator's records ------------------------------------------------------


class SimulatorSnapshot:
    """The simulator's records (its files stay where they are, in its storage_dir)."""

    @staticmethod
    def capture(simulator: Any) -> bytes:
        state, bedrock, gemini = simulator.state, simulator.bedrock_jobs, simulator.gemini
        with state.lock, state.anthropic.lock, bedrock.lock, gemini.lock:
            # threading.Event and a Future do not pickle: restore() gives each batch a new event.
            batches = {
                key: dataclasses.replace(b, abandoned=None, work=None) for key, b in state.batches.items()
            }
            records = {
                "files": dict(state.files),
                "uploads": dict(state.uploads),
                "batches": batches,
                "received": dict(state.received),
                "cursor_seq": dict(state.cursor_seq),
                "anthropic_batches": dict(state.anthropic.batches),
                "bedrock_jobs": dict(bedrock.jobs),
                "bedrock_tokens": dict(bedrock.by_token),
                "first_attempts": state.first_attempts.seen(),
                # the Gemini form's records (its files' bytes stay in its storage directory)
                "gemini_files": dict(gemini.files),
                "gemini_uploads": dict(gemini.uploads),
                "gemini_batches": dict(gemini.batches),
            }
        google = simulator.google
        with google.vertex.lock:  # Vertex AI's jobs and the Cloud Storage objects they read and wrote
            records["vertex_jobs"] = dict(google.vertex.jobs)
            records["gcs_objects"] = google.gcs.snapshot()
        return pickle.dumps(records)

    @classmethod
    def restore(cls, simulator: Any, data: bytes) -> tuple[int, int]:
        records = pickle.loads(data)
        state, bedrock = simulator.state, simulator.bedrock_jobs
        with state.lock:
            state.files.update(records["files"])
            state.uploads.update(records["uploads"])
            state.received.update(records["received"])
            state.cursor_seq.update(records["cursor_seq"])
            state.first_attempts.restore(records.get("first_attempts") or set())
            anthropic = records.get("anthropic_batches") or {}
            state.anthropic.batches.update(anthropic)
            state.anthropic._seq = max((batch.seq for batch in anthropic.values()), default=0)
            for batch_id, batch in records["batches"].items():
                batch.abandoned = threading.Event()
                state.batches[batch_id] = batch
                cls._resume(state, batch)
            next_seq = max(state.cursor_seq.values(), default=0) + 1
            state._seq = itertools.count(next_seq)
        with bedrock.lock:
            bedrock.jobs.update(records.get("bedrock_jobs") or {})
            bedrock.by_token.update(records.get("bedrock_tokens") or {})
        gemini = simulator.gemini
        with gemini.lock:
            gemini.files.update(records.get("gemini_files") or {})
            gemini.uploads.update(records.get("gemini_uploads") or {})
            gemini.batches.update(records.get("gemini_batches") or {})
            gemini._seq = max((batch.seq for batch in gemini.batches.values()), default=0)
        google = simulator.google
        with google.vertex.lock:
            google.vertex.jobs.update(records.get("vertex_jobs") or {})
            google.gcs.restore(records.get("gcs_objects") or {})
        return len(records["files"]), len(records["batches"])

    @staticmethod
    def _resume(state: Any, batch: Any) -> None:
        """Background work the stop interrupted starts again (its results are only revealed
        by the batch's wall-clock timeline, which a restart does not move)."""
        if batch.status == "validating" and batch.validation is None:
            batch.work = state.executor.submit(state._process_batch, batch)
        elif batch.status == "cancelling" and batch.partial is None and batch.cancel_count > 0:
            batch.work = state.executor.submit(state._process_partial, batch, batch.cancel_count)

    @staticmethod
    def repair_lost_batches(simulator: Any, items: Iterable[dict[str, Any]], providers: set[str]) -> int:
        """A gateway batch whose simulator record is missing (a data directory saved before
        both halves were one generation) would answer 502 and never end: record it `failed`
        in the simulator, so the gateway's next retrieve or watcher pass ends it."""
        from devserver.simulator.records import BatchRecord

        state = simulator.state
        now = time.time()
        repaired: list[str] = []
        with state.lock:
            for item in items:
                if _text(item, "kind") != "batch" or _text(item, "provider") not in providers:
                    continue
                if _text(item, "status") in _FINISHED_BATCH:  # nothing asks its provider any more
                    continue
                upstream = _text(item, "upstream_id")
                if not upstream or upstream in state.batches:
                    continue
                lost = _lost_batch(upstream, _text(item, "provider") or "", item, now)
                state.batches[upstream] = BatchRecord(**lost)
                repaired.append(upstream)
        if repaired:
            logger.warning(
                "restore: %d unfinished batch(es) had no simulator record, recorded failed: %s",
                len(repaired),
                ", ".join(repaired[:10]) + (" ..." if len(repaired) > 10 else ""),
            )
        return len(repaired)


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _lost_batch(upstream: str, provider: str, item: dict[str, Any], now: float) -> dict[str, Any]:
    try:
        shown = json.loads(_text(item, "object") or "{}")
    except ValueError:
        shown = {}
    created = float(shown.get("created_at") or now)
    message = (
        "The local provider simulator has no record of this batch: it was saved without it "
        "(a stop between the two halves of an older snapshot). The batch cannot finish."
    )
    return {
        "id": upstream,
        "provider": provider,
        "seq": 0,
        "endpoint": str(shown.get("endpoint") or "/v1/chat/completions"),
        "input_file_id": "",
        "input_path": "",
        "completion_window": str(shown.get("completion_window") or "24h"),
        "metadata": None,
        "output_expires_after": None,
        "created": created,
        "status": "failed",
        "errors": {
            "object": "list",
            "data": [{"code": LOST_BATCH_CODE, "message": message, "param": None, "line": None}],
        },
        "stamps": {"failed_at": int(now)},
    }


# -- both, one generation ------------------------------------------------------------------


@dataclass
class _Loaded:
    generation: int
    aws: dict[str, Any] | None
    simulator: bytes | None


class LocalData:
    """The data directory of `make serve`: restore at start, save periodically and at stop."""

    def __init__(self, directory: str | os.PathLike[str], *, fresh: bool = False) -> None:
        self.directory = Path(directory).resolve()
        if fresh and self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.aws: AwsSnapshot | None = None
        self.simulator: Any | None = None
        self.simulated_providers: set[str] = set()
        self.restored = Restored()
        self._loaded = self._load()
        self._generation = self._loaded.generation
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    @property
    def simulator_dir(self) -> Path:
        return self.directory / SIMULATOR_DIR

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST

    def _load(self) -> _Loaded:
        try:
            state = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            return self._load_legacy()
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"{self.manifest} has version {state.get('version')}, not {STATE_VERSION}")
        records = state.get("simulator_records")
        data = None
        if records:
            try:
                data = (self.simulator_dir / records).read_bytes()
            except FileNotFoundError:  # deleted by hand: the gateway's half alone, repaired
                logger.warning("restore: %s names simulator/%s, which is gone", MANIFEST, records)
        return _Loaded(int(state["generation"]), state.get("aws"), data)

    def _load_legacy(self) -> _Loaded:
        """aws/state.json and simulator/records.pickle, as saved before snapshot.json."""
        aws: dict[str, Any] | None = None
        with contextlib.suppress(FileNotFoundError):
            state = json.loads((self.directory / AWS_DIR / LEGACY_AWS_STATE).read_text())
            if state.get("version") != LEGACY_STATE_VERSION:
                raise ValueError(f"aws/{LEGACY_AWS_STATE} has version {state.get('version')}")
            aws = {name: state[name] for name in ("items", "objects", "secrets")}
        data: bytes | None = None
        with contextlib.suppress(FileNotFoundError):
            data = (self.simulator_dir / LEGACY_SIMULATOR_RECORDS).read_bytes()
        return _Loaded(0, aws, data)

    def attach_aws(
        self,
        endpoint_url: str,
        *,
        table: str,
        bucket: str,
        secrets: tuple[str, ...],
        read_table: TableReader | None = None,
    ) -> int:
        """Use the embedded moto server at `endpoint_url` (`read_table`: its table at once, in
        place of a paginated Scan); restores the kept `secrets` (call before the bootstrap) and
        returns how many."""
        self.aws = AwsSnapshot(
            self.directory / AWS_DIR,
            endpoint_url,
            table=table,
            bucket=bucket,
            secrets=secrets,
            read_table=read_table,
        )
        restored = self.aws.restore_secrets(self._loaded.aws) if self._loaded.aws else 0
        self.restored = dataclasses.replace(self.restored, secrets=restored)
        return restored

    def restore_aws_data(self) -> None:
        """After the bootstrap: the table's items and the bucket's objects; then the simulator's
        records a gateway batch names but the snapshot lacks."""
        half = self._loaded.aws
        if self.aws is None or half is None:
            return
        refused = Refused()
        items, objects = self.aws.restore_data(half, refused)
        if refused:
            self._keep_aside(refused)
        repaired = 0
        if self.simulator is not None:
            repaired = SimulatorSnapshot.repair_lost_batches(
                self.simulator, half["items"], self.simulated_providers
            )
        self.restored = dataclasses.replace(
            self.restored, items=items, objects=objects, refused=len(refused), repaired=repaired
        )

    def _keep_aside(self, refused: Refused) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / REFUSED_DIR / f"restore-{stamp}.json"
        kept = {"items": refused.items, "objects": refused.objects}
        _write_atomically(path, json.dumps(kept, indent=1).encode())
        for refusal in refused.objects:  # the next save drops bodies nothing references
            body = self.directory / AWS_DIR / "objects" / refusal["entry"]["body"]
            with contextlib.suppress(OSError):
                shutil.copyfile(body, path.parent / refusal["entry"]["body"])
        logger.warning(
            "restore: %d item(s) and %d object(s) refused, kept in %s",
            len(refused.items),
            len(refused.objects),
            path,
        )

    def attach_simulator(self, simulator: Any, providers: Iterable[str] = ()) -> None:
        """Restore the simulator's records; `providers`: the deployments it stands in for."""
        self.simulator = simulator
        self.simulated_providers = set(providers)
        if self._loaded.simulator is None:
            return
        files, batches = SimulatorSnapshot.restore(simulator, self._loaded.simulator)
        self.restored = dataclasses.replace(self.restored, simulator_files=files, simulator_batches=batches)

    def save(self, *, abandon: Callable[[], bool] = lambda: False) -> None:
        """One generation; nothing is committed when `abandon()` turns true before the commit."""
        with self._save_lock:
            # The AWS half first: every provider id it holds was made before it was read, so
            # the simulator's half, read after it, has it.
            aws = self.aws.capture(abandon) if self.aws is not None else None
            if abandon():
                return
            records = SimulatorSnapshot.capture(self.simulator) if self.simulator is not None else None
            generation = self._generation + 1
            name = None
            if records is not None:
                name = f"records-{generation:08d}.pickle"
                _write_atomically(self.simulator_dir / name, records)
            self._commit(
                {"version": STATE_VERSION, "generation": generation, "aws": aws, "simulator_records": name}
            )
            self._generation = generation
            self._drop_stale(name, aws)

    def _commit(self, state: dict[str, Any]) -> None:
        """The one write that makes a generation current."""
        _write_atomically(self.manifest, json.dumps(state, separators=(",", ":")).encode())
        os.chmod(self.manifest, 0o600)

    def _drop_stale(self, records: str | None, aws: dict[str, Any] | None) -> None:
        for path in self.simulator_dir.glob("records-*.pickle"):
            if path.name != records:
                path.unlink(missing_ok=True)
        (self.simulator_dir / LEGACY_SIMULATOR_RECORDS).unlink(missing_ok=True)
        (self.directory / AWS_DIR / LEGACY_AWS_STATE).unlink(missing_ok=True)
        if self.aws is not None and aws is not None:
            self.aws.drop_unreferenced_bodies({entry["body"] for entry in aws["objects"]})

    def start_autosave(self, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        def loop() -> None:
            wait = interval
            while not self._stop.wait(wait):
                started = time.monotonic()
                try:
                    self.save(abandon=self._stop.is_set)  # a stop's own save follows at once
                except Exception:
                    logger.exception("saving the local data to %s failed", self.directory)
                # Counted from this save's start: a slow save does not stretch what a kill loses.
                wait = max(0.0, interval - (time.monotonic() - started))

        self._thread = threading.Thread(target=loop, name="devserver-autosave", daemon=True)
        self._thread.start()

    def stop_autosave(self) -> None:
        """No more periodic saves (one under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self) -> None:
        """The last save (the caller stops the servers afterwards)."""
        self.stop_autosave()
        self.save()
