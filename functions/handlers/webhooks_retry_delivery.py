"""POST /v1/webhook_endpoints/{webhook_endpoint_id}/deliveries/{delivery_id}/retry: send an event again."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import WebhookDelivery
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_retry_delivery")


@app.endpoint
def retry_webhook_delivery(webhook_endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    return webhook_endpoints.retry_delivery(app.caller, webhook_endpoint_id, delivery_id)


handler = app.lambda_handler
