"""GET /v1/batches: the caller's batches, newest first, statuses current."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.batches import Batch
from gateway.models.common import ListPage
from gateway.service import batches
from gateway.service.listing import ListRequest

app = GatewayApp("batches_list")


@app.endpoint
def list_batches(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(pattern=r"^batch_", max_length=256)] = None,
    key_id: Annotated[str | None, Query()] = None,
) -> ListPage[Batch]:
    request = ListRequest(limit=limit, after=after, provider=app.provider_hint(), key_id=key_id)
    return batches.list_batches(app.caller, request)


handler = app.lambda_handler
