"""service/batches.py against moto and an in-memory provider: what is sent upstream, what is
stored, which calls a list makes. (The list refresh that fails is covered with the translate
tests.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from gateway.http.auth import MASTER, Caller
from gateway.models.batches import CreateBatchRequest
from gateway.providers import registry
from gateway.providers.caps import BatchCaps, default_caps
from gateway.service import batches
from gateway.service.listing import ListRequest
from gateway.storage.id_map import IdMap, ObjectRecord

from tests.unit.conftest import store_file


class FakeBatchesApi:
    """OpenAI's batch endpoints in memory: a batch is `validating` until `advance` moves it."""

    def __init__(self, id_prefix: str = "batch_up") -> None:
        self.id_prefix = id_prefix  # providers' ids differ (OpenAI batch_<hex>, Azure batch_<uuid>)
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self._ids = itertools.count(1)

    def batch_caps(self, model: str) -> BatchCaps:
        """The documented caps of the provider type its ids are Anthropic's or OpenAI's."""
        return default_caps("anthropic" if self.id_prefix.startswith("msgbatch") else "openai", model)

    def create_batch(
        self, body: dict[str, Any], *, gateway_id: str, timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append(("create", body))
        batch_id = f"{self.id_prefix}{next(self._ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": 1_700_000_000,
            "metadata": body.get("metadata"),
            "output_file_id": None,
            "error_file_id": None,
        }
        return dict(self.batches[batch_id])

    def retrieve_batch(self, batch_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(("retrieve", batch_id))
        return dict(self.batches[batch_id])

    def list_batches(self, *, timeout: float | None = None, **query: Any) -> dict[str, Any]:
        self.calls.append(("list", query))
        newest_first = list(reversed(self.batches.values()))[: query.get("limit") or 20]
        return {"object": "list", "data": [dict(b) for b in newest_first], "has_more": False}

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        self.calls.append(("cancel", batch_id))
        self.batches[batch_id]["status"] = "cancelling"
        return dict(self.batches[batch_id])

    def advance(self, batch_id: str, status: str) -> None:
        self.batches[batch_id]["status"] = status


@pytest.fixture
def provider(aws: None) -> Iterator[FakeBatchesApi]:
    fake = FakeBatchesApi()
    registry._clients["openai"] = fake  # type: ignore[assignment]
    yield fake
    registry._clients.pop("openai", None)


def _create(caller: Caller = MASTER, file_id: str = "file-in", provider: str | None = None) -> Any:
    request = CreateBatchRequest(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"t": "1"}
    )
    return batches.create_batch(caller, provider, request)


def test_a_batch_is_created_upstream_on_the_files_upstream_id_and_stored(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    batch = _create(provider="openai")
    assert provider.calls == [
        (
            "create",
            {
                "input_file_id": "up-file-in",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                # the write-ahead tag that lets a retry find this batch (never shown to the client)
                "metadata": {"t": "1", "gateway_batch_id": batch.id},
            },
        )
    ]
    assert batch.id.startswith("batch_") and batch.input_file_id == "file-in"
    assert (batch.status, batch.created_at, batch.metadata) == ("validating", 1_700_000_000, {"t": "1"})
    stored = IdMap().get(batch.id)
    assert stored is not None
    assert (stored.kind, stored.owner, stored.provider, stored.upstream_id) == (
        "batch",
        "master",
        "openai",
        "batch_up1",
    )
    assert stored.state["input_file_id"] == "file-in" and "pending" not in stored.state
    assert stored.object == batch.model_dump(mode="json")
    # lists are ordered by when the gateway wrote the batch ahead; the object keeps the provider's time
    assert stored.object["created_at"] == 1_700_000_000 and stored.created_at >= stored.object["created_at"]
    assert IdMap().gateway_id_for("openai", "batch_up1") == batch.id


def _store_unready_file(file_id: str, *, status: str, upstream_id: str | None, state: dict[str, Any]) -> None:
    IdMap().put(
        ObjectRecord(
            id=file_id,
            kind="file",
            owner="master",
            provider="openai",
            created_at=1000,
            object={"id": file_id, "status": status, "status_details": "bad line 3"},
            upstream_id=upstream_id,
            state=state,
        )
    )


@pytest.mark.parametrize(
    ("status", "upstream_id", "state", "error", "code"),
    [
        ("error", None, {}, InvalidRequestError, "file_error"),
        ("uploaded", None, {}, ConflictError, "file_not_ready"),  # the transfer has not started
        ("uploaded", "up-f", {"transfer": {"parts": 1}}, ConflictError, "file_not_ready"),  # not finished
    ],
)
def test_a_batch_on_a_file_not_at_its_provider_yet_is_refused_before_any_call(
    provider: FakeBatchesApi,
    status: str,
    upstream_id: str | None,
    state: dict[str, Any],
    error: type,
    code: str,
) -> None:
    _store_unready_file("file-unready", status=status, upstream_id=upstream_id, state=state)
    with pytest.raises(error) as refused:
        _create(file_id="file-unready")
    assert (refused.value.code, refused.value.param) == (code, "input_file_id")
    if code == "file_error":
        assert "bad line 3" in refused.value.message
    else:
        assert refused.value.message == (
            "File file-unready is still being transferred to provider 'openai'. "
            "Wait until its status is 'processed' (client.files.wait_for_processing)."
        )
    assert provider.calls == []


@pytest.mark.parametrize("status", ["error", "uploaded"])
def test_a_file_at_its_provider_goes_to_the_provider_whatever_its_status(
    provider: FakeBatchesApi, status: str
) -> None:
    # "uploaded" is what OpenAI itself answers for a fresh file; an error there is its to report.
    _store_unready_file("file-at-provider", status=status, upstream_id="up-f", state={})
    assert _create(file_id="file-at-provider").input_file_id == "file-at-provider"
    assert provider.calls[0][1]["input_file_id"] == "up-f"


def test_cancel_asks_the_provider_and_stores_its_answer(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    batch = _create()
    cancelled = batches.cancel_batch(MASTER, batch.id)
    assert provider.calls[-1] == ("cancel", "batch_up1")
    assert cancelled.id == batch.id and cancelled.status == "cancelling"
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.status == "cancelling"

    provider.calls.clear()
    with pytest.raises(NotFoundError):
        batches.cancel_batch(Caller(key_id="key_other"), batch.id)
    assert provider.calls == []


def test_retrieve_stores_the_current_status(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    batch = _create()
    provider.advance("batch_up1", "in_progress")
    retrieved = batches.retrieve_batch(MASTER, batch.id)
    assert retrieved.status == "in_progress"
    # the provider holds the gateway's tag; the client sees only its own metadata
    assert provider.batches["batch_up1"]["metadata"] == {"t": "1", "gateway_batch_id": batch.id}
    assert retrieved.metadata == {"t": "1"} and retrieved.input_file_id == "file-in"
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.status == "in_progress" and stored.object["metadata"] == {"t": "1"}


def _list(limit: int = 10) -> list[Any]:
    return list(batches.list_batches(MASTER, ListRequest(limit=limit)).data)


def test_a_list_refreshes_unfinished_batches_with_one_provider_list_call(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    first, second, done = _create(), _create(), _create()
    provider.advance("batch_up1", "in_progress")
    provider.advance("batch_up2", "finalizing")
    provider.advance("batch_up3", "completed")
    batches.retrieve_batch(MASTER, done.id)  # stored as completed: the list leaves it alone
    provider.advance("batch_up3", "expired")  # (never asked again, so never seen)

    provider.calls.clear()
    listed = {b.id: b.status for b in _list()}
    assert listed == {first.id: "in_progress", second.id: "finalizing", done.id: "completed"}
    assert provider.calls == [("list", {"limit": 100})]
    stored = IdMap().get(first.id)
    assert stored is not None and stored.status == "in_progress"  # the refresh was stored


def test_a_batch_list_continues_after_a_cursor(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    first, second, third = _create(), _create(), _create()
    for upstream_id in provider.batches:
        provider.advance(upstream_id, "completed")
    page = batches.list_batches(MASTER, ListRequest(limit=1, ascending=True, after=first.id))
    assert [b.id for b in page.data] == [second.id] and page.has_more is True
    with pytest.raises(InvalidRequestError) as refused:
        batches.list_batches(MASTER, ListRequest(limit=1, after="file-in"))  # a file is no batch cursor
    assert (refused.value.param, refused.value.code) == ("after", "invalid_cursor")
    assert third.id  # the third one is what has_more announced


def test_a_single_unfinished_batch_is_retrieved_not_listed(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    batch = _create()
    provider.advance("batch_up1", "in_progress")
    provider.calls.clear()
    assert [b.status for b in _list()] == ["in_progress"]
    assert provider.calls == [("retrieve", "batch_up1")]
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.status == "in_progress"  # the refresh was stored
    assert _list()[0].id == batch.id


def test_an_unfinished_batch_missing_from_the_providers_page_is_retrieved_on_its_own(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_file("file-in")
    _create()
    _create()
    provider.advance("batch_up1", "in_progress")
    provider.advance("batch_up2", "in_progress")
    full_list = provider.list_batches

    def newest_only(**query: Any) -> dict[str, Any]:
        page = full_list(**query)
        return {**page, "data": page["data"][:1], "has_more": True}

    monkeypatch.setattr(provider, "list_batches", newest_only)
    provider.calls.clear()
    assert sorted(b.status for b in _list()) == ["in_progress", "in_progress"]
    assert provider.calls == [("list", {"limit": 100}), ("retrieve", "batch_up1")]


def test_each_provider_with_two_unfinished_batches_gets_its_own_list_call(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure = FakeBatchesApi(id_prefix="batch_az")
    monkeypatch.setitem(registry._clients, "azure", azure)  # type: ignore[arg-type]
    store_file("file-az", provider="azure")
    store_file("file-in")
    azure_batches = [_create(file_id="file-az"), _create(file_id="file-az")]
    _create()  # the newest: openai's lone unfinished batch comes first in the page
    for upstream_id in azure.batches:
        azure.advance(upstream_id, "in_progress")
    full_list = azure.list_batches

    def with_junk(**query: Any) -> dict[str, Any]:
        page = full_list(**query)
        return {**page, "data": ["not an object", *page["data"]]}  # ignored, not fatal

    monkeypatch.setattr(azure, "list_batches", with_junk)
    provider.calls.clear()
    azure.calls.clear()
    listed = {b.id: b.status for b in _list()}
    assert [listed[b.id] for b in azure_batches] == ["in_progress", "in_progress"]
    assert provider.calls == [("retrieve", "batch_up1")]
    assert azure.calls == [("list", {"limit": 100})]


def test_two_deployments_with_the_same_upstream_ids_each_get_their_own_status(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = FakeBatchesApi(id_prefix="batch_up")  # another deployment that numbers its batches alike
    monkeypatch.setitem(registry._clients, "azure", twin)  # type: ignore[arg-type]
    store_file("file-az", provider="azure")
    store_file("file-in")
    ours = [_create(), _create()]
    theirs = [_create(file_id="file-az"), _create(file_id="file-az")]
    assert set(provider.batches) == set(twin.batches)  # batch_up1, batch_up2 at both
    for upstream_id in provider.batches:
        provider.advance(upstream_id, "in_progress")
        twin.advance(upstream_id, "finalizing")
    listed = {b.id: b.status for b in _list()}
    assert [listed[b.id] for b in ours] == ["in_progress", "in_progress"]
    assert [listed[b.id] for b in theirs] == ["finalizing", "finalizing"]


@pytest.mark.parametrize("failing", ["openai", "azure"])
def test_one_providers_failed_list_call_leaves_the_others_list_call(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    azure = FakeBatchesApi(id_prefix="batch_az")
    monkeypatch.setitem(registry._clients, "azure", azure)  # type: ignore[arg-type]
    store_file("file-az", provider="azure")
    store_file("file-in")
    for _ in range(2):
        _create()
        _create(file_id="file-az")
    fakes = {"openai": provider, "azure": azure}

    def unavailable(**query: Any) -> dict[str, Any]:
        raise ConnectionError("provider down")

    monkeypatch.setattr(fakes[failing], "list_batches", unavailable)
    healthy = fakes["azure" if failing == "openai" else "openai"]
    provider.calls.clear()
    azure.calls.clear()
    assert len(_list()) == 4
    assert healthy.calls == [("list", {"limit": 100})]
    assert sorted(c[0] for c in fakes[failing].calls) == ["retrieve", "retrieve"]


def test_a_failed_list_call_is_logged_and_each_batch_retrieved(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store_file("file-in")
    _create()
    _create()

    def unavailable(**query: Any) -> dict[str, Any]:
        raise ConnectionError("provider down")

    monkeypatch.setattr(provider, "list_batches", unavailable)
    provider.calls.clear()
    assert len(_list()) == 2
    assert sorted(provider.calls) == [("retrieve", "batch_up1"), ("retrieve", "batch_up2")]
    logged = [(r.getMessage(), getattr(r, "provider", None)) for r in caplog.records]
    assert ("batch list refresh failed; retrieving one by one", "openai") in logged, logged


def test_a_batch_record_without_its_input_file_in_state_takes_it_from_its_object(
    provider: FakeBatchesApi,
) -> None:
    store_file("file-in")
    batch = _create()
    record = IdMap().get(batch.id)
    assert record is not None
    record.state = {}  # as a record written before the state carried it
    IdMap().put(record, reverse=False)
    provider.advance("batch_up1", "in_progress")
    assert batches.retrieve_batch(MASTER, batch.id).input_file_id == "file-in"


def test_a_batch_names_its_provider_even_when_stored_before_the_field(provider: FakeBatchesApi) -> None:
    store_file("file-in")
    batch = _create(provider="openai")
    assert batch.provider == "openai"
    provider.advance("batch_up1", "completed")
    assert batches.retrieve_batch(MASTER, batch.id).provider == "openai"
    record = IdMap().get(batch.id)
    assert record is not None and record.status == "completed"
    record.object = {name: value for name, value in record.object.items() if name != "provider"}
    IdMap().put(record, reverse=False)  # as a release before the field stored it; finished: never refreshed
    [listed] = _list()
    assert listed.provider == "openai"


def test_an_idempotency_key_used_again_after_its_lifetime_makes_a_new_batch(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.http.idempotency import KEY_LIFETIME_SECONDS

    store_file("file-in")
    request = CreateBatchRequest(
        input_file_id="file-in", endpoint="/v1/chat/completions", completion_window="24h", metadata={"t": "1"}
    )
    first = batches.create_batch(MASTER, None, request, batch_id="batch_keyed")
    assert batches.create_batch(MASTER, None, request, batch_id="batch_keyed").id == first.id  # a retry
    assert len(provider.batches) == 1
    stored_first = IdMap().get(first.id)
    assert stored_first is not None
    monkeypatch.setattr(batches.time, "time", lambda: stored_first.created_at + KEY_LIFETIME_SECONDS)
    assert batches.create_batch(MASTER, None, request, batch_id="batch_keyed").id == first.id  # still its
    monkeypatch.setattr(batches.time, "time", lambda: stored_first.created_at + KEY_LIFETIME_SECONDS + 1)
    with pytest.raises(InvalidRequestError) as mismatch:  # the new create checks what the first did
        batches.create_batch(MASTER, "azure", request, batch_id="batch_keyed")
    assert mismatch.value.code == "provider_mismatch"
    again = batches.create_batch(MASTER, "openai", request, batch_id="batch_keyed")
    assert again.id != first.id and again.input_file_id == "file-in" and again.metadata == {"t": "1"}
    assert len(provider.batches) == 2
    stored = IdMap().get(again.id)
    assert stored is not None and stored.owner == "master" and stored.upstream_id is not None


def test_a_finished_batchs_output_and_error_files_get_gateway_ids_of_their_own(
    provider: FakeBatchesApi,
) -> None:
    store_file("file-in")
    batch = _create()
    provider.batches["batch_up1"] |= {
        "status": "completed",
        "output_file_id": "file-out-up",
        "error_file_id": "file-err-up",
    }
    done = batches.retrieve_batch(MASTER, batch.id)
    files = {"output": done.output_file_id, "error": done.error_file_id}
    assert None not in files.values() and len(set(files.values())) == 2
    for name, upstream_id in (("output", "file-out-up"), ("error", "file-err-up")):
        record = IdMap().get(str(files[name]))
        assert record is not None and (record.kind, record.upstream_id) == ("file", upstream_id)
        assert record.owner == "master" and record.provider == "openai"
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.state["files"] == {
        "file-out-up": files["output"],
        "file-err-up": files["error"],
    }


def test_a_batch_id_used_again_with_another_request_is_refused(provider: FakeBatchesApi) -> None:
    """The Idempotency-Key's own record may be gone (its create failed and was forgotten): the
    batch record written ahead still tells the second request from a retry of the first."""
    store_file("file-in")
    store_file("file-other")
    first = CreateBatchRequest(
        input_file_id="file-in", endpoint="/v1/chat/completions", completion_window="24h"
    )
    batches.create_batch(MASTER, None, first, batch_id="batch_keyed")
    other = first.model_copy(update={"input_file_id": "file-other"})
    with pytest.raises(ConflictError) as reused:
        batches.create_batch(MASTER, None, other, batch_id="batch_keyed")
    assert (reused.value.code, reused.value.param) == ("idempotency_key_reused", "Idempotency-Key")
    assert [call for call, _ in provider.calls if call == "create"] == ["create"]


def test_a_batch_whose_create_failed_reads_as_the_request_made_it(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the provider's batch is found (or given up), the written-ahead object is the batch."""
    import time

    from gateway.errors import UpstreamError

    def unavailable(body: dict[str, Any], **_: Any) -> dict[str, Any]:
        raise UpstreamError("provider answered 503")

    store_file("file-in")
    monkeypatch.setattr(provider, "create_batch", unavailable)
    before = int(time.time())
    with pytest.raises(UpstreamError):
        _create()
    [listed] = _list()
    batch = batches.retrieve_batch(MASTER, listed.id)  # the provider lists nothing of it
    assert batch == listed
    assert batch.model_dump(exclude={"created_at"}, exclude_none=True) == {
        "id": listed.id,
        "object": "batch",
        "completion_window": "24h",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-in",
        "status": "validating",
        "metadata": {"t": "1"},
        "provider": "openai",
    }
    assert before <= batch.created_at <= int(time.time())


def test_a_key_limited_to_a_provider_creates_and_cancels_its_batches_there(provider: FakeBatchesApi) -> None:
    limited = Caller(key_id="k-openai-only", providers=frozenset({"openai"}))
    store_file("file-limited", owner=limited.key_id)
    batch = _create(caller=limited, file_id="file-limited")
    assert batch.status == "validating"
    assert batches.cancel_batch(limited, batch.id).status == "cancelling"
    assert [call for call, _ in provider.calls] == ["create", "cancel"]


def test_a_stranded_batch_found_already_finished_gets_its_output_file_registered(
    provider: FakeBatchesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's answer was lost; by the time a retrieve finds the provider's batch it has
    ended, so attaching it also registers its output file under a gateway id."""
    import time

    from gateway.errors import UpstreamTimeoutError

    real = provider.create_batch

    def made_but_lost(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        real(body, **kwargs)
        raise UpstreamTimeoutError("provider did not answer in time")

    store_file("file-in")
    monkeypatch.setattr(provider, "create_batch", made_but_lost)
    with pytest.raises(UpstreamTimeoutError):
        _create()
    [(upstream_id, upstream)] = provider.batches.items()
    # made now (the fake's fixed creation time is older than the attempt), and ended since
    upstream |= {"created_at": int(time.time()), "status": "completed", "output_file_id": "file-up-out"}
    [pending_batch] = _list()
    batch = batches.retrieve_batch(MASTER, pending_batch.id)
    assert batch.status == "completed" and batch.output_file_id not in {None, "file-up-out"}
    output = IdMap().get(str(batch.output_file_id))
    assert output is not None
    assert (output.kind, output.upstream_id, output.owner) == ("file", "file-up-out", "master")
    stored = IdMap().get(batch.id)
    assert stored is not None and stored.upstream_id == upstream_id


def test_the_request_hash_is_the_canonical_json_of_the_provider_and_the_request(
    provider: FakeBatchesApi,
) -> None:
    """A retry compares it with the hash its first attempt stored, possibly written by the
    previous release: its formula must not drift."""
    import hashlib
    import json

    store_file("file-in")
    batch = _create()
    stored = IdMap().get(batch.id)
    assert stored is not None
    canonical = {
        "provider": "openai",
        "input_file_id": "file-in",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"t": "1"},
        "output_expires_after": None,
        "custom_llm_provider": None,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    assert stored.state["request"] == hashlib.sha256(text.encode()).hexdigest()
