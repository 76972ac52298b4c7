"""POST /v1/webhook_endpoints/{webhook_endpoint_id}/test: send a sample event now."""

from gateway.http.resolver import GatewayApp
from gateway.models.webhooks import WebhookEndpointTestResult, WebhookTestRequest
from gateway.service import webhook_endpoints

app = GatewayApp("webhooks_test")


@app.endpoint
def test_webhook_endpoint(webhook_endpoint_id: str, request: WebhookTestRequest) -> WebhookEndpointTestResult:
    return webhook_endpoints.test(app.caller, webhook_endpoint_id, request)


handler = app.lambda_handler
