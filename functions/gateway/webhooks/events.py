"""OpenAI's webhook event objects, with gateway ids.

An event's id is derived from what happened (the batch and the change), so two watchers or a
watcher and a retrieve that both see one change produce one event id: receivers drop the
duplicate by its `webhook-id`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any


def event_id(batch_id: str, event_type: str, detail: str = "") -> str:
    digest = hashlib.sha256(f"{batch_id}#{event_type}#{detail}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def batch_event(batch_id: str, event_type: str, created_at: int, detail: str = "") -> dict[str, Any]:
    return {
        "id": event_id(batch_id, event_type, detail),
        "object": "event",
        "type": event_type,
        "created_at": created_at,
        "data": {"id": batch_id},
    }


def sample_event(event_type: str) -> dict[str, Any]:
    """What POST /webhook_endpoints/{id}/test sends: a real event shape for a sample batch (or,
    for a health alert, a sample alert notification: its `data.id` names the notification)."""
    now = int(time.time())
    subject = "health_alert_test" if event_type.startswith("health.") else "batch_test"
    return batch_event(subject, event_type, now, detail=f"test#{time.time_ns()}")
