"""OpenAI's Webhook Endpoints API objects (openai-python's `types.webhooks`), field for field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from gateway.models.common import GatewayModel

# OpenAI's batch event types, and two of the gateway's own that only endpoints listing them get.
OPENAI_BATCH_EVENTS = ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled")
GATEWAY_BATCH_EVENTS = ("batch.in_progress", "batch.progress")
# OpenAI's project health alerts (openai-python 3.63's WebhookCreateParams lists them first): an
# endpoint set up as for OpenAI may subscribe to them; the gateway raises none of its own, so
# only the test event (POST .../test) reaches such a subscription.
OPENAI_HEALTH_EVENTS = ("health.alert.triggered", "health.alert.resolved")
SERVED_EVENT_TYPES = OPENAI_BATCH_EVENTS + OPENAI_HEALTH_EVENTS + GATEWAY_BATCH_EVENTS


class WebhookEndpoint(GatewayModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    created_at: int
    updated_at: int | None = None
    name: str
    url: str
    event_types: list[str]
    signing_secret_hint: str | None = None


class WebhookEndpointWithSecret(WebhookEndpoint):
    signing_secret: str  # shown only at creation and rotation


class DeletedWebhookEndpoint(GatewayModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class WebhookEndpointTestResult(GatewayModel):
    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    webhook_endpoint_id: str
    event_type: str
    status_code: int
    success: Literal[True] = True


class WebhookEventTypeList(GatewayModel):
    object: Literal["list"] = "list"
    data: list[str]


# Typed as plain strings so that an event type OpenAI has and this gateway does not serve gets
# its own 400 naming the served ones; the document lists them.
EventType = Annotated[str, Field(json_schema_extra={"enum": list(SERVED_EVENT_TYPES)})]
WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048, json_schema_extra={"format": "uri"})]


class CreateWebhookEndpointRequest(GatewayModel):
    url: WebhookUrl
    name: str = Field(min_length=1, max_length=256)
    event_types: list[EventType] = Field(min_length=1, max_length=len(SERVED_EVENT_TYPES))


class UpdateWebhookEndpointRequest(GatewayModel):
    url: WebhookUrl | None = None
    name: str | None = Field(default=None, min_length=1, max_length=256)
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, max_length=len(SERVED_EVENT_TYPES)
    )


class RotateSecretRequest(GatewayModel):
    keep_old_secret_active_for_24_hours: StrictBool = False


class WebhookTestRequest(GatewayModel):
    event_type: EventType


class WebhookDelivery(GatewayModel):
    """The gateway's own: one attempt to deliver one event (GET /webhook_endpoints/{id}/deliveries)."""

    id: str
    object: Literal["webhook_endpoint.delivery"] = "webhook_endpoint.delivery"
    webhook_endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    created_at: int
    status_code: int | None = None  # None: no answer (refused, timed out, unsafe address)
    latency_ms: int | None = None
    success: bool
    error: str | None = None
