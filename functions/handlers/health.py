"""GET /health: liveness, no auth."""

from gateway.http.resolver import GatewayApp

app = GatewayApp("health")


@app.endpoint
def health() -> dict[str, str]:
    return {"status": "ok"}


handler = app.lambda_handler
