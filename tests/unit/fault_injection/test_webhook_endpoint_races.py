"""An endpoint update and a secret rotation racing: each reads the endpoint, changes its copy and
writes it back. The write holds only if the endpoint's version is still the one read; the loser
reads again and applies its change to the winner's, so neither undoes the other."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.storage.webhook_endpoints import EndpointStore
from gateway.webhooks import delivery
from gateway.webhooks.signing import secret_hint
from handlers import webhooks_create, webhooks_retrieve, webhooks_rotate_secret, webhooks_update

from tests.unit.conftest import call, event
from tests.unit.fault_injection.faults import DynamoFaults

RESOURCE = "/v1/webhook_endpoints/{webhook_endpoint_id}"


def create() -> dict[str, Any]:
    body = {"url": "https://8.8.8.8/hook", "name": "before", "event_types": ["batch.completed"]}
    status, created, _ = call(webhooks_create.handler, event("POST", "/v1/webhook_endpoints", body=body))
    assert status == 200, created
    return created  # type: ignore[no-any-return]


def on_endpoint(handler: Any, endpoint_id: str, suffix: str = "", body: Any = None) -> tuple[int, Any]:
    method = "GET" if handler is webhooks_retrieve.handler else "POST"
    request = event(
        method,
        f"/v1/webhook_endpoints/{endpoint_id}{suffix}",
        resource=RESOURCE + suffix,
        path_parameters={"webhook_endpoint_id": endpoint_id},
        body=body,
    )
    status, answer, _ = call(handler, request)
    return status, answer


def rename(endpoint_id: str, name: str) -> tuple[int, Any]:
    return on_endpoint(webhooks_update.handler, endpoint_id, body={"name": name})


def rotate(endpoint_id: str) -> tuple[int, Any]:
    return on_endpoint(webhooks_rotate_secret.handler, endpoint_id, "/rotate_secret", body={})


def land_before_next_update_item(faults: DynamoFaults, step: Any) -> list[Any]:
    """Runs `step` once, just before the next UpdateItem reaches the table; returns its answers."""
    answers: list[Any] = []

    def interleave(**_: Any) -> None:
        if not answers:
            answers.append(None)  # armed once: the step's own UpdateItem passes
            answers[0] = step()

    faults.client.meta.events.register_first("before-call.dynamodb.UpdateItem", interleave)
    return answers


def assert_rotated_and_renamed(endpoint_id: str, rotated: dict[str, Any], name: str) -> None:
    status, stored = on_endpoint(webhooks_retrieve.handler, endpoint_id)
    assert status == 200
    assert stored["name"] == name
    assert stored["signing_secret_hint"] == secret_hint(rotated["signing_secret"])
    current = EndpointStore().read(endpoint_id)
    assert current is not None
    # deliveries are signed with the rotated secret, not the first one
    assert delivery.current_secrets(current.record, 0) == [rotated["signing_secret"]]


def test_a_rotation_between_an_updates_read_and_write_survives(faults: DynamoFaults) -> None:
    created = create()
    answers = land_before_next_update_item(faults, lambda: rotate(created["id"]))
    status, updated = rename(created["id"], "after")
    assert status == 200, updated
    ((rotate_status, rotated),) = answers
    assert rotate_status == 200, rotated
    assert rotated["signing_secret"] != created["signing_secret"]
    assert updated["signing_secret_hint"] == secret_hint(rotated["signing_secret"])
    assert_rotated_and_renamed(created["id"], rotated, "after")


def test_an_update_between_a_rotations_read_and_write_survives(faults: DynamoFaults) -> None:
    created = create()
    answers = land_before_next_update_item(faults, lambda: rename(created["id"], "after"))
    status, rotated = rotate(created["id"])
    assert status == 200, rotated
    ((rename_status, renamed),) = answers
    assert rename_status == 200 and renamed["name"] == "after"
    assert rotated["name"] == "after"
    assert_rotated_and_renamed(created["id"], rotated, "after")


def test_two_rotations_racing_give_two_generations_and_the_last_secret_signs(faults: DynamoFaults) -> None:
    created = create()
    answers = land_before_next_update_item(faults, lambda: rotate(created["id"]))
    status, second = rotate(created["id"])
    assert status == 200
    ((_, first),) = answers
    assert len({created["signing_secret"], first["signing_secret"], second["signing_secret"]}) == 3
    current = EndpointStore().read(created["id"])
    assert current is not None and current.record.state["generation"] == 3
    assert_rotated_and_renamed(created["id"], second, "before")


def test_a_deleted_endpoint_is_not_brought_back_by_an_update(faults: DynamoFaults) -> None:
    from handlers import webhooks_delete

    created = create()
    request = event(
        "DELETE",
        f"/v1/webhook_endpoints/{created['id']}",
        resource=RESOURCE,
        path_parameters={"webhook_endpoint_id": created["id"]},
    )
    land_before_next_update_item(faults, lambda: call(webhooks_delete.handler, request))
    status, answer = rename(created["id"], "after")
    assert status == 404, answer
    assert EndpointStore().read(created["id"]) is None


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_update_whose_write_fails_converges_when_retried(faults: DynamoFaults, when: str) -> None:
    created = create()
    faults.fail("UpdateItem", 1, when=when)  # type: ignore[arg-type]
    status, _ = rename(created["id"], "after")
    assert status >= 500
    status, updated = rename(created["id"], "after")
    assert status == 200 and updated["name"] == "after"
    current = EndpointStore().read(created["id"])
    assert current is not None and current.record.object["name"] == "after"
    assert current.record.state == {"generation": 1}
