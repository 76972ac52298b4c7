"""How far along an object's status is: a snapshot write never moves a status backwards.

Statuses of one rank may replace each other (a batch's counts change while `in_progress`;
a provider may report `error` for a file it had `processed`); an older snapshot read before a
newer one was stored never overwrites a status of a higher rank.
"""

from __future__ import annotations

_RANKS: dict[str, dict[str, int]] = {
    "batch": {
        "validating": 0,
        "in_progress": 1,
        "finalizing": 2,
        "cancelling": 2,
        "completed": 3,
        "failed": 3,
        "expired": 3,
        "cancelled": 3,
    },
    "file": {"uploaded": 0, "processed": 1, "error": 1},
    # `completing`: the internal claim between pending and completed (service.uploads)
    "upload": {"pending": 0, "completing": 1, "completed": 2, "cancelled": 2, "expired": 2},
}


def rank(kind: str, status: str | None) -> int:
    """The status's rank; an unknown status ranks lowest (anything may replace it)."""
    return _RANKS.get(kind, {}).get(status or "", 0)


def statuses_ahead_of(kind: str, status: str | None) -> list[str]:
    """The statuses a snapshot with `status` must not overwrite."""
    own = rank(kind, status)
    return sorted(name for name, value in _RANKS.get(kind, {}).items() if value > own)
