"""What Bedrock's model families share when a batch record's body breaks their schema: the
record's `error` (`errorCode` 400, Bedrock's "Malformed input request" wording), and the text a
simulated model answers."""

from __future__ import annotations

import hashlib
from typing import Any


class InvalidInput(Exception):
    """A record body the model refuses: the record's error, as Bedrock writes it."""

    def error(self) -> dict[str, Any]:
        return {
            "errorCode": 400,
            "errorMessage": f"Malformed input request: {self}, please reformat your input and try again.",
        }


def require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInput(message)


def only_keys(body: dict[str, Any], allowed: frozenset[str] | set[str], where: str = "#") -> None:
    for key in body:
        require(key in allowed, f"{where}: extraneous key [{key}] is not permitted")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def in_range(
    body: dict[str, Any], name: str, low: float, high: float, where: str, *, integer: bool = False
) -> None:
    if name not in body:
        return
    value = body[name]
    numeric = is_int(value) or (not integer and isinstance(value, float))
    require(numeric, f"{where}/{name}: expected type: {'Integer' if integer else 'Number'}")
    require(low <= value <= high, f"{where}/{name}: {value} is not in the range {low} to {high}")


def tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def answer(model_id: str, prompt: str) -> tuple[str, str]:
    """(a digest of the request, the simulated answer to its last user text)."""
    digest = hashlib.sha256(f"{model_id}\x00{prompt}".encode()).hexdigest()
    return digest, f"This is a simulated response to: {prompt[:60] or '(empty prompt)'}"
