"""Delivery retries: the schedule, the give-up after the retry window, a deleted endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.models.webhooks import WebhookDelivery
from gateway.runtime.settings import get_settings
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks import delivery, dispatch, queue
from gateway.webhooks.queue import DeliveryJob

pytestmark = pytest.mark.usefixtures("aws")

EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "batch.completed",
    "created_at": 1,
    "data": {"id": "batch_1"},
}


@pytest.fixture
def sent() -> Iterator[list[tuple[str, DeliveryJob, float]]]:
    queued: list[tuple[str, DeliveryJob, float]] = []
    queue.use_local_queue(
        lambda name, body, delay: queued.append((name, DeliveryJob.model_validate_json(body), delay))
    )
    yield queued
    queue.use_local_queue(None)


@pytest.fixture
def failing_receiver(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    attempts: list[int] = []

    def fail(
        endpoint: ObjectRecord, event: dict[str, Any], attempt: int, id_map: IdMap | None = None
    ) -> WebhookDelivery:
        attempts.append(attempt)
        return WebhookDelivery(
            id="whdl_x",
            webhook_endpoint_id=endpoint.id,
            event_id=event["id"],
            event_type=event["type"],
            attempt=attempt,
            created_at=0,
            status_code=500,
            success=False,
        )

    monkeypatch.setattr(delivery, "send", fail)
    return attempts


def endpoint(owner: str = "key_a", types: tuple[str, ...] = ("batch.completed",)) -> ObjectRecord:
    record = ObjectRecord(
        id=f"we_{owner}_{len(types)}",
        kind="webhook_endpoint",
        owner=owner,
        provider=NO_PROVIDER,
        created_at=1,
        object={"url": "https://8.8.8.8/h", "event_types": list(types)},
        state={"generation": 1},
    )
    IdMap().put(record, reverse=False)
    return record


def test_publish_queues_only_the_owners_endpoints_that_listed_the_type(sent: list[Any]) -> None:
    wanted = endpoint("key_a")
    endpoint("key_a", ("batch.failed", "batch.expired"))
    endpoint("key_b")
    assert dispatch.publish("key_a", EVENT) == 1
    assert [(name, job.endpoint_id, job.attempt) for name, job, _ in sent] == [("deliveries", wanted.id, 1)]


def test_a_failed_attempt_is_queued_again_after_the_schedules_gap(
    sent: list[Any], failing_receiver: list[int]
) -> None:
    record = endpoint()
    schedule = get_settings().webhook_retry_schedule
    job = DeliveryJob(endpoint_id=record.id, event=EVENT, first_attempt_at=time.time())
    for attempt in range(1, len(schedule) + 3):
        dispatch.run(job)
        name, job, delay = sent[-1]
        assert (name, job.attempt) == ("deliveries", attempt + 1)
        assert delay == schedule[min(attempt - 1, len(schedule) - 1)]  # the last gap repeats
        job = job.model_copy(update={"not_before": 0.0})
    assert failing_receiver == list(range(1, len(schedule) + 3))


def test_a_job_not_yet_due_waits_without_an_attempt(sent: list[Any], failing_receiver: list[int]) -> None:
    record = endpoint()
    dispatch.run(
        DeliveryJob(
            endpoint_id=record.id, event=EVENT, first_attempt_at=time.time(), not_before=time.time() + 3600
        )
    )
    assert failing_receiver == [] and sent[-1][0] == "deliveries" and 3590 < sent[-1][2] <= 3600


def test_after_the_retry_window_the_job_goes_to_the_dead_letter_queue(
    sent: list[Any], failing_receiver: list[int]
) -> None:
    record = endpoint()
    window = get_settings().webhook_retry_hours * 3600
    dispatch.run(
        DeliveryJob(endpoint_id=record.id, event=EVENT, attempt=9, first_attempt_at=time.time() - window - 1)
    )
    assert failing_receiver == [9] and [(name, job.attempt) for name, job, _ in sent] == [("dead", 9)]


def test_an_event_for_a_deleted_endpoint_is_dropped(sent: list[Any], failing_receiver: list[int]) -> None:
    dispatch.run(DeliveryJob(endpoint_id="we_gone", event=EVENT, first_attempt_at=time.time()))
    assert failing_receiver == [] and sent == []
