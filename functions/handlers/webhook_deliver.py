"""SQS consumer: one delivery attempt per message (partial batch failures, so one bad message
never holds the others back)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.observability.instrument import instrumented
from gateway.webhooks import dispatch
from gateway.webhooks.queue import DeliveryJob

processor = BatchProcessor(event_type=EventType.SQS)


def deliver(record: SQSRecord) -> None:
    dispatch.run(DeliveryJob.model_validate_json(record.body))


@instrumented(clear_state=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
    )
