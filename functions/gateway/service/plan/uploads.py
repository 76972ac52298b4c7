"""A plan's part input files at the provider, each uploaded once (merged files are kept by the
gateway: plan.merged_files).

An upload and the write that names it are two steps: a process that dies between them leaves a
provider file nothing names, and the step run again would upload a second. So each file is
named after gateway ids only (`<part id>.jsonl`), and the step writes ahead that it is about
to upload (the part's record); a step that finds its own mark looks for the file by that name
before uploading (as a create adopts its file, service.adoption), and a first attempt uploads
at once.
"""

from __future__ import annotations

from typing import IO, Any

from gateway.service import adoption


def upload_once(client: Any, *, filename: str, content: IO[bytes], purpose: str, since: int | None) -> str:
    """The provider id of `content` uploaded as `filename`: the file an attempt made since
    `since` (an earlier attempt may have died after its upload), else a new upload (at once when
    `since` is None: the first attempt). `content` is read from its start."""
    size = content.seek(0, 2)
    if since is not None:
        found = adoption.find_named_file(client, filename=filename, size=size, purpose=purpose, since=since)
        if found is not None:
            return str(found["id"])
    content.seek(0)
    return str(client.create_file(filename=filename, content=content, purpose=purpose)["id"])
