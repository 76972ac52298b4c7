"""The transfer_failed function (asynchronous): file_transfer's on-failure destination.

Event: Lambda's invocation record once it gives up on a file_transfer event
({"requestContext": {"condition": "RetriesExhausted" | "EventAgeExceeded", ...},
"requestPayload": {"file_id": ...}, "responsePayload": {...}}). Safe to run again.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.observability.instrument import instrumented
from gateway.providers.openai import client  # noqa: F401  (init phase: it may delete a provider copy)
from gateway.service.transfer_failure import handle_failure_record


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_failure_record(event)
