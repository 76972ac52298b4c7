"""GET /v1/webhook_endpoints/{webhook_endpoint_id}/deliveries: attempts, cursor-paginated (the
gateway's own)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.common import ListPage
from gateway.models.webhooks import WebhookDelivery
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_deliveries")


@app.endpoint
def list_webhook_deliveries(
    webhook_endpoint_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query()] = None,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> ListPage[WebhookDelivery]:
    return webhook_endpoints.deliveries(
        app.caller, webhook_endpoint_id, limit, after=after, ascending=order == "asc"
    )


handler = app.lambda_handler
