"""POST /v1/webhook_endpoints: register a URL for the caller's batch events (secret shown once)."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import CreateWebhookEndpointRequest, WebhookEndpointWithSecret
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_create")


@app.endpoint
def create_webhook_endpoint(request: CreateWebhookEndpointRequest) -> WebhookEndpointWithSecret:
    return webhook_endpoints.create(app.caller, request)


handler = app.lambda_handler
