"""Where batch events go: the EventBridge bus, and the webhook delivery queue with its
dead-letter queue (infra/monitoring.py alarms on its depth: an event no attempt delivered is seen)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from gateway import routes

# Messages wait in the dead-letter queue this long for an operator (SQS's longest).
DEAD_LETTER_RETENTION = cdk.Duration.days(14)


class GatewayEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", description="openai-gateway: batch events (batch.completed, ...)"
        )
        (consumer,) = routes.QUEUE_CONSUMERS
        self.consumer = consumer
        self.dead_letters = sqs.Queue(
            self,
            "WebhookDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "WebhookDeliveries",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(consumer.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=consumer.max_receive_count
            ),
        )
