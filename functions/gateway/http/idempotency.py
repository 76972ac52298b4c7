"""`Idempotency-Key` on every create, with Powertools' Idempotency utility.

The key is scoped to the caller's key id and the route, so two tenants (or two routes) never
share one. Records live in the gateway's table (`pk = idempotency#<route>#<hash>`, the table's
TTL attribute, no `kind`, so they stay out of the list indexes) for KEY_LIFETIME_SECONDS.

- same key, same request: the first successful response, replayed;
- same key, another request: 409 `idempotency_key_reused` (`x-should-retry: false`);
- same key while the first request runs: 409 `idempotency_key_in_use`, retryable;
- a first attempt that failed (any error) is not replayed: Powertools forgets it, and the retry
  runs the create again. Creates that call a provider derive their object id from the key
  (`object_id`), so the retry meets the first attempt's write-ahead record and finishes it
  (service.adoption) instead of making a second upstream object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from gateway.errors import ConflictError, InvalidRequestError, ServiceUnavailableError
from gateway.formats.ids import derived_id
from gateway.observability import logger
from gateway.runtime import resources

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from gateway.http.resolver import GatewayApp

HEADER = "Idempotency-Key"
KEY_LIFETIME_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
ITEM_PREFIX = "idempotency"

M = TypeVar("M", bound=BaseModel)

_layers: dict[str, DynamoDBPersistenceLayer] = {}


def idempotency_key_reused() -> ConflictError:
    return ConflictError(
        f"This {HEADER} was already used with a different request. Use a new key for a new request.",
        param=HEADER,
        code="idempotency_key_reused",
        headers={"x-should-retry": "false"},
    )


def _in_progress() -> ConflictError:
    return ConflictError(
        f"A request with this {HEADER} is still being processed; retry shortly.",
        param=HEADER,
        code="idempotency_key_in_use",
        headers={"x-should-retry": "true", "Retry-After": "1"},
    )


def request_key(headers: Mapping[str, str] | None) -> str | None:
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    key = (lowered.get(HEADER.lower()) or "").strip()
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidRequestError(
            f"Invalid {HEADER}: at most {MAX_KEY_LENGTH} printable ASCII characters.", param=HEADER
        )
    return key


def object_id(kind: str, seed: str | None) -> str | None:
    """The id a create makes under this key (None without a key: a random one)."""
    return derived_id(kind, seed) if seed is not None else None


def run_once(
    app: GatewayApp,
    payload: dict[str, Any],
    model: type[M],
    create: Callable[[str | None], M],
    *,
    conceal: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    reveal: Callable[[M, str], M] | None = None,
) -> M:
    """`create(seed)` once per caller, route and Idempotency-Key; `seed` is None without a key.

    `payload` is what makes two requests the same (the validated body, the path's ids, the
    provider chosen): not the raw bytes, whose multipart boundary differs on every send.
    `conceal` drops what must not be stored (a new key's secret) from the stored response,
    and `reveal(replayed, seed)` puts it back on a replay."""
    key = request_key(app.resolver.current_event.headers)
    if key is None:
        return create(None)
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.custom_dict import CustomDictSerializer

    route = app.route.name
    seed = f"{app.caller.key_id}\0{route}\0{key}"
    config = IdempotencyConfig(
        event_key_jmespath="scope",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=KEY_LIFETIME_SECONDS,
        hash_function="sha256",
        # an attempt cut off by the function's timeout stops blocking its key when the function ends
        lambda_context=getattr(app.resolver, "lambda_context", None),
    )

    def first_time(data: dict[str, Any]) -> M:
        return create(seed)

    def stored(response: M) -> dict[str, Any]:
        dumped = response.model_dump(mode="json")
        return conceal(dumped) if conceal is not None else dumped

    def replayed(stored_response: dict[str, Any]) -> M:
        response = model.model_validate(stored_response)
        return reveal(response, seed) if reveal is not None else response

    guarded = idempotent_function(
        first_time,
        data_keyword_argument="data",
        persistence_store=_layer(route),
        config=config,
        output_serializer=CustomDictSerializer(to_dict=stored, from_dict=replayed),
        key_prefix=f"{ITEM_PREFIX}#{route}",
    )
    try:
        response = guarded(data={"scope": seed, "request": payload})
    except IdempotencyValidationError:
        raise idempotency_key_reused() from None
    except IdempotencyAlreadyInProgressError:
        raise _in_progress() from None
    except IdempotencyPersistenceLayerError:
        logger.exception("idempotency record could not be read or written", extra={"route": route})
        raise ServiceUnavailableError(
            f"The gateway could not record this {HEADER}; retry the request with the same key."
        ) from None
    return cast(M, response)


def _layer(route: str) -> DynamoDBPersistenceLayer:
    """One persistence layer per route, made on first use (no cost at cold start), on the
    gateway's own DynamoDB client."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from gateway.runtime.settings import get_settings
    from gateway.storage.dynamo import dynamodb_client

    client = dynamodb_client()
    layer = _layers.get(route)
    if layer is None or layer.client is not client or layer.table_name != get_settings().table_name:
        layer = DynamoDBPersistenceLayer(
            table_name=get_settings().table_name,
            key_attr=resources.TABLE_PARTITION_KEY,
            expiry_attr=resources.TABLE_TTL_ATTRIBUTE,
            boto3_client=client,
        )
        _layers[route] = layer
    return layer
