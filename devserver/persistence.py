"""`make serve`'s data across restarts: the embedded moto server's and the simulator's state.

moto keeps everything in memory and has no persistence of its own, so the gateway's AWS data
(the DynamoDB table's items, the S3 objects, the virtual keys' pepper) is read out through the AWS APIs
into a directory and written back through them at the next start. The provider simulator
keeps its files on disk under the same directory (its storage_dir) and its records (files,
uploads, batches) in one pickle beside them: the gateway's rows point at simulator ids, so
both halves are saved together.

A snapshot is taken every `interval` seconds and on a clean stop (Ctrl-C, SIGTERM); an S3
object whose ETag did not change is not read again. A crash loses at most the last interval.

Layout of the data directory:

    aws/state.json          table items, S3 object index, the key pepper (written atomically, 0600)
    aws/objects/<sha256>    S3 object bodies, by content
    simulator/              the simulator's storage_dir (files, parts, batch inputs)
    simulator/records.pickle
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger("devserver.persistence")

DEFAULT_INTERVAL_SECONDS = 5.0
STATE_VERSION = 1
AWS_DIR = "aws"
SIMULATOR_DIR = "simulator"
SIMULATOR_RECORDS = "records.pickle"

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


class AwsSnapshot:
    """The gateway's table items, bucket objects and kept secrets, out of and back into moto.

    Only the secrets named in `secrets` are kept: the master key and the provider keys are
    written from the environment at every start, and real provider keys have no business on
    disk.
    """

    def __init__(
        self, directory: Path, endpoint_url: str, *, table: str, bucket: str, secrets: tuple[str, ...]
    ) -> None:
        self.directory = directory
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
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def objects_dir(self) -> Path:
        return self.directory / "objects"

    def _load(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"{self.state_file} has version {state.get('version')}, not {STATE_VERSION}")
        return dict(state)

    # -- save

    def save(self) -> None:
        items = self._items()
        objects = self._objects()
        secrets = self._secret_values()
        state = {"version": STATE_VERSION, "items": items, "objects": objects, "secrets": secrets}
        _write_atomically(self.state_file, json.dumps(state, separators=(",", ":")).encode())
        self._drop_unreferenced_bodies({entry["body"] for entry in objects})

    def _items(self) -> list[Any]:
        items: list[Any] = []
        for page in self._dynamodb.get_paginator("scan").paginate(TableName=self.table):
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
                seen[known] = entry
                entries.append(entry)
        self._saved_bodies = seen
        return entries

    def _save_object(self, key: str) -> dict[str, Any]:
        response = self._s3.get_object(Bucket=self.bucket, Key=key)
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

    def _drop_unreferenced_bodies(self, referenced: set[str]) -> None:
        for path in self.objects_dir.iterdir():
            if path.name not in referenced and not path.name.startswith("."):
                path.unlink(missing_ok=True)

    def _secret_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in self.kept_secrets:
            try:
                values[name] = self._secrets.get_secret_value(SecretId=name)["SecretString"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
        return values

    # -- restore

    def restore_secrets(self) -> int:
        """Before the bootstrap, which keeps an existing key pepper: the virtual keys' hashes
        only match with the pepper they were made with."""
        state = self._load()
        if state is None:
            return 0
        for name, value in state["secrets"].items():
            try:
                self._secrets.create_secret(Name=name, SecretString=value)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
                    raise
                self._secrets.put_secret_value(SecretId=name, SecretString=value)
        return len(state["secrets"])

    def restore_data(self) -> tuple[int, int]:
        """After the bootstrap created the table and the bucket: their items and objects."""
        state = self._load()
        if state is None:
            return 0, 0
        for item in state["items"]:
            self._dynamodb.put_item(TableName=self.table, Item=_encode_binary(item))
        for entry in state["objects"]:
            extra: dict[str, Any] = {"Metadata": entry["metadata"]}
            if entry.get("content_type"):
                extra["ContentType"] = entry["content_type"]
            with open(self.objects_dir / entry["body"], "rb") as body:
                self._s3.put_object(Bucket=self.bucket, Key=entry["key"], Body=body, **extra)
        return len(state["items"]), len(state["objects"])


# -- the provider simulator's records ------------------------------------------------------


class SimulatorSnapshot:
    """The simulator's records beside its storage_dir, whose files stay where they are."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / SIMULATOR_RECORDS

    def save(self, state: Any) -> None:
        with state.lock:
            # threading.Event does not pickle: restore() gives each batch a new one.
            batches = {key: dataclasses.replace(b, abandoned=None) for key, b in state.batches.items()}
            records = {
                "files": dict(state.files),
                "uploads": dict(state.uploads),
                "batches": batches,
                "received": dict(state.received),
                "cursor_seq": dict(state.cursor_seq),
                "anthropic_batches": dict(state.anthropic.batches),
            }
            data = pickle.dumps(records)
        _write_atomically(self.path, data)

    def restore(self, state: Any) -> tuple[int, int]:
        try:
            records = pickle.loads(self.path.read_bytes())
        except FileNotFoundError:
            return 0, 0
        with state.lock:
            state.files.update(records["files"])
            state.uploads.update(records["uploads"])
            state.received.update(records["received"])
            state.cursor_seq.update(records["cursor_seq"])
            anthropic = records.get("anthropic_batches") or {}
            state.anthropic.batches.update(anthropic)
            state.anthropic._seq = max((batch.seq for batch in anthropic.values()), default=0)
            for batch_id, batch in records["batches"].items():
                batch.abandoned = threading.Event()
                state.batches[batch_id] = batch
                self._resume(state, batch)
            next_seq = max(state.cursor_seq.values(), default=0) + 1
            state._seq = itertools.count(next_seq)
        return len(records["files"]), len(records["batches"])

    @staticmethod
    def _resume(state: Any, batch: Any) -> None:
        """Background work the stop interrupted starts again (its results are only revealed
        by the batch's wall-clock timeline, which a restart does not move)."""
        if batch.status == "validating" and batch.validation is None:
            state.executor.submit(state._process_batch, batch)
        elif batch.status == "cancelling" and batch.partial is None and batch.cancel_count > 0:
            state.executor.submit(state._process_partial, batch, batch.cancel_count)


# -- both, saved together ------------------------------------------------------------------


class LocalData:
    """The data directory of `make serve`: restore at start, save periodically and at stop."""

    def __init__(self, directory: str | os.PathLike[str], *, fresh: bool = False) -> None:
        self.directory = Path(directory).resolve()
        if fresh and self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.aws: AwsSnapshot | None = None
        self.simulator_state: Any | None = None
        self.restored = Restored()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    @property
    def simulator_dir(self) -> Path:
        return self.directory / SIMULATOR_DIR

    def attach_aws(self, endpoint_url: str, *, table: str, bucket: str, secrets: tuple[str, ...]) -> int:
        """Use the embedded moto server at `endpoint_url`; restores the kept `secrets` (call
        before the bootstrap) and returns how many."""
        self.aws = AwsSnapshot(
            self.directory / AWS_DIR, endpoint_url, table=table, bucket=bucket, secrets=secrets
        )
        restored = self.aws.restore_secrets()
        self.restored = dataclasses.replace(self.restored, secrets=restored)
        return restored

    def restore_aws_data(self) -> None:
        """After the bootstrap: the table's items and the bucket's objects."""
        if self.aws is not None:
            items, objects = self.aws.restore_data()
            self.restored = dataclasses.replace(self.restored, items=items, objects=objects)

    def attach_simulator(self, state: Any) -> None:
        self.simulator_state = state
        files, batches = SimulatorSnapshot(self.simulator_dir).restore(state)
        self.restored = dataclasses.replace(self.restored, simulator_files=files, simulator_batches=batches)

    def save(self) -> None:
        with self._save_lock:
            if self.simulator_state is not None:
                SimulatorSnapshot(self.simulator_dir).save(self.simulator_state)
            if self.aws is not None:
                self.aws.save()

    def start_autosave(self, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.save()
                except Exception:
                    logger.exception("saving the local data to %s failed", self.directory)

        self._thread = threading.Thread(target=loop, name="devserver-autosave", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The last save (the caller stops the servers afterwards)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.save()
