"""OpenAI's Webhook Endpoints API, per key: only the owning key (or the master key) sees an
endpoint, and an event reaches only the endpoints of its batch's owner."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.errors import InvalidRequestError, NotFoundError, ServiceUnavailableError
from gateway.formats.ids import new_id, shown_id
from gateway.http.auth import Caller
from gateway.models.common import ListPage
from gateway.models.webhooks import (
    SERVED_EVENT_TYPES,
    CreateWebhookEndpointRequest,
    DeletedWebhookEndpoint,
    RotateSecretRequest,
    UpdateWebhookEndpointRequest,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointTestResult,
    WebhookEndpointWithSecret,
    WebhookEventTypeList,
    WebhookTestRequest,
)
from gateway.observability import logger
from gateway.runtime import secret_store
from gateway.runtime.settings import get_settings
from gateway.service.listing import ListRequest, page_records
from gateway.service.ownership import owned_record
from gateway.storage.id_map import NO_PROVIDER, IdMap, Kind, ObjectRecord, PageQuery
from gateway.storage.webhook_endpoints import EndpointStore
from gateway.webhooks import delivery, events
from gateway.webhooks.destinations import check_destination
from gateway.webhooks.signing import secret_hint, signing_secret

KIND: Kind = "webhook_endpoint"
# Lost races re-read and re-apply (update vs rotate_secret); past this many, a 503 to retry.
_CHANGE_ATTEMPTS = 5


def event_types() -> WebhookEventTypeList:
    return WebhookEventTypeList(data=list(SERVED_EVENT_TYPES))


def create(
    caller: Caller, request: CreateWebhookEndpointRequest, id_map: IdMap | None = None
) -> WebhookEndpointWithSecret:
    id_map = id_map or IdMap()
    check_destination(
        request.url,
        allow_loopback=get_settings().webhooks_allow_loopback,
        test_host=get_settings().webhooks_test_host,
    )
    now = int(time.time())
    endpoint_id = new_id(KIND)
    secret = signing_secret(secret_store.key_pepper(), endpoint_id, 1)
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        created_at=now,
        updated_at=now,
        name=request.name,
        url=request.url,
        event_types=_served(request.event_types),
        signing_secret_hint=secret_hint(secret),
    )
    id_map.put(
        ObjectRecord(
            id=endpoint_id,
            kind=KIND,
            owner=caller.key_id,
            provider=NO_PROVIDER,
            created_at=now,
            object=endpoint.model_dump(mode="json"),
            state={"generation": 1},
        ),
        reverse=False,
    )
    return WebhookEndpointWithSecret(**endpoint.model_dump(), signing_secret=secret)


def retrieve(caller: Caller, endpoint_id: str, id_map: IdMap | None = None) -> WebhookEndpoint:
    return WebhookEndpoint.model_validate(owned_record(id_map or IdMap(), caller, endpoint_id, KIND).object)


def update(
    caller: Caller, endpoint_id: str, request: UpdateWebhookEndpointRequest, id_map: IdMap | None = None
) -> WebhookEndpoint:
    id_map = id_map or IdMap()
    owned_record(id_map, caller, endpoint_id, KIND)
    changes: dict[str, Any] = request.model_dump(exclude_none=True)
    if "url" in changes:
        check_destination(
            changes["url"],
            allow_loopback=get_settings().webhooks_allow_loopback,
            test_host=get_settings().webhooks_test_host,
        )
    if "event_types" in changes:
        changes["event_types"] = _served(changes["event_types"])

    def apply(record: ObjectRecord) -> bool:
        changed = {name: value for name, value in changes.items() if record.object.get(name) != value}
        if changed:
            record.object = {**record.object, **changed, "updated_at": int(time.time())}
        return bool(changed)

    return WebhookEndpoint.model_validate(_change(id_map, endpoint_id, apply).object)


def list_endpoints(
    caller: Caller, request: ListRequest, id_map: IdMap | None = None
) -> ListPage[WebhookEndpoint]:
    records, has_more = page_records(id_map or IdMap(), caller, KIND, request)
    return ListPage[WebhookEndpoint].of([WebhookEndpoint.model_validate(r.object) for r in records], has_more)


def delete(caller: Caller, endpoint_id: str, id_map: IdMap | None = None) -> DeletedWebhookEndpoint:
    id_map = id_map or IdMap()
    id_map.delete(owned_record(id_map, caller, endpoint_id, KIND))
    return DeletedWebhookEndpoint(id=endpoint_id)


def rotate_secret(
    caller: Caller, endpoint_id: str, request: RotateSecretRequest, id_map: IdMap | None = None
) -> WebhookEndpointWithSecret:
    id_map = id_map or IdMap()
    owned_record(id_map, caller, endpoint_id, KIND)

    def apply(record: ObjectRecord) -> bool:
        now = int(time.time())
        old = int(record.state.get("generation", 1))
        state: dict[str, Any] = {"generation": old + 1}
        if request.keep_old_secret_active_for_24_hours:
            state.update(previous_generation=old, previous_valid_until=now + delivery.GRACE_SECONDS)
        record.state = state
        hint = secret_hint(signing_secret(secret_store.key_pepper(), endpoint_id, old + 1))
        record.object = {**record.object, "signing_secret_hint": hint, "updated_at": now}
        return True

    record = _change(id_map, endpoint_id, apply)
    secret = signing_secret(secret_store.key_pepper(), endpoint_id, int(record.state["generation"]))
    return WebhookEndpointWithSecret(**record.object, signing_secret=secret)


def _change(id_map: IdMap, endpoint_id: str, apply: Callable[[ObjectRecord], bool]) -> ObjectRecord:
    """Reads the endpoint, `apply`s a change to it (False: nothing to change) and writes it if no
    other request wrote it since the read; else reads the newer endpoint and applies again, so
    neither of two racing changes undoes the other."""
    store = EndpointStore(id_map.table)
    for _ in range(_CHANGE_ATTEMPTS):
        current = store.read(endpoint_id)
        if current is None:  # deleted meanwhile
            raise NotFoundError(f"No such WebhookEndpoint object: {shown_id(endpoint_id)}", param="id")
        if not apply(current.record) or store.save(current):
            return current.record
        logger.info("webhook endpoint changed concurrently; applying again", extra={"id": endpoint_id})
    raise ServiceUnavailableError("The webhook endpoint is being changed by other requests; retry shortly.")


def test(
    caller: Caller, endpoint_id: str, request: WebhookTestRequest, id_map: IdMap | None = None
) -> WebhookEndpointTestResult:
    """Sends a sample event now and answers with the receiver's status code."""
    id_map = id_map or IdMap()
    record = owned_record(id_map, caller, endpoint_id, KIND)
    event_type = _served([request.event_type], param="event_type")[0]
    sent = delivery.send(record, events.sample_event(event_type), attempt=1, id_map=id_map)
    if sent.status_code is None:
        raise InvalidRequestError(
            f"The test event could not be delivered to {record.object['url']}: {sent.error}",
            param="url",
            code="webhook_unreachable",
        )
    return WebhookEndpointTestResult(
        webhook_endpoint_id=endpoint_id, event_type=event_type, status_code=sent.status_code
    )


def deliveries(
    caller: Caller,
    endpoint_id: str,
    limit: int,
    id_map: IdMap | None = None,
    *,
    after: str | None = None,
    ascending: bool = False,
) -> ListPage[WebhookDelivery]:
    """The endpoint's delivery attempts, newest first (or oldest first), one page after the
    delivery `after` (the previous page's `last_id`)."""
    id_map = id_map or IdMap()
    owned_record(id_map, caller, endpoint_id, KIND)
    cursor = _delivery_cursor(id_map, endpoint_id, after) if after else None
    query = PageQuery(
        kind="webhook_delivery", limit=limit, owner=endpoint_id, ascending=ascending, after=cursor
    )
    records, has_more = id_map.page(query)
    return ListPage[WebhookDelivery].of([WebhookDelivery.model_validate(r.object) for r in records], has_more)


def _delivery_cursor(id_map: IdMap, endpoint_id: str, after: str) -> ObjectRecord:
    record = id_map.get(after)
    if record is not None and record.kind != "webhook_delivery":
        message = f"Invalid 'after' cursor '{shown_id(after)}': it is not a webhook delivery id."
        raise InvalidRequestError(message, param="after", code="invalid_cursor")
    if record is None or record.owner != endpoint_id:  # another endpoint's is as unknown as none
        message = f"No delivery {shown_id(after)} for webhook endpoint {endpoint_id}."
        raise NotFoundError(message, param="after")
    return record


def retry_delivery(
    caller: Caller, endpoint_id: str, delivery_id: str, id_map: IdMap | None = None
) -> WebhookDelivery:
    """Sends a delivered event again, with its original webhook-id."""
    id_map = id_map or IdMap()
    endpoint = owned_record(id_map, caller, endpoint_id, KIND)
    previous = id_map.get(delivery_id)
    if previous is None or previous.kind != "webhook_delivery" or previous.owner != endpoint_id:
        raise NotFoundError(
            f"No delivery {delivery_id} for webhook endpoint {endpoint_id}.", param="delivery_id"
        )
    attempt = int(previous.object.get("attempt", 1)) + 1
    return delivery.send(endpoint, previous.state["event"], attempt=attempt, id_map=id_map)


def _served(requested: list[str], *, param: str = "event_types") -> list[str]:
    unknown = [name for name in requested if name not in SERVED_EVENT_TYPES]
    if unknown:
        raise InvalidRequestError(
            f"Event types not served by this gateway: {', '.join(unknown)}. "
            f"Served: {', '.join(SERVED_EVENT_TYPES)}.",
            param=param,
            code="unsupported_event_type",
        )
    return list(dict.fromkeys(requested))
