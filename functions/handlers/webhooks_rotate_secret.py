"""POST /v1/webhook_endpoints/{webhook_endpoint_id}/rotate_secret: a new signing secret."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import RotateSecretRequest, WebhookEndpointWithSecret
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_rotate_secret")


@app.endpoint
def rotate_webhook_secret(
    webhook_endpoint_id: str, request: RotateSecretRequest
) -> WebhookEndpointWithSecret:
    return webhook_endpoints.rotate_secret(app.caller, webhook_endpoint_id, request)


handler = app.lambda_handler
