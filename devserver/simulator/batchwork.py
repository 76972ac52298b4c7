"""Batch input validation and output generation, streamed line by line (memory stays bounded)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from . import bodies
from .limits import Directive

MAX_REPORTED_ERRORS = 1000
REQUIRED_FIELDS = ("custom_id", "method", "url", "body")


@dataclass
class Validation:
    total: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    done_at: float = 0.0


@dataclass
class OutputFile:
    path: str
    bytes: int
    sha256: str


@dataclass
class Results:
    """What processing the first ``limit`` requests (or all) produced."""

    completed: int = 0
    failed: int = 0  # expired ones included
    expired: int = 0  # requests a `sim-expire` directive expired
    input_tokens: int = 0
    output_tokens: int = 0
    enqueued_tokens: int = 0  # the prompt tokens the batch puts in the queue (its quota's count)
    model: str | None = None
    output: OutputFile | None = None
    error: OutputFile | None = None
    done_at: float = 0.0

    def usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + self.output_tokens,
        }

    def discard(self) -> None:
        for f in (self.output, self.error):
            if f is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f.path)
        self.output = self.error = None


class _HashingWriter:
    """Buffered writer to a temp file that hashes and counts what it writes; created on first write."""

    def __init__(self, tmp_dir: str, prefix: str) -> None:
        self._tmp_dir = tmp_dir
        self._prefix = prefix
        self._fh: BinaryIO | None = None
        self._path = ""
        self._sha = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        if self._fh is None:
            fd, self._path = tempfile.mkstemp(prefix=self._prefix, suffix=".jsonl", dir=self._tmp_dir)
            self._fh = os.fdopen(fd, "wb", buffering=1 << 20)
        self._fh.write(data)
        self._sha.update(data)
        self._size += len(data)

    def finish(self) -> OutputFile | None:
        if self._fh is None:
            return None
        self._fh.close()
        self._fh = None
        return OutputFile(self._path, self._size, self._sha.hexdigest())

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            os.unlink(self._path)


def _line_error(code: str, line: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": param}


def _check_line(obj: Any, lineno: int, endpoint: str) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return _line_error("invalid_json_line", lineno, "This line is not parseable as valid JSON.")
    for name in REQUIRED_FIELDS:
        if name not in obj or obj[name] is None:
            return _line_error(
                "missing_required_parameter", lineno, f"Missing required parameter: '{name}'.", name
            )
    if not isinstance(obj["custom_id"], str) or not obj["custom_id"]:
        return _line_error(
            "invalid_custom_id", lineno, "The custom_id must be a non-empty string.", "custom_id"
        )
    if obj["method"] != "POST":
        return _line_error("invalid_method", lineno, "Only the POST method is supported.", "method")
    url = obj["url"]
    if not isinstance(url, str) or bodies.normalize_endpoint(url) != bodies.normalize_endpoint(endpoint):
        return _line_error(
            "url_mismatch",
            lineno,
            f"The provided URL '{url}' does not match the batch endpoint '{endpoint}'.",
            "url",
        )
    if not isinstance(obj["body"], dict):
        return _line_error("invalid_request", lineno, "The request body must be a JSON object.", "body")
    return None


def _answer(obj: dict[str, Any], endpoint: str, results: Results) -> tuple[bool, bytes]:
    """Answer one valid request line: (succeeded, output line bytes)."""
    request_id = "req_" + secrets.token_hex(16)
    model: str | None
    try:
        model, body, input_tokens, output_tokens = bodies.build(endpoint, obj["body"])
        status, ok = 200, True
        results.input_tokens += input_tokens
        results.enqueued_tokens += input_tokens
        results.output_tokens += output_tokens
    except bodies.RequestFailure as failure:
        model = obj["body"].get("model") if isinstance(obj["body"].get("model"), str) else None
        body, status, ok = {"error": failure.error}, failure.status, False
    if results.model is None and model:
        results.model = model
    line = {
        "id": "batch_req_" + secrets.token_hex(16),
        "custom_id": obj["custom_id"],
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }
    return ok, json.dumps(line, separators=(",", ":")).encode() + b"\n"


def _directed(obj: dict[str, Any], directive: Directive) -> tuple[bool, bytes]:
    """The error line of a request a test directive expires or fails (`limits`)."""
    line: dict[str, Any] = {"id": "batch_req_" + secrets.token_hex(16), "custom_id": obj["custom_id"]}
    if directive.kind == "expire":
        line["response"] = None
        line["error"] = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
    else:
        status = directive.status
        kind = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
        error = {"message": directive.message, "type": kind, "param": None, "code": directive.code}
        line["response"] = {
            "status_code": status,
            "request_id": "req_" + secrets.token_hex(16),
            "body": {"error": error},
        }
        line["error"] = None
    return False, json.dumps(line, separators=(",", ":")).encode() + b"\n"


EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def _prompt_estimate(endpoint: str, body: dict[str, Any]) -> int:
    try:
        return bodies.build(endpoint, body)[2]
    except bodies.RequestFailure:
        return 0


def process(
    input_path: str,
    endpoint: str,
    tmp_dir: str,
    *,
    validate: bool = True,
    limit: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    directive: Callable[[str], Directive | None] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Validation, Results]:
    """One streaming pass over the input: validate every line and answer the first ``limit`` requests.

    Output is only produced while no validation error has been seen; a batch that fails validation
    gets no output. ``should_stop`` lets an abandoned pass end early. ``directive`` says what a
    test directive in a custom_id does to that request (`limits`; None: it runs normally).
    """
    validation = Validation()
    results = Results()
    out = _HashingWriter(tmp_dir, "out-")
    err = _HashingWriter(tmp_dir, "err-")
    seen: set[int] = set()
    answered = 0
    try:
        with open(input_path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                if should_stop is not None and lineno % 512 == 0 and should_stop():
                    break
                if not validate and limit is not None and answered >= limit:
                    break
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = _INVALID
                problem = (
                    _line_error("invalid_json_line", lineno, "This line is not parseable as valid JSON.")
                    if obj is _INVALID
                    else _check_line(obj, lineno, endpoint)
                )
                if problem is None:
                    key = hash(obj["custom_id"])
                    if key in seen:
                        problem = _line_error(
                            "duplicate_custom_id",
                            lineno,
                            "The custom_id for this request is a duplicate of another request. The custom_id "
                            "parameter must be unique for each request in a batch.",
                            "custom_id",
                        )
                    elif validate:
                        seen.add(key)
                if problem is not None:
                    if validate and len(validation.errors) < MAX_REPORTED_ERRORS:
                        validation.errors.append(problem)
                    continue
                validation.total += 1
                if validation.errors or (limit is not None and answered >= limit):
                    continue
                directed = directive(obj["custom_id"]) if directive is not None else None
                if directed is not None:
                    ok, line = _directed(obj, directed)
                    if results.model is None and isinstance(obj["body"].get("model"), str):
                        results.model = obj["body"]["model"]
                    results.enqueued_tokens += _prompt_estimate(endpoint, obj["body"])
                    results.expired += directed.kind == "expire"
                else:
                    ok, line = _answer(obj, endpoint, results)
                answered += 1
                if ok:
                    results.completed += 1
                    out.write(line)
                else:
                    results.failed += 1
                    err.write(line)
        if validate and validation.total == 0 and not validation.errors:
            validation.errors.append(
                {
                    "code": "empty_file",
                    "line": None,
                    "message": "The batch input file is empty.",
                    "param": None,
                }
            )
        results.output = out.finish()
        results.error = err.finish()
    except BaseException:
        out.abort()
        err.abort()
        raise
    if validation.errors:
        results.discard()
        results.completed = results.failed = 0
    now = clock()
    validation.done_at = results.done_at = now
    return validation, results


_INVALID: Any = object()
