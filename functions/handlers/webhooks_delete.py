"""DELETE /v1/webhook_endpoints/{webhook_endpoint_id}."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import DeletedWebhookEndpoint
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_delete")


@app.endpoint
def delete_webhook_endpoint(webhook_endpoint_id: str) -> DeletedWebhookEndpoint:
    return webhook_endpoints.delete(app.caller, webhook_endpoint_id)


handler = app.lambda_handler
