"""POST /v1/webhook_endpoints/{webhook_endpoint_id}: change url, name or event types."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import UpdateWebhookEndpointRequest, WebhookEndpoint
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_update")


@app.endpoint
def update_webhook_endpoint(
    webhook_endpoint_id: str, request: UpdateWebhookEndpointRequest
) -> WebhookEndpoint:
    return webhook_endpoints.update(app.caller, webhook_endpoint_id, request)


handler = app.lambda_handler
