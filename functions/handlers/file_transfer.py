"""The file_transfer function (asynchronous): a completed upload's parts to the provider.

Event: {"file_id": "<gateway file id>"} from uploads_complete. Safe to run again.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.observability import logger
from gateway.observability.instrument import instrumented
from gateway.providers.openai import client  # noqa: F401  (init phase: every transfer calls a provider)
from gateway.service.transfer import transfer_file


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    file_id = str(event.get("file_id") or "")
    if not file_id:
        logger.error("file_transfer event without a file_id")
        return {"file_id": None, "status": None}
    return {"file_id": file_id, "status": transfer_file(file_id)}
