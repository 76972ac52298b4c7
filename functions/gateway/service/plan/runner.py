"""One step of a planned batch, run by each watcher pass: split, submit, refresh, merge.

Each step writes ahead and conditionally, so a pass that dies anywhere leaves a state the
next pass finishes, and two passes at once never both move a part:
- split: the input file is streamed once; each part's index (input line number and custom_id
  of each line) is written to the gateway's bucket (storage.plan_files) and its lines spool to
  a temporary file; the part record, naming its index, is written ahead (`planned`), its file
  created at the provider (while the next part is split), the part `ready`; then, every upload
  over, the batch notes how many parts there are. A split run again skips the parts whose file
  exists (writing an index only where none is).
- submit: while the provider's caps allow (concurrent batches, enqueued tokens), a part is
  written `submitting`, created at the provider tagged with the part's id (the adapters name
  their objects after it), its provider batch claimed, the part `running`. A part left
  `submitting` is adopted from the provider by its tag, or submitted again once the provider
  cannot still be making it. A quota refusal (at create, or a batch the provider ends for
  quota) sends the part back to `waiting` with backoff, until the completion window ends.
- refresh: each running part's provider batch; its counts; `done` when it ended.
- merge: every part done, the results are streamed part by part into one output and one error
  file in input order (each line once; a line without a result reads `batch_expired`),
  kept in the gateway's bucket under ids derived from the batch (plan.merged_files), then
  named by the batch (write ahead: their kept ids first; each kept as the merge writes it),
  then the plan's files (the parts' indexes) deleted, then the batch final, then settled once
  from the merged output. Merge, retry selection and expired lines read the indexes, never a
  part's input file.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from gateway.errors import InvalidRequestError, ServiceUnavailableError
from gateway.formats.custom_ids import custom_id_of, id_key, id_of_key
from gateway.formats.jsonl import line_blocks, split_lines
from gateway.models.batches import TERMINAL_BATCH_STATUSES, Batch, BatchPart
from gateway.observability import logger
from gateway.providers.errors import QuotaRefused
from gateway.providers.registry import client_for
from gateway.service import adoption, batch_events
from gateway.service.plan import merged_files, parts, sync_send
from gateway.service.plan.merge import MergeCounts, PartResult, merge_results
from gateway.service.plan.minimum import balanced_limits, under_minimum
from gateway.service.plan.split import PartLimits, PartSlice, split_input
from gateway.service.plan.uploads import upload_once
from gateway.storage import pending, plan_files
from gateway.storage.id_map import IdMap, ObjectRecord
from gateway.storage.watch import PLAN

WINDOW_SECONDS = 24 * 3600  # the only completion_window a batch takes
RETRY_PART = "retry"  # in a part's state: it runs lines of the original parts once more
INDEX_KEY = "index_key"  # in a part's state: its index's key in the gateway's bucket
FIRST_LINE = "first_line"  # in a part's state: the input line number of its first line
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 3600
_CHUNK_BYTES = 256 * 1024
_SPOOL_BYTES = 8 * 1024 * 1024  # a part file spools to disk past this
_HELD_LINES = 1024  # a split writes every line: a spool file's write costs a dozen appends
_MAX_LINE_BYTES = 32 * 1024 * 1024
# The error line of a request that has no result: out of time, or its batch cancelled first.
_UNFINISHED = {
    False: {
        "code": "batch_expired",
        "message": "This request could not be executed before the completion window expired.",
    },
    True: {"code": "batch_cancelled", "message": "This request was not executed: the batch was cancelled."},
}


def plan_of(record: ObjectRecord) -> dict[str, Any]:
    return dict(record.state.get(PLAN) or {})


def advance(id_map: IdMap, record: ObjectRecord, now: int | None = None) -> bool:
    """One step of the plan; True when the batch's record changed."""
    if record.status in TERMINAL_BATCH_STATUSES:
        return False
    now = int(time.time()) if now is None else now
    plan = plan_of(record)
    if plan.get("parts") is None:
        if plan.get("cancel"):  # cancelled before its split: nothing ran, nothing to keep
            return _end_unsplit(id_map, record, now)
        return _split(id_map, record, plan)
    found = parts.load(id_map, record.id, int(plan["parts"]))
    if len(found) != int(plan["parts"]):  # a split counted parts it had not all written
        raise ServiceUnavailableError(f"batch {record.id}: a part record is missing")
    client = client_for(record.provider)
    out_of_time = now >= record.created_at + WINDOW_SECONDS
    stopping = bool(plan.get("cancel")) or out_of_time
    for part in found:
        _drive(id_map, client, part, now, stop=stopping)
    if not stopping and not plan.get("paused"):
        _submit(id_map, client, record, plan, found, now)
    if all(parts.status(part) in parts.FINAL for part in found):
        # `retried` is how many lines the retry took (0 when none needed it): once, either way
        if plan.get("retry") and plan.get("retried") is None and not stopping:
            return _start_retry(id_map, client, record, plan, found)
        return _finish(id_map, client, record, plan, found, now)
    _partial(id_map, client, record, plan, found, now)
    return record_change(id_map, record, _aggregate(record, plan, found, now))


def _partial(
    id_map: IdMap,
    client: Any,
    record: ObjectRecord,
    plan: dict[str, Any],
    found: list[ObjectRecord],
    now: int,
) -> None:
    """While parts run: when another part has finished, the lines of every finished part so
    far, merged in input order into new partial files (named in the same write as the batch's
    next object; an older partial file stays the client's to read or delete)."""
    done = [part for part in found if parts.status(part) == "done"]
    indices = [int(part.state["index"]) for part in done]
    if not done or indices == (plan.get("partial") or {}).get("parts"):
        return
    # written ahead: this merge's files are about to be kept (_adopt_partial finds them by it)
    attempt = dict(plan.get("partial_attempt") or {})
    since = attempt.get("at") if attempt.get("parts") == indices else None
    if since is None:
        _adopt_partial(id_map, client, record, plan)
        plan["partial_attempt"] = {"parts": indices, "at": now}
        record.state = {**record.state, PLAN: plan}
        if not id_map.save_object(record, if_unchanged=True):
            return
    attempts, _ = _attempts(client, found, placeholders=False)
    named: dict[str, str] = dict(record.state.get("files") or {})
    partial: dict[str, Any] = {"parts": indices}
    _, kept = _merge_kept(attempts, record, indices)
    for which, upstream_id in kept.items():
        if upstream_id is not None:
            named[upstream_id] = _register(id_map, record, upstream_id)
            partial[f"{which}_file_id"] = named[upstream_id]
    plan["partial"] = partial
    record.state = {**record.state, PLAN: plan, "files": named}


def _adopt_partial(id_map: IdMap, client: Any, record: ObjectRecord, plan: dict[str, Any]) -> None:
    """An earlier partial merge whose files were kept but never named (its step died, and
    more parts finished since): its files become the batch's partial files, as if it had been
    recorded, before a newer merge replaces them (every partial file is its owner's)."""
    attempt = dict(plan.get("partial_attempt") or {})
    if not attempt or attempt.get("parts") == (plan.get("partial") or {}).get("parts"):
        return
    named: dict[str, str] = dict(record.state.get("files") or {})
    partial: dict[str, Any] = {"parts": attempt["parts"]}
    for which in ("output", "error"):
        found = merged_files.find(record.provider, record.id, which, attempt["parts"])
        if found is not None:
            named[found] = _register(id_map, record, found)
            partial[f"{which}_file_id"] = named[found]
    if len(partial) > 1:
        plan["partial"] = partial
        record.state = {**record.state, PLAN: plan, "files": named}


def _register(id_map: IdMap, record: ObjectRecord, upstream_id: str) -> str:
    from gateway.service.translate import OUTPUT_PURPOSE, register_provider_file

    return register_provider_file(
        id_map, record.provider, upstream_id, owner=record.owner, purpose=OUTPUT_PURPOSE
    )


def _start_retry(
    id_map: IdMap, client: Any, record: ObjectRecord, plan: dict[str, Any], found: list[ObjectRecord]
) -> bool:
    """Every original part has ended: the lines that expired or failed with one of the codes the
    batch's `retry` names are split again (from the input file, streamed once) into retry parts,
    submitted as any part; once, within the window. Their parts are written ahead of the batch's
    new count, so a step that dies here is repeated with the same parts."""
    retry = dict(plan["retry"])
    chosen: set[int] = set()
    for part in found:
        chosen |= _lines_to_retry(client, part, _index_of(client, part, found)(), retry)
    slices = []
    if under_minimum(len(chosen), plan.get("min_requests")):
        # the provider takes no batch this small (Bedrock: a job under its minimum of records
        # fails validation): the lines keep their first result, and the batch's errors say why
        plan["retry_below_minimum"] = len(chosen)
        chosen = set()
    if chosen:
        limits = balanced_limits(
            PartLimits(**plan["limits"]), lines=len(chosen), size=None, min_requests=plan.get("min_requests")
        )
        slices = _split_into_parts(
            id_map, client, record, plan, limits, first=len(found), select=chosen.__contains__
        )
    plan |= {"retried": len(chosen), "parts": len(found) + len(slices)}
    record.state = {**record.state, PLAN: plan}
    logger.info("batch plan retries lines", extra={"batch_id": record.id, "lines": len(chosen)})
    return id_map.save_object(record, if_unchanged=True)


def _lines_to_retry(
    client: Any, part: ObjectRecord, index: dict[bytes, int], retry: dict[str, Any]
) -> set[int]:
    """The input line numbers of the part's lines to run again: expired (an error line
    `batch_expired`, or no result at all) when `retry.expired`, failed with a listed code."""
    codes = set(retry.get("failed_codes") or ())
    answered: set[bytes] = set()
    chosen: set[int] = set()
    for line in _file_lines(client, part.state.get("output_upstream_id")):
        answered.add(id_key(str(custom_id_of(line))))
    for line in _file_lines(client, part.state.get("error_upstream_id")):
        result = json.loads(line)
        key = id_key(str(result.get("custom_id")))
        answered.add(key)
        code = _error_code(result)
        if (code == "batch_expired" and retry.get("expired")) or code in codes:
            chosen.add(index[key])
    if retry.get("expired"):
        chosen |= {number for key, number in index.items() if key not in answered}
    return chosen


def _error_code(result: dict[str, Any]) -> str | None:
    """An OpenAI error line's code: the batch's (`error.code`) or the request's
    (`response.body.error.code`)."""
    error = result.get("error")
    if isinstance(error, dict) and error.get("code"):
        return str(error["code"])
    response = result.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    inner = body.get("error") if isinstance(body, dict) else None
    return str(inner["code"]) if isinstance(inner, dict) and inner.get("code") else None


def _end_unsplit(id_map: IdMap, record: ObjectRecord, now: int) -> bool:
    plan_files.delete_plan_files(record.id)  # the indexes a split that died had written
    obj = {**record.object, "status": "cancelled", "cancelled_at": now}
    obj["request_counts"] = {"total": 0, "completed": 0, "failed": 0}
    if not record_change(id_map, record, obj):
        return False
    from gateway.service.settlement import settle_if_finished

    settle_if_finished(record, Batch.model_validate(record.object))
    return True


# Split -----------------------------------------------------------------------------------------
class _PartWriter:
    """A split's sink for one part: its index written to the gateway's bucket (the record of
    a new part names it), its lines spooled, then its record and its file at the provider."""

    def __init__(
        self,
        id_map: IdMap,
        client: Any,
        batch: ObjectRecord,
        index: int,
        uploads: _Uploads,
        *,
        retry_part: bool = False,
    ) -> None:
        self.id_map, self.client, self.batch, self.index = id_map, client, batch, index
        self.uploads, self.retry_part = uploads, retry_part
        self.existing = id_map.get(parts.part_id(batch.id, index))
        self.done = self.existing is not None and bool(self.existing.state.get("input_upstream_id"))
        self.index_key = plan_files.index_key(plan_files.plan_prefix(batch.id), index)
        # a split run again writes the same bytes: a part already made keeps the index it has
        kept = self.done and plan_files.object_exists(self.index_key)
        self.entries = None if kept else plan_files.IndexWriter(self.index_key)
        # closed by close() or abort(), which the split calls for every part it opens
        self.file: IO[bytes] | None = None if self.done else tempfile.SpooledTemporaryFile(_SPOOL_BYTES)  # noqa: SIM115
        self.lines = self.tokens = 0
        self.first_line: int | None = None  # the input line number of its first line
        self.held: list[bytes] = []  # lines handed to the spool file _HELD_LINES at a time

    def write(self, line: bytes) -> None:
        """`line` with its end: its estimate is line_token_estimate's of the line without it."""
        self.lines += 1
        self.tokens += (len(line) + 3) // 4
        self.held.append(line)
        if len(self.held) >= _HELD_LINES:
            self._hand_on()

    def record(self, line_number: int, custom_id: str) -> None:
        if self.first_line is None:
            self.first_line = line_number
        if self.entries is not None:
            self.entries.record(line_number, custom_id)

    def abort(self) -> None:
        if self.entries is not None:
            self.entries.abort()
        if self.file is not None:
            self.file.close()

    def _hand_on(self) -> None:
        if self.file is not None:
            self.file.write(b"".join(self.held))
        self.held = []

    def close(self) -> None:
        """The index, then the part's record naming it (written ahead of the upload it marks);
        the upload and the part `ready` run while the split goes on (`_Uploads`)."""
        self._hand_on()
        if self.entries is not None:
            self.entries.close()
        if self.file is None:
            return
        part = self.existing or parts.new_part(self.batch, self.index, self.lines, self.tokens)
        part.state = {**part.state, INDEX_KEY: self.index_key, FIRST_LINE: self.first_line}
        if self.retry_part:
            part.state = {**part.state, RETRY_PART: True}
        if self.existing is None and not self.id_map.put_new(part):
            self.file.close()
            return  # another split wrote it first: theirs
        self.uploads.start(lambda: self._upload(part))

    def _upload(self, part: ObjectRecord) -> None:
        assert self.file is not None
        with self.file:
            # the part's record, written ahead, marks an upload an earlier split may have made
            since = None if self.existing is None else self.existing.created_at
            upstream_id = upload_once(
                self.client, filename=f"{part.id}.jsonl", content=self.file, purpose="batch", since=since
            )
        part.state = {**part.state, "input_upstream_id": upstream_id}
        parts.update(part, status="ready")
        parts.save(self.id_map, part)


class _Uploads:
    """A split's part uploads, one at a time in a thread while the split spools the next part
    (an upload to the provider takes about as long as the split of its part). `finish` waits
    for the last; the split's step ends only after it (no upload outlives its step)."""

    def __init__(self) -> None:
        self.running: Future[None] | None = None

    def start(self, upload: Callable[[], None]) -> None:
        self.finish()
        self.running = _upload_thread().submit(upload)

    def finish(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            running.result()


@functools.cache
def _upload_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="plan-part-upload")


def _split_into_parts(
    id_map: IdMap,
    client: Any,
    record: ObjectRecord,
    plan: dict[str, Any],
    limits: PartLimits,
    *,
    first: int = 0,
    select: Callable[[int], bool] | None = None,
) -> list[PartSlice]:
    """The input file streamed once into parts `first`, `first + 1`, ... (retry parts when
    `select` picks the lines), each part's upload overlapping the next part's split."""
    uploads = _Uploads()
    retry_part = select is not None
    try:
        with client.stream_file_content(str(plan["input_upstream_id"])) as response:
            lines = split_lines(response.iter_bytes(_CHUNK_BYTES), _MAX_LINE_BYTES)
            return split_input(
                lines,
                limits,
                lambda index: _PartWriter(
                    id_map, client, record, first + index, uploads, retry_part=retry_part
                ),
                select=select,
            )
    finally:
        uploads.finish()


def _split(id_map: IdMap, record: ObjectRecord, plan: dict[str, Any]) -> bool:
    client = client_for(record.provider)
    limits = balanced_limits(
        PartLimits(**plan["limits"]),
        lines=int(plan.get("input_lines") or 0),
        size=plan.get("input_bytes"),
        min_requests=plan.get("min_requests"),
    )
    slices = _split_into_parts(id_map, client, record, plan, limits)
    plan |= {"parts": len(slices), "lines": sum(piece.line_count for piece in slices)}
    record.state = {**record.state, PLAN: plan}
    record.object = {**record.object, "request_counts": {"total": plan["lines"], "completed": 0, "failed": 0}}
    logger.info("batch plan split", extra={"batch_id": record.id, "parts": len(slices)})
    return id_map.save_object(record, if_unchanged=True)


# Parts -----------------------------------------------------------------------------------------
def _drive(id_map: IdMap, client: Any, part: ObjectRecord, now: int, *, stop: bool) -> None:
    """A part's provider batch brought up to date; a part that never ran dropped when the plan
    stops (cancelled, out of time), a running one cancelled at the provider."""
    status = parts.status(part)
    if status == "submitting":
        _adopt(id_map, client, part, now)
    elif status == "running":
        _refresh(id_map, client, part, now, stop=stop)
    elif stop and status in {"planned", "ready", "waiting"}:
        parts.update(part, status="dropped", next_attempt_at=None)
        parts.save(id_map, part)


def _refresh(id_map: IdMap, client: Any, part: ObjectRecord, now: int, *, stop: bool) -> None:
    assert part.upstream_id is not None
    upstream = client.retrieve_batch(part.upstream_id)
    if client.quota_refused(upstream):
        _requeue(id_map, part, now)
        return
    ended = upstream.get("status") in TERMINAL_BATCH_STATUSES
    if stop and not ended and upstream.get("status") != "cancelling":
        upstream = client.cancel_batch(part.upstream_id)
    counts = upstream.get("request_counts") or {}
    fields: dict[str, Any] = {
        "upstream_status": upstream.get("status"),
        "request_counts": {
            "total": parts.lines(part),
            "completed": int(counts.get("completed") or 0),
            "failed": int(counts.get("failed") or 0),
        },
    }
    if ended:
        fields["status"] = "done"
        part.state = {
            **part.state,
            "output_upstream_id": upstream.get("output_file_id"),
            "error_upstream_id": upstream.get("error_file_id"),
        }
    before = dict(part.object)
    parts.update(part, **fields)
    if part.object != before or ended:
        parts.save(id_map, part)


def _requeue(id_map: IdMap, part: ObjectRecord, now: int) -> None:
    """Refused for the provider's quota: not a failure. The part waits (backoff doubling per
    refusal) and keeps the refused provider batch's id among its own (it ended there)."""
    refusals = int(part.state.get("refusals") or 0) + 1
    earlier = list(part.state.get(parts.EARLIER) or [])
    if part.upstream_id is not None:
        earlier.append(part.upstream_id)
    part.state = {**part.state, "refusals": refusals, parts.EARLIER: earlier}
    part.upstream_id = None
    wait = min(BACKOFF_FIRST_SECONDS * 2 ** (refusals - 1), BACKOFF_MAX_SECONDS)
    parts.update(
        part, status="waiting", provider_batch_id=None, upstream_status=None, next_attempt_at=now + wait
    )
    logger.info("batch part refused for quota; waiting", extra={"part_id": part.id, "seconds": wait})
    parts.save(id_map, part)


def _adopt(id_map: IdMap, client: Any, part: ObjectRecord, now: int) -> None:
    """A part left `submitting`: its provider batch if the provider made one, else submitted
    again once no create of it can still be running."""
    attempt = dict(part.state.get("submit") or {})
    probe = ObjectRecord(
        id=part.id,
        kind="batch",
        owner=part.owner,
        provider=part.provider,
        created_at=part.created_at,
        object={},
        state={pending.PENDING: attempt},
    )
    upstream = adoption.find_upstream_batch(id_map, probe)
    if upstream is not None:
        _attach(id_map, part, upstream)
    elif now - int(attempt.get("attempted_at") or 0) >= adoption.ABANDON_AFTER_SECONDS:
        parts.update(part, status="ready")
        parts.save(id_map, part)


def _submit(
    id_map: IdMap, client: Any, batch: ObjectRecord, plan: dict[str, Any], found: list[ObjectRecord], now: int
) -> None:
    """Parts submitted in order while the provider's caps leave room, and, where the gateway
    translates and sends each part itself, while this pass's sends stay within what it sends
    in its time (`sync_send.part_max_bytes`; the first part always goes)."""
    max_concurrent = plan.get("max_concurrent")
    flying = [part for part in found if parts.status(part) in parts.IN_FLIGHT]
    pass_bytes = sync_send.part_max_bytes(sync_send.deployment_type(batch.provider))
    sent = 0
    for part in found:
        due = int(part.object.get("next_attempt_at") or 0) <= now
        if parts.status(part) not in {"ready", "waiting"} or not due:
            continue
        if max_concurrent is not None and len(flying) >= int(max_concurrent):
            return
        if flying and not _within_quota(plan, flying, part):
            return
        if pass_bytes is not None and sent and sent + _bytes_of(part) > pass_bytes:
            return  # the next pass sends it
        sent += _bytes_of(part)
        if _submit_part(id_map, client, batch, part, now):
            flying.append(part)


def _bytes_of(part: ObjectRecord) -> int:
    """A part's bytes as its token estimate counts them (a token per 4 bytes)."""
    return 4 * parts.tokens(part)


def _within_quota(plan: dict[str, Any], flying: list[ObjectRecord], part: ObjectRecord) -> bool:
    """Whether `part` fits the provider's enqueued quotas beside the parts in flight (tokens at
    OpenAI and Azure, requests at Anthropic). The first part always goes: the provider decides."""
    tokens, requests = plan.get("enqueued_tokens"), plan.get("enqueued_requests")
    if tokens is not None and sum(map(parts.tokens, flying)) + parts.tokens(part) > int(tokens):
        return False
    return requests is None or sum(map(parts.lines, flying)) + parts.lines(part) <= int(requests)


def _submit_part(id_map: IdMap, client: Any, batch: ObjectRecord, part: ObjectRecord, now: int) -> bool:
    body: dict[str, Any] = {
        "input_file_id": part.state["input_upstream_id"],
        "endpoint": batch.object["endpoint"],
        "completion_window": batch.object["completion_window"],
    }
    if batch.object.get("metadata"):
        body["metadata"] = dict(batch.object["metadata"])
    tagged = adoption.tag_batch_body(body, part.id)
    part.state = {**part.state, "submit": {"attempted_at": now, "tagged": tagged, "body": body}}
    parts.update(part, status="submitting", next_attempt_at=None)
    if not parts.save(id_map, part):
        return False
    try:
        upstream = client.create_batch(body, gateway_id=part.id, timeout=adoption.create_timeout())
    except QuotaRefused:
        _requeue(id_map, part, now)
        return False
    except Exception as exc:
        # the adapter's own refusal (a 400 of its checks, as Bedrock's minimum of records) comes
        # before any provider call: nothing was made, as when the provider refuses
        if not (adoption.refused(exc) or isinstance(exc, InvalidRequestError)):
            raise  # the provider may have it: adopted next pass
        logger.warning("batch part refused by its provider", extra={"part_id": part.id})
        counts = {"total": parts.lines(part), "completed": 0, "failed": 0}
        parts.update(part, status="done", upstream_status="failed", request_counts=counts)
        part.state = {
            **part.state,
            "refused": getattr(exc, "message", str(exc))[:500],
            "refused_code": getattr(exc, "code", None),
        }
        parts.save(id_map, part)
        return False
    _attach(id_map, part, upstream)
    return True


def _attach(id_map: IdMap, part: ObjectRecord, upstream: dict[str, Any]) -> None:
    upstream_id = str(upstream["id"])
    if id_map.claim_upstream(part.provider, upstream_id, part.id) != part.id:
        raise ServiceUnavailableError(f"provider batch {upstream_id} is claimed by another id")
    part.upstream_id = upstream_id
    parts.update(
        part, status="running", provider_batch_id=upstream_id, upstream_status=upstream.get("status")
    )
    parts.save(id_map, part)


# The batch as a whole --------------------------------------------------------------------------
def _aggregate(
    record: ObjectRecord, plan: dict[str, Any], found: list[ObjectRecord], now: int
) -> dict[str, Any]:
    """The batch object from its parts: status as a whole, counts summed, `parts` listed."""
    obj = dict(record.object)
    completed, failed = summed_counts(found)
    obj["request_counts"] = {"total": int(plan.get("lines") or 0), "completed": completed, "failed": failed}
    obj["parts"] = [BatchPart.model_validate(part.object).model_dump(mode="json") for part in found]
    started = any(part.upstream_id or part.state.get(parts.EARLIER) for part in found) or any(
        parts.status(part) == "done" for part in found
    )
    if plan.get("cancel"):
        obj["status"] = "cancelling"
        obj["cancelling_at"] = obj.get("cancelling_at") or now
    elif started and obj.get("status") == "validating":
        obj["status"], obj["in_progress_at"] = "in_progress", now
    obj["expires_at"] = record.created_at + WINDOW_SECONDS
    errors = plan_errors(plan, found)
    if errors:
        obj["errors"] = {"object": "list", "data": errors}
    partial = plan.get("partial") or {}
    obj["partial_output_file_id"] = partial.get("output_file_id")
    obj["partial_error_file_id"] = partial.get("error_file_id")
    return obj


def plan_errors(plan: dict[str, Any], found: list[ObjectRecord]) -> list[dict[str, Any]]:
    """The batch's `errors` (OpenAI's shape): each part its provider refused (its lines are in
    the error file with the refusal's code), and a retry too small for the provider to take."""
    errors = [
        {
            "code": part.state.get("refused_code") or "batch_part_refused",
            "message": f"Part {part.state.get('index')} ({parts.lines(part)} requests) was refused by "
            f"the provider: {part.state['refused']}",
            "param": None,
            "line": None,
        }
        for part in found
        if part.state.get("refused")
    ]
    skipped = plan.get("retry_below_minimum")
    if skipped:
        errors.append(
            {
                "code": "retry_below_minimum",
                "message": f"{skipped} requests asked to be retried, fewer than the "
                f"{plan.get('min_requests')} the provider takes in one batch: they were not retried "
                "and keep their first result.",
                "param": "retry",
                "line": None,
            }
        )
    return errors


def summed_counts(found: list[ObjectRecord]) -> tuple[int, int]:
    """(completed, failed) of a plan from its parts: a line a retry part completed moves from
    the failed to the completed."""
    retried = [part for part in found if part.state.get(RETRY_PART)]
    completed = sum(parts.counts(part)[0] for part in found)
    failed = sum(parts.counts(part)[1] for part in found if not part.state.get(RETRY_PART))
    return completed, max(0, failed - sum(parts.counts(part)[0] for part in retried))


def record_change(id_map: IdMap, record: ObjectRecord, obj: dict[str, Any]) -> bool:
    """The batch's new object with the events its change announces, in one conditional write."""
    if obj == record.object and record.stored is not None and not record.changed_since_stored():
        return False
    before = record.stored_object()
    record.object = obj
    recorded = batch_events.outbox_events(record, before)
    if recorded:
        wrote = id_map.save_object(record, with_puts=[event.to_item() for event in recorded])
        if wrote:
            batch_events.publish(recorded, id_map)
        return wrote
    return id_map.save_object(record, if_unchanged=True)


# Merge -----------------------------------------------------------------------------------------
def _finish(
    id_map: IdMap,
    client: Any,
    record: ObjectRecord,
    plan: dict[str, Any],
    found: list[ObjectRecord],
    now: int,
) -> bool:
    merged = plan.get("merge")
    if merged is None:
        obj = _aggregate(record, plan, found, now)
        if obj.get("status") in {"validating", "in_progress"}:
            obj["status"], obj["finalizing_at"] = "finalizing", now
        # written ahead: the merged files are about to be kept (under ids a repeat derives again)
        since = plan.get("merging")
        if since is None:
            _adopt_partial(id_map, client, record, plan)
            plan["merging"] = now
            record.state = {**record.state, PLAN: plan}
            if not id_map.save_object(record, if_unchanged=True):
                return False
        merged = _merge(client, record, found, cancelled=bool(plan.get("cancel")))
        plan["merge"] = merged
        record.state = {**record.state, PLAN: plan}
        if not record_change(id_map, record, obj):  # merged files written ahead of their names
            return False
    # the merge is recorded: the parts' indexes are read no more (a repeat finds none left)
    plan_files.delete_plan_files(record.id)
    named: dict[str, str] = dict(record.state.get("files") or {})
    obj = _aggregate(record, plan, found, now)
    obj["request_counts"] = {
        "total": int(plan.get("lines") or 0),
        "completed": int(merged["completed"]),
        "failed": int(merged["failed"]),
    }
    for which in ("output", "error"):
        upstream_id = merged.get(which)
        if upstream_id:
            gateway_id = named.get(upstream_id) or _register(id_map, record, upstream_id)
            named[upstream_id] = gateway_id
            obj[f"{which}_file_id"] = gateway_id
        obj[f"partial_{which}_file_id"] = obj.get(f"{which}_file_id")  # the whole, at the end
    record.state = {**record.state, "files": named}
    final = _final_status(plan, found, merged)
    obj["status"], obj[f"{final}_at"] = final, now
    if not record_change(id_map, record, obj):
        return False
    from gateway.service.settlement import settle_if_finished

    settle_if_finished(record, Batch.model_validate(record.object))
    logger.info("batch plan finished", extra={"batch_id": record.id, "status": final})
    return True


def _final_status(plan: dict[str, Any], found: list[ObjectRecord], merged: dict[str, Any]) -> str:
    if plan.get("cancel"):
        return "cancelled"
    if any(parts.status(part) == "dropped" for part in found) or int(merged.get("expired") or 0):
        return "expired"
    refused = all(part.object.get("upstream_status") == "failed" for part in found)
    if int(merged["completed"]) == 0 and refused:
        return "failed"
    return "completed"


def _merge(
    client: Any, record: ObjectRecord, found: list[ObjectRecord], *, cancelled: bool
) -> dict[str, Any]:
    """Both merged files kept, and their counts. `merge_results` reads one part at a
    time; an original part that may lack results for some lines (it did not complete) is
    preceded by an attempt holding a `batch_expired` error for each of its lines, which its real
    results replace, and a retry part's results replace the original's: every line appears
    once, its last attempt's result."""
    attempts, placeholders = _attempts(client, found, placeholders=True, cancelled=cancelled)
    counts, kept = _merge_kept(attempts, record)
    return {
        "completed": counts.completed,
        "failed": counts.failed,
        "expired": sum(counts.lines_per_part[number] for number in placeholders),
        "output": kept["output"],
        "error": kept["error"],
    }


def _merge_kept(
    attempts: list[PartResult], record: ObjectRecord, parts_merged: list[int] | None = None
) -> tuple[MergeCounts, dict[str, str | None]]:
    """The attempts merged into the batch's merged files (partial: of `parts_merged`), each
    kept as it is written (its upload overlaps the merge); their kept ids (None: empty)."""
    output = merged_files.StreamedKeep(record.provider, record.id, "output", parts_merged)
    errors = merged_files.StreamedKeep(record.provider, record.id, "error", parts_merged)
    try:
        counts = merge_results(attempts, output, errors)
        kept_output = output.close()
    except BaseException:
        output.abort()
        errors.abort()
        raise
    return counts, {"output": kept_output, "error": errors.close()}


def _attempts(
    client: Any, found: list[ObjectRecord], *, placeholders: bool, cancelled: bool = False
) -> tuple[list[PartResult], list[int]]:
    """Each part's results as a merge attempt, in attempt order (the originals, then the retry
    parts), and which attempts are placeholders."""
    attempts: list[PartResult] = []
    placeholder_numbers: list[int] = []
    for part in found:
        index = _index_of(client, part, found)
        # the merge writes what is below the unread parts' first lines before reading them
        first_line = part.state.get(FIRST_LINE) if part.state.get(INDEX_KEY) else None
        if (
            placeholders
            and not part.state.get(RETRY_PART)
            and part.object.get("upstream_status") != "completed"
        ):
            if not part.state.get("refused"):  # a refused part's lines never ran: not expired
                placeholder_numbers.append(len(attempts))
            attempts.append(
                PartResult(index, lambda: (), _expired_lines_of(part, index, cancelled), first_line)
            )
        if parts.status(part) != "done" and not placeholders:
            continue  # a partial merge holds finished parts only
        attempts.append(
            PartResult(
                index,
                _lines_of(client, part.state.get("output_upstream_id")),
                _lines_of(client, part.state.get("error_upstream_id")),
                first_line,
            )
        )
    return attempts, placeholder_numbers


def _index_of(client: Any, part: ObjectRecord, found: list[ObjectRecord]) -> Callable[[], dict[bytes, int]]:
    """The part's index (custom_id's `id_key` -> input line number), read from the gateway's bucket when
    the merge reaches it (a retry part's holds the input line numbers too)."""
    key = part.state.get(INDEX_KEY)
    if key is None:
        return lambda: _index_of_a_part_split_without_one(client, part, found)
    return lambda: plan_files.read_index(str(key))


def _index_of_a_part_split_without_one(
    client: Any, part: ObjectRecord, found: list[ObjectRecord]
) -> dict[bytes, int]:
    """A part an earlier release split kept no index (a plan in flight across an upgrade): its
    custom_ids read from the part files at the provider, numbered as that release did (an
    original part's lines after the earlier originals' lines; a retry part's where an original
    holds its id)."""
    wanted = set(_custom_ids(client, part)) if part.state.get(RETRY_PART) else None
    index: dict[bytes, int] = {}
    offset = 0
    for original in (each for each in found if not each.state.get(RETRY_PART)):
        if wanted is not None or original.id == part.id:
            for position, custom_id in enumerate(_custom_ids(client, original), start=1):
                if wanted is None or custom_id in wanted:
                    index[id_key(custom_id)] = offset + position
        offset += parts.lines(original)
    return index


def _expired_lines_of(
    part: ObjectRecord, index: Callable[[], dict[bytes, int]], cancelled: bool
) -> Callable[[], Iterator[bytes]]:
    error = _UNFINISHED[cancelled]
    if part.state.get("refused"):
        error = {
            "code": part.state.get("refused_code") or "batch_part_refused",
            "message": part.state["refused"],
        }

    def lines() -> Iterator[bytes]:
        for key in index():
            custom_id = id_of_key(key)
            line = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": None, "error": error}
            yield json.dumps(line, separators=(",", ":")).encode()

    return lines


def _lines_of(client: Any, upstream_id: str | None) -> Callable[[], Iterator[bytes]]:
    """A result file's lines for the merge, in blocks of whole lines (what it reads fastest)."""
    return lambda: line_blocks(_file_chunks(client, upstream_id), _CHUNK_BYTES, _MAX_LINE_BYTES)


def _file_lines(client: Any, upstream_id: str | None) -> Iterator[bytes]:
    return split_lines(_file_chunks(client, upstream_id), _MAX_LINE_BYTES)


def _file_chunks(client: Any, upstream_id: str | None) -> Iterator[bytes]:
    """A file at the provider, streamed (none: no file)."""
    if not upstream_id:
        return
    with client.stream_file_content(upstream_id) as response:
        yield from response.iter_bytes(_CHUNK_BYTES)


def _custom_ids(client: Any, part: ObjectRecord) -> Iterator[str]:
    for line in _file_lines(client, str(part.state["input_upstream_id"])):
        if line.strip():
            yield str(json.loads(line).get("custom_id"))
