"""GET /v1/webhook_endpoints: the caller's endpoints, cursor-paginated."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.common import ListPage
from gateway.models.webhooks import WebhookEndpoint
from gateway.service import webhook_endpoints
from gateway.service.listing import ListRequest

app = GatewayApp("webhooks_list")


@app.endpoint
def list_webhook_endpoints(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query()] = None,
) -> ListPage[WebhookEndpoint]:
    return webhook_endpoints.list_endpoints(app.caller, ListRequest(limit=limit, after=after))


handler = app.lambda_handler
