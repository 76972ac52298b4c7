"""Virtual keys and ownership: the key cache, key settings checks, provider limits on ids."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from gateway.http import auth
from gateway.http.auth import Caller
from gateway.runtime import secret_store
from gateway.service.ownership import owned_record
from gateway.storage.id_map import IdMap
from gateway.storage.keys import KeyRecord, KeyStore, hash_key
from handlers import files_list, keys_delete, keys_generate, keys_info, keys_list, keys_update

from tests.unit.conftest import MASTER_KEY, call, event, store_file


def _generate(**body: Any) -> dict[str, Any]:
    status, generated, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 200, generated
    return dict(generated)


def _list_files(key: str) -> int:
    status, _, _ = call(files_list.handler, event("GET", "/v1/files", key=key))
    return status


def _record(key_id: str) -> KeyRecord:
    return next(r for r in KeyStore().all() if r.key_id == key_id)


# The warm cache -----------------------------------------------------------------------------


def test_deleted_key_is_refused_at_once_even_if_dynamodb_still_returns_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = _generate(key_alias="stale-read")
    assert _list_files(generated["key"]) == 200
    stale = _record(generated["key_id"])

    status, _, _ = call(keys_delete.handler, event("POST", "/key/delete", body={"keys": [generated["key"]]}))
    assert status == 200
    # An eventually consistent read could still see the item: the deleting function must not ask.
    monkeypatch.setattr(KeyStore, "get", lambda self, key_hash: stale)
    assert _list_files(generated["key"]) == 401


def test_a_key_deleted_by_another_function_is_refused_within_the_cache_time(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = _generate(key_alias="deleted-elsewhere")
    assert _list_files(generated["key"]) == 200  # cached in this warm function now
    # Another function (another Lambda environment) deletes it: this one's cache does not know.
    KeyStore().delete(_record(generated["key_id"]))
    started = auth.time.monotonic()
    monkeypatch.setattr(auth.time, "monotonic", lambda: started + auth.KEY_CACHE_SECONDS - 1)
    assert _list_files(generated["key"]) == 200
    monkeypatch.setattr(auth.time, "monotonic", lambda: started + auth.KEY_CACHE_SECONDS + 1)
    assert _list_files(generated["key"]) == 401
    assert auth.KEY_CACHE_SECONDS <= 60


def test_provider_update_takes_effect_at_once_in_the_updating_function(aws: None) -> None:
    generated = _generate(providers=["openai"])
    azure = event("GET", "/azure/v1/files", key=generated["key"], path_parameters={"provider": "azure"})
    assert call(files_list.handler, azure)[0] == 403

    body = {"key": generated["key_id"], "providers": ["openai", "azure"]}
    status, updated, _ = call(keys_update.handler, event("POST", "/key/update", body=body))
    assert status == 200 and updated["providers"] == ["azure", "openai"]
    assert call(files_list.handler, azure)[0] == 200


def test_unknown_keys_are_cached_and_the_cache_stays_bounded(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real_get = KeyStore.get

    def counting_get(self: KeyStore, key_hash: str) -> KeyRecord | None:
        reads.append(key_hash)
        return real_get(self, key_hash)

    monkeypatch.setattr(KeyStore, "get", counting_get)
    monkeypatch.setattr(auth, "MAX_CACHED_KEYS", 5)
    assert auth.lookup_virtual_key("sk-nope") is None
    assert auth.lookup_virtual_key("sk-nope") is None
    assert len(reads) == 1

    for i in range(20):
        auth.lookup_virtual_key(f"sk-spray-{i}")
    assert len(auth._key_cache) <= 5
    newest = hash_key("sk-spray-19", secret_store.key_pepper())
    assert newest in auth._key_cache  # the oldest entries make room, never the newest


def test_stale_cache_entries_are_pruned_first(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_CACHED_KEYS", 3)
    auth.remember_key("old", None, now=0.0)
    auth.remember_key("fresh-1", None, now=100.0)
    auth.remember_key("fresh-2", None, now=101.0)
    auth.remember_key("fresh-3", None, now=102.0)
    assert list(auth._key_cache) == ["fresh-1", "fresh-2", "fresh-3"]


# Key settings: every bad value is a 400 envelope ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"duration": "30x"}, "duration"),
        ({"duration": "0d"}, "duration"),
        ({"duration": "999999999999d"}, "duration"),  # would overflow a date
        ({"duration": "1" * 5000 + "s"}, "duration"),  # would overflow int()
        ({"metadata": {"blob": "x" * 20_000}}, "metadata"),  # would overflow a DynamoDB item
        ({"providers": []}, "providers"),
        ({"providers": ["nope"]}, "providers"),
    ],
)
def test_bad_key_settings_are_400(aws: None, body: dict[str, Any], param: str) -> None:
    status, error, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    assert status == 400, error
    assert error["error"]["param"] == param


def test_update_cannot_take_another_keys_alias(aws: None) -> None:
    _generate(key_alias="alias-one")
    second = _generate(key_alias="alias-two")
    status, error, _ = call(
        keys_update.handler,
        event("POST", "/key/update", body={"key": second["key_id"], "key_alias": "alias-one"}),
    )
    assert status == 400 and error["error"]["param"] == "key_alias"
    status, same, _ = call(
        keys_update.handler,
        event("POST", "/key/update", body={"key": second["key_id"], "key_alias": "alias-two"}),
    )
    assert status == 200 and same["key_alias"] == "alias-two"


def test_info_and_list_never_show_the_key_or_its_hash(aws: None) -> None:
    generated = _generate(key_alias="secretive", metadata={"team": "x"})
    key = generated["key"]
    key_hash = hash_key(key, secret_store.key_pepper())
    _, info, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": key}))
    _, listed, _ = call(keys_list.handler, event("GET", "/key/list", query={"return_full_object": "true"}))
    for shown in (info, listed):
        assert key not in str(shown) and key_hash not in str(shown)
    assert info["key"] == generated["key_id"]


def test_logs_never_carry_the_key_or_its_hash(aws: None, capfd: pytest.CaptureFixture[str]) -> None:
    generated = _generate(key_alias="quiet")
    key = generated["key"]
    _list_files(key)
    call(keys_update.handler, event("POST", "/key/update", body={"key": key, "providers": ["openai"]}))
    call(keys_delete.handler, event("POST", "/key/delete", body={"keys": [key]}))
    _list_files(key)
    out, err = capfd.readouterr()
    key_hash = hash_key(key, secret_store.key_pepper())
    assert key not in out + err and key_hash not in out + err


# Ownership and provider limits on existing ids ---------------------------------------------


def test_a_key_limited_to_openai_gets_403_on_its_own_azure_object_and_404_on_anothers(aws: None) -> None:
    store_file("file-own-azure", owner="key_limited", provider="azure")
    store_file("file-other-azure", owner="key_other", provider="azure")
    limited = Caller(key_id="key_limited", providers=frozenset({"openai"}))

    with pytest.raises(PermissionDeniedError, match="azure"):
        owned_record(IdMap(), limited, "file-own-azure", "file")
    with pytest.raises(NotFoundError, match="No such File object: file-other-azure"):
        owned_record(IdMap(), limited, "file-other-azure", "file")
    assert owned_record(IdMap(), auth.MASTER, "file-other-azure", "file").owner == "key_other"


def test_a_limited_key_naming_another_provider_gets_403_on_id_routes_too(aws: None) -> None:
    from handlers import files_retrieve

    generated = _generate(providers=["openai"])
    store_file("file-own-openai", owner=generated["key_id"], provider="openai")
    for path_parameters, headers in (
        ({"provider": "azure", "file_id": "file-own-openai"}, {}),
        ({"file_id": "file-own-openai"}, {"custom-llm-provider": "azure"}),
        ({"provider": "azure", "file_id": "file-unknown"}, {}),  # the same 403: nothing learned
    ):
        request = event(
            "GET",
            "/azure/v1/files/x",
            resource="/{provider}/v1/files/{file_id}",
            key=generated["key"],
            path_parameters=path_parameters,
        )
        request["headers"].update(headers)
        status, error, _ = call(files_retrieve.handler, request)
        assert status == 403 and "'azure'" in error["error"]["message"], error
        assert error["error"]["code"] == "provider_not_allowed"


# The master key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "presented",
    [MASTER_KEY + "x", MASTER_KEY[:-1], " " + MASTER_KEY + "0", MASTER_KEY.upper()],
)
def test_only_the_exact_master_key_is_the_master_key(aws: None, presented: str) -> None:
    status, error, _ = call(files_list.handler, event("GET", "/v1/files", key=presented))
    assert status == 401, error
    assert error["error"]["message"] == "Incorrect API key provided."
    assert auth.authenticate({"Authorization": f"Bearer {MASTER_KEY}"}) is auth.MASTER


# Where the key is read from ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer sk-a"}, "sk-a"),
        ({"authorization": "bearer  sk-a  "}, "sk-a"),  # any case, surrounding spaces dropped
        ({"api-key": " sk-b "}, "sk-b"),  # Azure's header
        ({"API-Key": "sk-b"}, "sk-b"),
        ({"Authorization": "Bearer sk-a", "api-key": "sk-b"}, "sk-a"),  # Bearer wins
        ({"Authorization": "Bearer ", "api-key": "sk-b"}, "sk-b"),  # an empty Bearer is no key
        ({"Authorization": "Basic sk-a"}, None),  # another scheme is no key
        ({"Authorization": "sk-a"}, None),  # nor a bare token
        ({"api-key": "   "}, None),
        ({}, None),
    ],
)
def test_the_key_is_read_from_bearer_or_api_key_only(headers: dict[str, str], expected: str | None) -> None:
    assert auth.presented_key(headers) == expected


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic sk-1234"}, {"api-key": ""}])
def test_no_key_is_401_missing_api_key_naming_both_headers(aws: None, headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError) as refused:
        auth.authenticate(headers)
    assert refused.value.code == "missing_api_key"
    assert refused.value.message == (
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'api-key: <key>'."
    )


def test_the_master_key_is_accepted_in_the_api_key_header(aws: None) -> None:
    assert auth.authenticate({"api-key": MASTER_KEY}) is auth.MASTER


# Deleting keys: naming nothing, an unknown key or an unknown alias deletes nothing -----------


def test_a_delete_naming_no_key_is_400(aws: None) -> None:
    status, error, _ = call(keys_delete.handler, event("POST", "/key/delete", body={}))
    assert status == 400, error
    assert error["error"]["param"] == "keys" and "'keys' or 'key_aliases'" in error["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"keys": ["sk-never-issued"]}, "keys"),
        ({"keys": ["key_never_issued"]}, "keys"),
        ({"key_aliases": ["no-such-alias"]}, "key_aliases"),
    ],
)
def test_a_delete_naming_an_unknown_key_is_404_and_deletes_nothing(
    aws: None, body: dict[str, Any], param: str
) -> None:
    kept = _generate(key_alias="kept")
    body = {
        name: [kept["key"], *values] if name == "keys" else ["kept", *values] for name, values in body.items()
    }
    status, error, _ = call(keys_delete.handler, event("POST", "/key/delete", body=body))
    assert status == 404, error
    assert error["error"]["param"] == param
    assert _list_files(kept["key"]) == 200  # named alongside the unknown one, and still there


def test_a_cache_entry_exactly_key_cache_seconds_old_is_stale(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    monkeypatch.setattr(KeyStore, "get", lambda self, key_hash: reads.append(key_hash))
    monkeypatch.setattr(auth.time, "monotonic", lambda: 1000.0)
    auth.lookup_virtual_key("sk-boundary")
    monkeypatch.setattr(auth.time, "monotonic", lambda: 1000.0 + auth.KEY_CACHE_SECONDS)
    auth.lookup_virtual_key("sk-boundary")
    assert len(reads) == 2

    # Pruning a full cache drops every entry of that age too, not just enough to make room.
    monkeypatch.setattr(auth, "MAX_CACHED_KEYS", 3)
    auth.clear_key_cache()
    auth.remember_key("stale-1", None, now=0.0)
    auth.remember_key("stale-2", None, now=0.0)
    auth.remember_key("fresh", None, now=59.0)
    auth.remember_key("newest", None, now=auth.KEY_CACHE_SECONDS)
    assert list(auth._key_cache) == ["fresh", "newest"]


def test_a_key_remembered_again_becomes_the_newest_entry(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_CACHED_KEYS", 2)
    auth.remember_key("a", None, now=0.0)
    auth.remember_key("b", None, now=1.0)
    auth.remember_key("a", None, now=2.0)  # updated: now younger than b
    auth.remember_key("c", None, now=3.0)  # full: the oldest, b, makes room
    assert list(auth._key_cache) == ["a", "c"]


def test_a_limited_key_is_told_which_providers_it_may_use() -> None:
    limited = Caller(key_id="key_l", providers=frozenset({"openai", "azure-eu"}))
    limited.require_provider("openai")
    with pytest.raises(PermissionDeniedError) as denied:
        limited.require_provider("azure")
    assert (denied.value.param, denied.value.code, denied.value.message) == (
        "custom_llm_provider",
        "provider_not_allowed",
        "This key may not use provider 'azure'. Allowed: azure-eu, openai.",
    )
