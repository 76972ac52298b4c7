"""Form fields that need more than a type to read."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gateway.errors import InvalidRequestError
from gateway.models.files import ExpiresAfter


def expires_after_from_form(anchor: str | None, seconds: str | None) -> dict[str, Any] | None:
    if anchor is None and seconds is None:
        return None
    if seconds is None or not seconds.strip().isdigit():
        raise InvalidRequestError(
            "expires_after[seconds] must be a whole number of seconds.", param="expires_after.seconds"
        )
    try:
        parsed = ExpiresAfter(anchor=anchor or "created_at", seconds=int(seconds))  # type: ignore[arg-type]
    except ValidationError as exc:
        problem = exc.errors()[0]
        param = "expires_after." + str(problem["loc"][0])
        raise InvalidRequestError(f"Invalid value for '{param}': {problem['msg']}.", param=param) from exc
    return parsed.model_dump()
