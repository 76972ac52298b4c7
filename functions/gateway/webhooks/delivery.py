"""One delivery attempt: sign the event, POST it, remember how it went.

A 2xx acknowledges; a redirect is not followed; 10 s timeout. The destination is checked
again here, so a name that starts resolving into a private network is never called, and the
request goes to the address that check approved: the URL's host is replaced by that address,
while TLS SNI, the certificate check and the Host header keep the name (DNS rebinding between
the check and the connection reaches nothing new).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from gateway.formats.ids import new_id
from gateway.models.webhooks import WebhookDelivery
from gateway.observability import logger, metric_names, tracing
from gateway.observability.metrics import emit
from gateway.runtime import secret_store
from gateway.runtime.settings import get_settings
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks.destinations import PinnedDestination, UnsafeDestinationError, pinned_destination
from gateway.webhooks.signing import signed_headers, signing_secret

if TYPE_CHECKING:
    import httpx

DELIVERY_TIMEOUT_SECONDS = 10.0
KEEP_DELIVERIES_SECONDS = 30 * 86400
GRACE_SECONDS = 24 * 3600


def current_secrets(endpoint: ObjectRecord, now: int) -> list[str]:
    """The secret of the endpoint's generation, and the previous one while its grace period lasts."""
    root = secret_store.key_pepper()
    state = endpoint.state
    secrets = [signing_secret(root, endpoint.id, int(state.get("generation", 1)))]
    previous, until = state.get("previous_generation"), state.get("previous_valid_until")
    if previous is not None and until is not None and now < int(until):
        secrets.append(signing_secret(root, endpoint.id, int(previous)))
    return secrets


def send(
    endpoint: ObjectRecord,
    event: dict[str, Any],
    attempt: int,
    id_map: IdMap | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> WebhookDelivery:
    """Delivers `event` once to `endpoint` and records the attempt (`transport`: tests only)."""
    import httpx  # only the functions that deliver pay for it

    tracing.about(endpoint.id)
    now = int(time.time())
    body = json.dumps(event, separators=(",", ":")).encode()
    url = str(endpoint.object["url"])
    status_code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        destination = pinned_destination(
            url,
            allow_loopback=get_settings().webhooks_allow_loopback,
            test_host=get_settings().webhooks_test_host,
        )
        headers = signed_headers(current_secrets(endpoint, now), str(event["id"]), now, body)
        with httpx.Client(
            timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False, transport=transport
        ) as client:
            status_code = client.send(pinned_request(client, destination, body, headers)).status_code
    except UnsafeDestinationError as exc:
        error = exc.message
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: the endpoint could not be reached"
    latency_ms = int((time.perf_counter() - started) * 1000)
    emit(metric_names.WEBHOOK_LATENCY, latency_ms)
    delivery = WebhookDelivery(
        id=new_id("webhook_delivery"),
        webhook_endpoint_id=endpoint.id,
        event_id=str(event["id"]),
        event_type=str(event["type"]),
        attempt=attempt,
        created_at=now,
        status_code=status_code,
        latency_ms=latency_ms,
        success=status_code is not None and 200 <= status_code < 300,
        error=error,
    )
    (id_map or IdMap()).put(
        ObjectRecord(
            id=delivery.id,
            kind="webhook_delivery",
            owner=endpoint.id,  # listed per endpoint through the by_owner index
            provider=NO_PROVIDER,
            created_at=now,
            object=delivery.model_dump(mode="json"),
            state={"event": event},
            ttl=now + KEEP_DELIVERIES_SECONDS,
        ),
        reverse=False,
    )
    logger.info(
        "webhook delivery",
        extra={"endpoint_id": endpoint.id, "event_id": delivery.event_id, "status_code": status_code},
    )
    return delivery


def pinned_request(
    client: httpx.Client, destination: PinnedDestination, body: bytes, headers: dict[str, str]
) -> httpx.Request:
    """A POST to the destination's checked address, speaking to its name (SNI, Host)."""
    import httpx

    url = httpx.URL(destination.url).copy_with(host=str(destination.address))
    return client.build_request(
        "POST",
        url,
        content=body,
        headers={**headers, "Host": destination.host_header},
        extensions={"sni_hostname": destination.host},
    )
