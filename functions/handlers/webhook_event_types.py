"""GET /v1/webhook_event_types: the event types this gateway sends."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import WebhookEventTypeList
from gateway.service import webhook_endpoints

app = GatewayApp("webhook_event_types")


@app.endpoint
def list_webhook_event_types() -> WebhookEventTypeList:
    return webhook_endpoints.event_types()


handler = app.lambda_handler
