"""OpenAI's Webhook Endpoints API through the official SDK's `client.webhooks.*`, per key."""

from __future__ import annotations

import time

import openai
import pytest
from openai.types.webhooks import (
    DeletedWebhookEndpoint,
    WebhookEndpoint,
    WebhookEndpointTestResult,
    WebhookEndpointWithSecret,
    WebhookEventTypeList,
)

from devserver.server import LocalGateway
from tests.integration.helpers import error_of
from tests.integration.receiver import webhook_receiver
from tests.integration.tenancy import generate_key, sdk


def strict(model: type, value: object) -> None:
    """Field for field as openai-python's type (raises on a missing or mistyped field)."""
    model.model_validate(value.to_dict())  # type: ignore[attr-defined]


def test_the_sdk_manages_an_endpoint_from_create_to_delete(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway, generate_key(local_gateway).key)
    with webhook_receiver() as receiver:
        created = client.webhooks.create(url=receiver.url, name="ci", event_types=["batch.completed"])
        strict(WebhookEndpointWithSecret, created)
        assert created.signing_secret.startswith("whsec_") and created.signing_secret_hint
        assert created.signing_secret_hint.endswith(created.signing_secret[-4:])

        fetched = client.webhooks.retrieve(created.id)
        strict(WebhookEndpoint, fetched)
        assert "signing_secret" not in fetched.to_dict()

        updated = client.webhooks.update(
            created.id, name="renamed", event_types=["batch.failed", "batch.completed"]
        )
        assert (updated.name, updated.event_types) == ("renamed", ["batch.failed", "batch.completed"])

        listed = client.webhooks.list(limit=10)
        assert [endpoint.id for endpoint in listed.data] == [created.id]

        tested = client.webhooks.test(created.id, event_type="batch.completed")
        strict(WebhookEndpointTestResult, tested)
        assert (tested.status_code, tested.webhook_endpoint_id) == (200, created.id)
        delivery = receiver.deliveries[-1]
        event = openai.OpenAI(api_key="unused", webhook_secret=created.signing_secret).webhooks.unwrap(
            delivery.body, delivery.headers
        )
        assert event.type == "batch.completed" and event.id == delivery.headers["webhook-id"]

        deleted = client.webhooks.delete(created.id)
        strict(DeletedWebhookEndpoint, deleted)
        with pytest.raises(openai.NotFoundError):
            client.webhooks.retrieve(created.id)


def test_a_rotated_secret_signs_and_the_old_one_keeps_working_when_asked(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway, generate_key(local_gateway).key)
    with webhook_receiver() as receiver:
        created = client.webhooks.create(url=receiver.url, name="rot", event_types=["batch.completed"])
        rotated = client.webhooks.rotate_secret(created.id, keep_old_secret_active_for_24_hours=True)
        strict(WebhookEndpointWithSecret, rotated)
        assert rotated.signing_secret != created.signing_secret
        client.webhooks.test(created.id, event_type="batch.completed")
        delivery = receiver.deliveries[-1]
        for secret in (created.signing_secret, rotated.signing_secret):
            openai.OpenAI(api_key="x", webhook_secret=secret).webhooks.unwrap(delivery.body, delivery.headers)

        client.webhooks.rotate_secret(created.id)  # the previous one stops at once
        client.webhooks.test(created.id, event_type="batch.completed")
        with pytest.raises(openai.InvalidWebhookSignatureError):
            openai.OpenAI(api_key="x", webhook_secret=rotated.signing_secret).webhooks.unwrap(
                receiver.deliveries[-1].body, receiver.deliveries[-1].headers
            )


def test_another_key_cannot_see_or_touch_an_endpoint(local_gateway: LocalGateway) -> None:
    owner = sdk(local_gateway, generate_key(local_gateway).key)
    other = sdk(local_gateway, generate_key(local_gateway).key)
    with webhook_receiver() as receiver:
        created = owner.webhooks.create(url=receiver.url, name="mine", event_types=["batch.completed"])
        for call in (
            lambda: other.webhooks.retrieve(created.id),
            lambda: other.webhooks.update(created.id, name="x"),
            lambda: other.webhooks.delete(created.id),
            lambda: other.webhooks.rotate_secret(created.id),
            lambda: other.webhooks.test(created.id, event_type="batch.completed"),
        ):
            with pytest.raises(openai.NotFoundError):
                call()
        assert created.id not in [endpoint.id for endpoint in other.webhooks.list().data]
        assert receiver.deliveries == []


def test_event_types_are_openais_batch_events_and_the_gateways_own(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway, generate_key(local_gateway).key)
    types = client.webhooks.event_types.list()
    strict(WebhookEventTypeList, types)
    assert types.data == [
        "batch.completed",
        "batch.failed",
        "batch.expired",
        "batch.cancelled",
        "health.alert.triggered",
        "health.alert.resolved",
        "batch.in_progress",
        "batch.progress",
    ]


@pytest.mark.parametrize(
    ("url", "event_types", "param", "code"),
    [
        ("http://127.0.0.1:1/x", ["response.completed"], "event_types", "unsupported_event_type"),
        ("ftp://127.0.0.1/x", ["batch.completed"], "url", "invalid_webhook_url"),
        ("http://10.0.0.1/x", ["batch.completed"], "url", "invalid_webhook_url"),
        ("http://169.254.169.254/latest", ["batch.completed"], "url", "invalid_webhook_url"),
        ("https://user:pw@127.0.0.1/x", ["batch.completed"], "url", "invalid_webhook_url"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(
    local_gateway: LocalGateway, url: str, event_types: list[str], param: str, code: str
) -> None:
    client = sdk(local_gateway, generate_key(local_gateway).key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.webhooks.create(url=url, name="bad", event_types=event_types)  # type: ignore[list-item]
    error = error_of(refused.value)
    assert (error["param"], error["code"]) == (param, code)


def test_deliveries_are_listed_and_a_retry_keeps_the_webhook_id(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway, generate_key(local_gateway).key)
    with webhook_receiver(answers=[500]) as receiver:
        created = client.webhooks.create(url=receiver.url, name="d", event_types=["batch.completed"])
        tested = client.webhooks.test(created.id, event_type="batch.completed")
        assert tested.status_code == 500
        listed = client.get(f"/webhook_endpoints/{created.id}/deliveries", cast_to=object)
        (first,) = listed["data"]  # type: ignore[index]
        assert (first["status_code"], first["success"], first["attempt"]) == (500, False, 1)
        retried = client.post(
            f"/webhook_endpoints/{created.id}/deliveries/{first['id']}/retry", cast_to=object, body={}
        )
        assert (retried["status_code"], retried["success"], retried["attempt"]) == (200, True, 2)  # type: ignore[index]
        ids = [delivery.headers["webhook-id"] for delivery in receiver.deliveries]
        assert len(ids) == 2 and ids[0] == ids[1] == first["event_id"]


def test_a_receiver_that_fails_twice_gets_the_same_webhook_id_three_times(
    local_gateway: LocalGateway,
) -> None:
    from gateway.webhooks import dispatch, events

    owner = generate_key(local_gateway)
    client = sdk(local_gateway, owner.key)
    other = sdk(local_gateway, generate_key(local_gateway).key)
    with webhook_receiver(answers=[500, 503]) as receiver, webhook_receiver() as bystander:
        created = client.webhooks.create(url=receiver.url, name="r", event_types=["batch.completed"])
        other.webhooks.create(url=bystander.url, name="b", event_types=["batch.completed"])
        client.webhooks.create(url=bystander.url, name="not-listed", event_types=["batch.failed"])
        event = events.batch_event("batch_xyz", "batch.completed", 1_700_000_000)
        assert dispatch.publish(owner.key_id, event) == 1
        deadline = time.monotonic() + 10
        while len(receiver.deliveries) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # nothing more may arrive once one attempt succeeded
        assert [d.headers["webhook-id"] for d in receiver.deliveries] == [event["id"]] * 3
        verified = openai.OpenAI(api_key="x", webhook_secret=created.signing_secret).webhooks.unwrap(
            receiver.deliveries[-1].body, receiver.deliveries[-1].headers
        )
        assert (verified.type, verified.data.id) == ("batch.completed", "batch_xyz")
        assert bystander.deliveries == []  # another key's endpoint, and an endpoint of another type
        attempts = client.get(f"/webhook_endpoints/{created.id}/deliveries", cast_to=object)["data"]  # type: ignore[index]
        assert sorted((a["attempt"], a["status_code"]) for a in attempts) == [(1, 500), (2, 503), (3, 200)]


def test_a_client_bound_to_a_providers_base_url_manages_the_same_endpoints(
    local_gateway: LocalGateway,
) -> None:
    """Served under every prefix, as every other route: one key's endpoints, whichever base URL."""
    key = generate_key(local_gateway).key
    bound = sdk(local_gateway, key, provider="openai")
    with webhook_receiver() as receiver:
        created = bound.webhooks.create(url=receiver.url, name="bound", event_types=["batch.completed"])
        assert [endpoint.id for endpoint in sdk(local_gateway, key).webhooks.list().data] == [created.id]
        assert bound.webhooks.retrieve(created.id).id == created.id
        bound.webhooks.delete(created.id)
