"""A plan's merged files (partial and final output and errors), kept in the gateway's bucket.

They are the gateway's own product: no provider stores them (Azure's Files API takes no purpose
they could be uploaded as), none is uploaded. Each is a kept file of the batch's deployment
(`providers.kept_files`, which every adapter's file methods read) whose id is derived from the
batch id and what the file holds, so a merge run again writes the same id: the write is
conditional, and a second writer learns the file is there (the same parts merge to the same
lines). Nothing is named before it is written, and nothing written is lost: a step that dies
after the write finds the file by its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import IO

from gateway.errors import UpstreamRequestError
from gateway.formats.jsonl import stream_chunks
from gateway.providers.kept_files import FileExists, KeptFiles, derived_id

PURPOSE = "batch_output"


def merged_file_id(batch_id: str, which: str, parts: Sequence[int] | None = None) -> str:
    """`which`: output or error; `parts`: the finished parts a partial file merges (None: final)."""
    scope = "final" if parts is None else "partial:" + ",".join(str(number) for number in parts)
    return derived_id("plan-merge", batch_id, scope, which)


def filename(batch_id: str, which: str, parts: Sequence[int] | None = None) -> str:
    return f"{batch_id}_{which}.jsonl" if parts is None else f"{batch_id}_partial{len(parts)}_{which}.jsonl"


def keep(
    deployment: str, batch_id: str, which: str, content: IO[bytes], parts: Sequence[int] | None = None
) -> str | None:
    """The kept id of `content` (None when empty: no file), written once."""
    if content.seek(0, 2) == 0:
        return None
    content.seek(0)
    file_id = merged_file_id(batch_id, which, parts)
    with suppress(FileExists):  # an earlier run of this merge wrote it: the same parts, the same lines
        KeptFiles(deployment).put_file(
            file_id, stream_chunks(content), filename=filename(batch_id, which, parts), purpose=PURPOSE
        )
    return file_id


def find(deployment: str, batch_id: str, which: str, parts: Sequence[int] | None = None) -> str | None:
    """The kept id of a merged file an earlier step wrote, or None."""
    file_id = merged_file_id(batch_id, which, parts)
    try:
        KeptFiles(deployment).retrieve_file(file_id)
    except UpstreamRequestError as exc:
        if exc.status_code == 404:
            return None
        raise
    return file_id
