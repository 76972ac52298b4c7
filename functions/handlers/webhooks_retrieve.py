"""GET /v1/webhook_endpoints/{webhook_endpoint_id}."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import WebhookEndpoint
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_retrieve")


@app.endpoint
def retrieve_webhook_endpoint(webhook_endpoint_id: str) -> WebhookEndpoint:
    return webhook_endpoints.retrieve(app.caller, webhook_endpoint_id)


handler = app.lambda_handler
