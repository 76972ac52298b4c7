"""The Webhook Endpoints API through its handlers: the event types openai-python lists, and
the deliveries list paginated by `after`."""

from __future__ import annotations

from typing import Any, get_args, get_type_hints

import pytest
from gateway.models.webhooks import SERVED_EVENT_TYPES
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from handlers import webhook_event_types, webhooks_create, webhooks_deliveries, webhooks_update
from openai.types.webhooks import WebhookCreateParams

from tests.unit.conftest import call, event

pytestmark = pytest.mark.usefixtures("aws")

HEALTH_EVENTS = ["health.alert.triggered", "health.alert.resolved"]  # openai-python 3.63


def create(event_types: list[str]) -> tuple[int, dict[str, Any]]:
    body = {"url": "https://8.8.8.8/hook", "name": "n", "event_types": event_types}
    status, answer, _ = call(webhooks_create.handler, event("POST", "/v1/webhook_endpoints", body=body))
    return status, answer


def update(endpoint_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = event(
        "POST",
        f"/v1/webhook_endpoints/{endpoint_id}",
        resource="/v1/webhook_endpoints/{webhook_endpoint_id}",
        path_parameters={"webhook_endpoint_id": endpoint_id},
        body=body,
    )
    status, answer, _ = call(webhooks_update.handler, request)
    return status, answer


def test_health_alerts_are_accepted_at_create_and_update() -> None:
    status, created = create(HEALTH_EVENTS)
    assert status == 200, created
    assert created["event_types"] == HEALTH_EVENTS
    status, updated = update(created["id"], {"event_types": ["batch.completed", "health.alert.resolved"]})
    assert status == 200, updated
    assert updated["event_types"] == ["batch.completed", "health.alert.resolved"]
    status, _ = create(["batch.completed"])
    assert status == 200
    status, listed, _ = call(webhook_event_types.handler, event("GET", "/v1/webhook_event_types"))
    assert status == 200 and set(HEALTH_EVENTS) <= set(listed["data"])


def test_the_installed_sdks_batch_and_health_event_types_are_all_served() -> None:
    (listed,) = get_args(get_type_hints(WebhookCreateParams, include_extras=True)["event_types"])
    (literal,) = get_args(listed)
    ours = {name for name in get_args(literal) if name.startswith(("batch.", "health."))}
    assert ours <= set(SERVED_EVENT_TYPES)


def test_an_event_type_the_gateway_does_not_serve_is_still_a_400_naming_it() -> None:
    status, answer = create(["response.completed"])
    assert status == 400 and answer["error"]["code"] == "unsupported_event_type"
    assert "health.alert.triggered" in answer["error"]["message"]


def seed_deliveries(endpoint_id: str, count: int) -> list[str]:
    """`count` delivery records, oldest first, straight into the table (one a millisecond)."""
    id_map, ids = IdMap(), []
    for number in range(count):
        delivery_id = f"whdl_{number:04d}"
        record = ObjectRecord(
            id=delivery_id,
            kind="webhook_delivery",
            owner=endpoint_id,
            provider=NO_PROVIDER,
            created_at=1_700_000_000,
            created_us=1_700_000_000_000_000 + number * 1000,
            object={
                "id": delivery_id,
                "object": "webhook_endpoint.delivery",
                "webhook_endpoint_id": endpoint_id,
                "event_id": f"evt_{number}",
                "event_type": "batch.completed",
                "attempt": 1,
                "created_at": 1_700_000_000,
                "status_code": 200,
                "success": True,
            },
        )
        id_map.put(record, reverse=False)
        ids.append(delivery_id)
    return ids


def deliveries(endpoint_id: str, **query: str) -> tuple[int, dict[str, Any]]:
    request = event(
        "GET",
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
        resource="/v1/webhook_endpoints/{webhook_endpoint_id}/deliveries",
        path_parameters={"webhook_endpoint_id": endpoint_id},
        query=query or None,
    )
    status, answer, _ = call(webhooks_deliveries.handler, request)
    return status, answer


def page_through(endpoint_id: str, **query: str) -> list[str]:
    seen: list[str] = []
    after: dict[str, str] = {}
    for _ in range(10):  # a client that follows last_id; a cursor that is ignored never ends
        status, page = deliveries(endpoint_id, limit="100", **query, **after)
        assert status == 200, page
        seen += [delivery["id"] for delivery in page["data"]]
        if not page["has_more"]:
            return seen
        after = {"after": page["last_id"]}
    raise AssertionError(f"still has_more after 10 pages: {len(seen)} seen")


def test_a_client_following_last_id_reaches_every_delivery_once() -> None:
    status, created = create(["batch.completed"])
    assert status == 200
    ids = seed_deliveries(created["id"], 130)
    assert page_through(created["id"]) == ids[::-1]  # newest first
    assert page_through(created["id"], order="asc") == ids
    status, page = deliveries(created["id"], limit="5", after=ids[3])
    assert status == 200 and [d["id"] for d in page["data"]] == ids[2::-1]
    assert page["has_more"] is False


def test_a_cursor_of_another_endpoint_or_kind_is_refused_naming_after() -> None:
    (_, mine), (_, other) = create(["batch.completed"]), create(["batch.completed"])
    (foreign,) = seed_deliveries(other["id"], 1)
    status, answer = deliveries(mine["id"], after=foreign)
    assert status == 404 and answer["error"]["param"] == "after"
    status, answer = deliveries(mine["id"], after=other["id"])
    assert status == 400
    assert (answer["error"]["param"], answer["error"]["code"]) == ("after", "invalid_cursor")
