"""Events to endpoints: fan out to the owner's endpoints, then deliver with retries.

At least once: a failed attempt is queued again after the next gap of the retry schedule
(the last gap repeats) until `webhook_retry_hours` have passed since the first attempt; then
the job goes to the dead-letter queue. Every attempt of one event carries the same
`webhook-id` (the event id), so receivers can drop duplicates.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.observability import logger, metric_names
from gateway.observability.metrics import emit
from gateway.runtime.settings import get_settings
from gateway.storage.id_map import IdMap, PageQuery
from gateway.webhooks import delivery, queue
from gateway.webhooks.queue import DeliveryJob

_ENDPOINTS_PAGE = 100
# WebhookDeliveries' outcomes (metric_names lists them for the dashboard too)
DELIVERED, RETRIED, FAILED = (
    metric_names.WEBHOOK_DELIVERED,
    metric_names.WEBHOOK_RETRIED,
    metric_names.WEBHOOK_FAILED,
)


def publish(owner: str, event: dict[str, Any], id_map: IdMap | None = None) -> int:
    """Queues `event` for each of `owner`'s endpoints that listed its type; how many."""
    id_map = id_map or IdMap()
    now = time.time()
    queued = 0
    after = None
    while True:
        records, has_more = id_map.page(
            PageQuery(
                kind="webhook_endpoint", limit=_ENDPOINTS_PAGE, owner=owner, ascending=True, after=after
            )
        )
        for record in records:
            if event["type"] in (record.object.get("event_types") or ()):
                queue.send(DeliveryJob(endpoint_id=record.id, event=event, first_attempt_at=now))
                queued += 1
        if not has_more or not records:
            return queued
        after = records[-1]


def run(job: DeliveryJob, id_map: IdMap | None = None) -> None:
    """One attempt of `job` (or a wait for its time to come), and what follows from it."""
    now = time.time()
    if job.not_before > now:
        queue.send(job, job.not_before - now)  # SQS delays at most 15 minutes at a time
        return
    id_map = id_map or IdMap()
    endpoint = id_map.get(job.endpoint_id)
    if endpoint is None or endpoint.kind != "webhook_endpoint":
        logger.info("webhook endpoint gone; event dropped", extra={"endpoint_id": job.endpoint_id})
        return
    if delivery.send(endpoint, dict(job.event), attempt=job.attempt, id_map=id_map).success:
        emit(metric_names.WEBHOOK_DELIVERIES, outcome=DELIVERED)
        return
    settings = get_settings()
    if now - job.first_attempt_at >= settings.webhook_retry_hours * 3600:
        logger.warning(
            "webhook delivery gave up", extra={"endpoint_id": job.endpoint_id, "attempts": job.attempt}
        )
        queue.dead_letter(job)
        emit(metric_names.WEBHOOK_DELIVERIES, outcome=FAILED)
        return
    emit(metric_names.WEBHOOK_DELIVERIES, outcome=RETRIED)
    schedule = settings.webhook_retry_schedule
    gap = schedule[min(job.attempt - 1, len(schedule) - 1)]
    queue.send(job.model_copy(update={"attempt": job.attempt + 1, "not_before": now + gap}), gap)
