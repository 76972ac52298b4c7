"""The upstream ids a request touches, so that a provider's error speaks of gateway ids.

A provider's message such as "No such File object: file-abc" names its own id, which the
client never saw. Every record the request looks up remembers its upstream id here (one dict
per request, reset by the resolver), and the provider error reader swaps each remembered
upstream id in a message for its gateway id.
"""

from __future__ import annotations

from contextvars import ContextVar

_seen: ContextVar[dict[str, str] | None] = ContextVar("upstream_ids", default=None)


def start_request() -> None:
    _seen.set({})


def remember(upstream_id: str | None, gateway_id: str) -> None:
    if not upstream_id or upstream_id == gateway_id:
        return
    seen = _seen.get()
    if seen is None:
        seen = {}
        _seen.set(seen)
    seen[upstream_id] = gateway_id


def to_gateway_ids(text: str) -> str:
    """`text` with every upstream id of this request replaced by its gateway id."""
    seen = _seen.get() or {}
    for upstream_id in sorted(seen, key=len, reverse=True):  # a longer id may contain a shorter
        text = text.replace(upstream_id, seen[upstream_id])
    return text
