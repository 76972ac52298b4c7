"""Lambda SnapStart runtime hooks, for the `snapstart` option of cdk.json (off by default).

With SnapStart Lambda runs a function's init phase once per published version, snapshots the
environment and restores copies of it at cold starts. Before the snapshot a route function
creates what its first request would (its wire models' validators, settings, its AWS clients,
its provider clients with their TLS context) and reads the master key and the key pepper
once, which loads botocore's whole request path: a restored environment starts warm. After
every restore it forgets what no two copies of the snapshot may share: `random`'s state, the
secret values read before the snapshot (a restore may come days later, after a rotation) and
the provider clients with their connection pools (sockets of the machine that took the
snapshot). boto3's clients reconnect by themselves.

The hooks are registered only when Lambda initializes a function for a snapshot
(AWS_LAMBDA_INITIALIZATION_TYPE=snap-start); the Python runtimes provide `snapshot_restore_py`.
"""

from __future__ import annotations

import os
import random

from gateway import routes

INITIALIZATION_TYPE_ENV = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAPSHOT_INITIALIZATION = "snap-start"


def register_hooks(route: routes.Route) -> bool:
    """Register the hooks when this init phase ends in a snapshot; whether it does."""
    if os.environ.get(INITIALIZATION_TYPE_ENV) != SNAPSHOT_INITIALIZATION:
        return False
    from snapshot_restore_py import (  # type: ignore[import-not-found]  # Lambda's runtime has it
        register_after_restore,
        register_before_snapshot,
    )

    register_before_snapshot(prime, route)
    register_after_restore(forget_unique_state)
    return True


def prime(route: routes.Route) -> None:
    """Before the snapshot: what the route's first request would create."""
    from gateway.runtime.settings import get_settings

    build_models()
    get_settings()
    grants = route.grants
    if any(grant.startswith("table:") for grant in grants):
        from gateway.storage.dynamo import dynamodb_client

        dynamodb_client()
    if route.authenticated:
        from gateway.runtime import secret_store

        secret_store.master_key()
        secret_store.key_pepper()
    if any(grant.startswith(("bucket:", "kept:")) for grant in grants):
        from gateway.storage.s3 import s3_client

        s3_client()
    if routes.SECRET_PROVIDER_KEYS in grants:
        from gateway.providers.registry import client_for, provider_names

        for name in provider_names():
            client_for(name)


def build_models() -> None:
    """Build the wire models this function loaded, deferred until first use otherwise."""
    from gateway.models.common import GatewayModel

    pending: list[type[GatewayModel]] = [GatewayModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_complete__:
            model.model_rebuild()


def forget_unique_state() -> None:
    """After each restore: a fresh seed, no secret value and no connection from the snapshot."""
    random.seed()  # from os.urandom, which Lambda reseeds at restore
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()  # the clients stay: only the values are read again
    from gateway.providers import registry

    registry.reset_clients()  # closes the httpx clients and their pools; the TLS context stays
