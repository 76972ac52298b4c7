"""Form fields that need more than a type to read."""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError
from gateway.models.files import ExpiresAfter


def expires_after_from_form(anchor: str | None, seconds: int | None) -> dict[str, Any] | None:
    """`expires_after[anchor]` and `expires_after[seconds]` (each already validated by type)
    as the object the provider takes; an anchor alone lacks its seconds."""
    if anchor is None and seconds is None:
        return None
    if seconds is None:
        raise InvalidRequestError(
            "expires_after[seconds] must be a whole number of seconds.", param="expires_after.seconds"
        )
    return ExpiresAfter(anchor="created_at", seconds=seconds).model_dump()
