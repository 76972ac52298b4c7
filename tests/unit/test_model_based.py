"""A model-based test of the books (issue 21 C): two tenants doing random things against moto
(in process) and an in-memory provider on an explicit clock, with AWS and provider faults at
any step; after every step the invariants of gateway.service.books hold and neither tenant saw
the other's ids.

Invariants that hold at every step: budgets balance (spend, holds, headroom, every started
batch held), every pending record is watched, one gateway id per provider object, of its
owner. Invariants that hold within one pass: after a watcher pass no fault touched, no batch
stays finished and unsettled that was so after the previous such pass, and no event older
than the outbox grace stays in the outbox; and a `converge` step (faults disarmed, the clock
past a create's give-up, two passes) leaves every invariant holding.

Bounded for `make test` (MODEL_EXAMPLES examples of MODEL_STEPS steps, derandomized, no example
database, no shrinking); `make soak` raises both and shrinks what fails (MODEL_SHRINK=1).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from gateway.errors import GatewayError, NotFoundError
from gateway.formats.ids import derived_id
from gateway.http import auth
from gateway.http.auth import Caller
from gateway.models.batches import CreateBatchRequest
from gateway.models.webhooks import (
    CreateWebhookEndpointRequest,
    RotateSecretRequest,
    UpdateWebhookEndpointRequest,
)
from gateway.providers import registry
from gateway.providers.caps import BatchCaps, default_caps
from gateway.runtime import resources
from gateway.runtime.settings import reset_settings
from gateway.service import batch_events, batches, books, translate, watcher, webhook_endpoints
from gateway.service.deadline import Deadline
from gateway.service.listing import ListRequest
from gateway.storage.budgets import BudgetStore
from gateway.storage.dynamo import dynamodb_client
from gateway.storage.id_map import IdMap, ObjectRecord
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from moto import mock_aws

from devserver import aws as local_aws
from tests import books_check
from tests.unit.fault_injection.faults import WRITES, DynamoFaults

MAX_EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "35"))
STEPS = int(os.environ.get("MODEL_STEPS", "25"))
# Shrinking a failing run of this machine takes minutes: `make soak` shrinks, `make test` reports
# the sequence as found.
SHRINK = os.environ.get("MODEL_SHRINK", "") not in ("", "0")
TENANTS = ("key-a", "key-b")
START = 1_800_000_000.0
# Invariants that must hold between any two steps (the others: within a pass, see below).
AT_EVERY_STEP = frozenset(books.INVARIANTS) - {"unsettled_finished", "stale_outbox"}
OUTPUT_LINE = {
    "custom_id": "r1",
    "response": {
        "status_code": 200,
        "body": {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}},
    },
}


class ProviderDown(ConnectionError):
    pass


class _Content:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_bytes(self, _chunk: int | None = None) -> Iterator[bytes]:
        yield self.data


class ModelProvider:
    """OpenAI's batch endpoints in memory, on the test's clock: a batch moves only when the
    test moves it. `fail_next`: the next call fails as an unreachable provider does;
    `lose_next_create`: the next create happens and its answer is lost."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.fail_next = self.lose_next_create = self.fired = False
        self._ids = itertools.count(1)

    def close(self) -> None:
        pass

    def _enter(self) -> None:
        if self.fail_next:
            self.fail_next, self.fired = False, True
            raise ProviderDown("provider unreachable")

    def batch_caps(self, model: str) -> BatchCaps:
        return default_caps("openai", model)  # OpenAI's documented caps, as its adapter's

    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        self._enter()
        upstream_id = f"batch_up{next(self._ids)}"
        self.batches[upstream_id] = {
            "id": upstream_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": int(self.clock[0]),
            "metadata": body.get("metadata"),
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": 1, "completed": 0, "failed": 0},
        }
        if self.lose_next_create:
            self.lose_next_create, self.fired = False, True
            raise TimeoutError("the create's answer was lost")
        return copy.deepcopy(self.batches[upstream_id])

    def retrieve_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter()
        return copy.deepcopy(self.batches[upstream_id])

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        self._enter()
        newest = sorted(self.batches.values(), key=lambda b: (-b["created_at"], b["id"]))
        after = query.get("after")
        if after is not None:
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit") or 20)
        return {"object": "list", "data": copy.deepcopy(newest[:limit]), "has_more": len(newest) > limit}

    def cancel_batch(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter()
        batch = self.batches[upstream_id]
        if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            batch["status"] = "cancelling"
        return copy.deepcopy(batch)

    def retrieve_file(self, upstream_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self._enter()
        return copy.deepcopy(self.files[upstream_id])

    @contextmanager
    def stream_file_content(self, upstream_id: str) -> Iterator[_Content]:
        self._enter()
        yield _Content(self.files[upstream_id]["content"])

    def move(self, upstream_id: str, outcome: str) -> None:
        """The provider's own step: start, finish (with an output file), fail, expire, end a cancel."""
        batch = self.batches[upstream_id]
        now = int(self.clock[0])
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        if batch["status"] == "cancelling":
            outcome = "cancelled"
        batch["status"] = outcome
        batch[f"{outcome}_at"] = now
        if outcome == "completed":
            file_id = f"file-out-{upstream_id}"
            content = (json.dumps(OUTPUT_LINE) + "\n").encode()
            self.files[file_id] = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": now,
                "filename": "output.jsonl",
                "purpose": "batch_output",
                "status": "processed",
                "content": content,
            }
            batch["output_file_id"] = file_id
            batch["request_counts"] = {"total": 1, "completed": 1, "failed": 0}


EXPECTED = (GatewayError, ClientError, BotoCoreError, ConnectionError, TimeoutError)


class BooksMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.patch = pytest.MonkeyPatch()
        self.clock = [START]
        self.patch.setattr(time, "time", lambda: self.clock[0])
        self.patch.setattr(time, "time_ns", lambda: int(self.clock[0] * 1_000_000_000))
        # gateway ids from a counter: a replay of a sequence meets the same ids in the same order
        numbers = itertools.count(1)
        for module in (batches, translate, webhook_endpoints):
            self.patch.setattr(module, "new_id", lambda kind: derived_id(kind, f"model-{next(numbers)}"))
        self.aws = mock_aws()
        self._start_aws()
        self.provider = ModelProvider(self.clock)
        registry._clients["openai"] = self.provider  # type: ignore[assignment]
        self.faults = DynamoFaults(dynamodb_client())
        self.published: list[str] = []
        self.patch.setattr(batch_events.event_bus, "put_event", lambda kind, detail: None)
        self.patch.setattr(
            batch_events.dispatch,
            "publish",
            lambda owner, event, id_map=None: self.published.append(event["id"]),
        )
        self.patch.setattr(
            webhook_endpoints, "check_destination", lambda url, allow_loopback=False, test_host=None: None
        )
        self.files = itertools.count(1)
        self.unsettled_after_pass: set[str] | None = None
        # ids in the order they first appeared: what a rule draws from is the same on a replay
        # (gateway ids are random, so the table's own order is not)
        self.known: dict[str, list[str]] = {}

    def _start_aws(self) -> None:
        self.patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        self.patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        self.patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        self.patch.delenv("AWS_ENDPOINT_URL", raising=False)
        self.patch.setenv(
            resources.ENV_PROVIDERS,
            json.dumps({"openai": {"type": "openai", "api_base": "http://127.0.0.1:9/v1"}}),
        )
        reset_settings()
        registry.reset_clients()
        auth.clear_key_cache()
        dynamodb_client.cache_clear()
        self.aws.start()
        local_aws.ensure_table(boto3.client("dynamodb"))
        secrets = boto3.client("secretsmanager")
        local_aws.ensure_secret(secrets, resources.DEFAULT_MASTER_KEY_SECRET, "sk-model-master")
        local_aws.ensure_secret(secrets, resources.DEFAULT_KEY_PEPPER_SECRET, "pepper")
        local_aws.ensure_secret(secrets, resources.DEFAULT_PROVIDER_KEYS_SECRET, "{}")
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()

    def teardown(self) -> None:
        registry.reset_clients()
        self.aws.stop()
        dynamodb_client.cache_clear()
        self.patch.undo()
        reset_settings()

    # What the table holds ----------------------------------------------------------------------
    def _records(self, kind: str) -> list[ObjectRecord]:
        found = books.Books()
        for item in books.books_queries.every_item(IdMap().table):
            found.add(item)
        by_id = {r.id: r for r in found.records.values() if r.kind == kind}
        known = self.known.setdefault(kind, [])
        known.extend(sorted(set(by_id) - set(known)))
        return [by_id[record_id] for record_id in known if record_id in by_id]

    def _attempt(self, call: Any, *args: Any) -> Any:
        """One operation; what a fault or a refusal makes it raise is an answer, not a failure."""
        try:
            return call(*args)
        except EXPECTED:
            return None

    # Tenants -------------------------------------------------------------------------------------
    @initialize()
    def budgets(self) -> None:
        for tenant in TENANTS:
            BudgetStore().configure(tenant, Decimal(100), None)

    def upload(self, tenant: str) -> ObjectRecord | None:
        """A finished upload of a checked batch input file (its provider file included)."""
        number = next(self.files)
        file_id, upstream_id = f"file-{tenant}-{number}", f"file-up-{tenant}-{number}"
        self.provider.files[upstream_id] = {"id": upstream_id, "object": "file", "status": "processed"}
        obj = {"id": file_id, "object": "file", "bytes": 100, "created_at": int(self.clock[0])}
        obj |= {"filename": "in.jsonl", "purpose": "batch", "status": "processed"}
        check = {"model": "gpt-4o-mini", "input_token_estimate": 2000, "output_token_limit": 1000}
        record = ObjectRecord(
            id=file_id,
            kind="file",
            owner=tenant,
            provider="openai",
            created_at=int(self.clock[0]),
            object=obj,
            upstream_id=upstream_id,
            purpose="batch",
            state={"batch_check": check},
        )
        self._attempt(IdMap().put, record)
        return IdMap().get(file_id)

    @rule(tenant=st.sampled_from(TENANTS), data=st.data(), provider=st.sampled_from(["up", "down", "lost"]))
    def create(self, tenant: str, data: st.DataObject, provider: str) -> None:
        """A batch on a new upload of the tenant's, or on any file in the table (the other
        tenant's included: that one must be refused as not found); the provider up, down, or
        making the batch and losing its answer."""
        self.provider.fail_next = provider == "down"
        self.provider.lose_next_create = provider == "lost"
        chosen = data.draw(st.sampled_from([None, *self._records("file")]))
        chosen = chosen or self.upload(tenant)
        if chosen is None:
            return
        request = CreateBatchRequest(
            input_file_id=chosen.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        try:
            batch = batches.create_batch(Caller(key_id=tenant), None, request)
        except NotFoundError:
            assert chosen.owner != tenant, "a tenant's own file was not found"
            return
        except EXPECTED:
            return
        assert chosen.owner == tenant, f"{tenant} started a batch on another tenant's file {chosen.id}"
        assert batch.input_file_id == chosen.id
        event("batch created")

    @rule(tenant=st.sampled_from(TENANTS), data=st.data(), cancel=st.booleans())
    def retrieve_or_cancel(self, tenant: str, data: st.DataObject, cancel: bool) -> None:
        records = self._records("batch")
        if not records:
            return
        chosen = data.draw(st.sampled_from(records))
        call = batches.cancel_batch if cancel else batches.retrieve_batch
        try:
            batch = call(Caller(key_id=tenant), chosen.id)
        except NotFoundError:
            assert chosen.owner != tenant, f"{tenant}'s own batch {chosen.id} was not found"
            return
        except EXPECTED:
            return
        assert chosen.owner == tenant, f"{tenant} reached another tenant's batch {chosen.id}"
        assert batch.id == chosen.id
        event(f"batch {'cancelled' if cancel else 'retrieved'}: {batch.status}")

    @rule(tenant=st.sampled_from(TENANTS))
    def list_batches(self, tenant: str) -> None:
        page = self._attempt(batches.list_batches, Caller(key_id=tenant), ListRequest(limit=100))
        if page is None:
            return
        owners = {record.id: record.owner for record in self._records("batch")}
        seen = {batch.id for batch in page.data}
        assert all(owners.get(batch_id) == tenant for batch_id in seen), f"{tenant} listed {seen}"

    @rule(tenant=st.sampled_from(TENANTS), amount=st.sampled_from([None, "0.001", "1", "100"]))
    def budget_update(self, tenant: str, amount: str | None) -> None:
        self._attempt(BudgetStore().configure, tenant, Decimal(amount) if amount else None, None)

    @rule(
        tenant=st.sampled_from(TENANTS),
        data=st.data(),
        action=st.sampled_from(["create", "update", "rotate"]),
    )
    def webhook(self, tenant: str, data: st.DataObject, action: str) -> None:
        caller = Caller(key_id=tenant)
        if action == "create":
            request = CreateWebhookEndpointRequest(
                url="https://hooks.example.com/in", name=tenant, event_types=["batch.completed"]
            )
            self._attempt(webhook_endpoints.create, caller, request)
            return
        endpoints = self._records("webhook_endpoint")
        if not endpoints:
            return
        chosen = data.draw(st.sampled_from(endpoints))
        try:
            if action == "update":
                webhook_endpoints.update(caller, chosen.id, UpdateWebhookEndpointRequest(name=f"{tenant}-2"))
            else:
                webhook_endpoints.rotate_secret(caller, chosen.id, RotateSecretRequest())
        except NotFoundError:
            assert chosen.owner != tenant, f"{tenant}'s own endpoint {chosen.id} was not found"
            return
        except EXPECTED:
            return
        assert chosen.owner == tenant, f"{tenant} changed another tenant's endpoint {chosen.id}"

    # The provider, the clock, faults -------------------------------------------------------------
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["in_progress", "completed", "completed", "failed", "expired"]),
    )
    def provider_moves(self, data: st.DataObject, outcome: str) -> None:
        if self.provider.batches:
            self.provider.move(data.draw(st.sampled_from(sorted(self.provider.batches))), outcome)

    @rule(seconds=st.sampled_from([1, 15, 120, 700]))
    def time_passes(self, seconds: int) -> None:
        self.clock[0] += seconds

    @rule(
        operation=st.sampled_from(sorted(WRITES)),
        nth=st.integers(1, 3),
        when=st.sampled_from(["before", "after"]),
    )
    def aws_fault(self, operation: str, nth: int, when: str) -> None:
        """The nth write of that kind from now fails: throttled (`before`), or done and its answer
        lost (`after`: the function dies between that write and its next)."""
        self.faults.fail(operation, nth, when)  # type: ignore[arg-type]

    @rule(lose_create=st.booleans())
    def provider_fault(self, lose_create: bool) -> None:
        if lose_create:
            self.provider.lose_next_create = True
        else:
            self.provider.fail_next = True

    @rule()
    def watcher_pass(self) -> None:
        self.faults.fired = self.provider.fired = False
        report = watcher.run_pass(Deadline.after(60))
        if self.faults.fired or self.provider.fired or report.errors:
            return  # a pass a fault touched converges nothing for sure: the next one does
        found = books.Books()
        for item in books.books_queries.every_item(IdMap().table):
            found.add(item)
        unsettled = set(books.unsettled_finished(found, float("inf"), grace=0))
        if self.unsettled_after_pass is not None:
            left = sorted(unsettled & self.unsettled_after_pass)
            assert not left, f"finished batches still unsettled after two clean passes: {left}"
        self.unsettled_after_pass = unsettled
        stale = books.stale_outbox(found, self.clock[0], grace=watcher.OUTBOX_GRACE_SECONDS)
        assert not stale, f"events left in the outbox after a clean pass: {stale}"

    @rule()
    def converge(self) -> None:
        """Faults disarmed, the clock past a create's give-up, two watcher passes: then every
        invariant holds, those of a pass included (what tests/books_check.py asserts after a test)."""
        self.faults.fired = True
        self.provider.fail_next = self.provider.lose_next_create = False
        self.clock[0] += books_check.FORWARD_SECONDS
        for _ in range(2):
            watcher.run_pass(Deadline.after(60))
        found = books.audit(now=self.clock[0])
        assert not found, books.describe(found)
        self.unsettled_after_pass = set()

    # After every step ----------------------------------------------------------------------------
    @invariant()
    def books_balance(self) -> None:
        found = {name: ids for name, ids in books.audit(now=self.clock[0]).items() if name in AT_EVERY_STEP}
        assert not found, books.describe(found)


BooksMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_books_under_random_operations = BooksMachine.TestCase
