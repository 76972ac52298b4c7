"""The delivery queue: SQS in AWS (longer waits than SQS's 15-minute delay are re-queued until
due), an in-process delay queue under `make serve`. Either way the messages reach the same
consumer (handlers.webhook_deliver) as SQS records."""

from __future__ import annotations

import os
from collections.abc import Callable

from gateway.models.common import GatewayModel
from gateway.runtime import resources

SQS_MAX_DELAY_SECONDS = 900

LocalSender = Callable[[str, str, float], None]  # (queue: "deliveries" | "dead", body, delay)
_local_sender: LocalSender | None = None


class DeliveryJob(GatewayModel):
    endpoint_id: str
    event: dict[str, object]
    attempt: int = 1
    first_attempt_at: float
    not_before: float = 0.0


def use_local_queue(sender: LocalSender | None) -> None:
    global _local_sender
    _local_sender = sender


def send(job: DeliveryJob, delay_seconds: float = 0.0) -> None:
    _send("deliveries", resources.ENV_WEBHOOK_QUEUE_URL, job, delay_seconds)


def dead_letter(job: DeliveryJob) -> None:
    """An event that no attempt delivered in time: kept in the dead-letter queue for the operator."""
    _send("dead", resources.ENV_WEBHOOK_DLQ_URL, job, 0.0)


def _send(queue: str, url_env: str, job: DeliveryJob, delay_seconds: float) -> None:
    body = job.model_dump_json()
    if _local_sender is not None:
        _local_sender(queue, body, delay_seconds)
        return
    import boto3  # deferred: only the functions that publish pay for the client

    boto3.client("sqs").send_message(
        QueueUrl=os.environ[url_env],
        MessageBody=body,
        DelaySeconds=int(min(SQS_MAX_DELAY_SECONDS, max(0.0, delay_seconds))),
    )
