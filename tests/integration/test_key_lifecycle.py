"""A virtual key's life through the local server: generate, use, update, expire, delete.

Locally every function runs in one process, so "the function that deleted it" is every
function: a deleted key is refused by the very next request.
"""

from __future__ import annotations

import time

import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import error_of
from tests.integration.tenancy import generate_key, key_api, sdk, unique, upload_input


def _assert_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        client.files.list()
    assert error_of(refused.value)["code"] == "invalid_api_key"


def test_generate_use_update_providers_then_delete(local_gateway: LocalGateway) -> None:
    key = generate_key(local_gateway, "lifecycle", providers=["openai"], metadata={"team": "lifecycle"})
    client, azure = sdk(local_gateway, key.key), sdk(local_gateway, key.key, provider="azure")

    own = upload_input(client)
    assert [f.id for f in client.files.list()] == [own.id]
    with pytest.raises(openai.PermissionDeniedError):
        upload_input(azure)

    updated = key_api(
        local_gateway, "POST", "/key/update", json={"key": key.key_id, "providers": ["azure", "openai"]}
    )
    assert updated.status_code == 200 and updated.json()["providers"] == ["azure", "openai"]
    on_azure = upload_input(azure)  # in effect at once
    assert {f.id for f in client.files.list()} == {own.id, on_azure.id}

    narrowed = key_api(local_gateway, "POST", "/key/update", json={"key": key.key, "providers": ["openai"]})
    assert narrowed.status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.files.retrieve(on_azure.id)  # its own object, on a provider it may no longer use
    assert "'azure'" in error_of(denied.value)["message"]
    assert client.files.retrieve(own.id).id == own.id

    deleted = key_api(local_gateway, "POST", "/key/delete", json={"keys": [key.key]})
    assert deleted.json() == {"deleted_keys": [key.key_id]}
    _assert_refused(client)
    # Its objects stay, owned by the key id: the master key still reads them.
    master = sdk(local_gateway, local_gateway.master_key)
    assert {f.id for f in master.files.list(extra_query={"key_id": key.key_id})} == {own.id, on_azure.id}


def test_delete_by_alias_refuses_the_next_request(local_gateway: LocalGateway) -> None:
    key = generate_key(local_gateway, "by-alias")
    client = sdk(local_gateway, key.key)
    client.files.list()  # the key is now in the warm cache
    deleted = key_api(local_gateway, "POST", "/key/delete", json={"key_aliases": [key.alias]})
    assert deleted.status_code == 200 and deleted.json() == {"deleted_keys": [key.key_id]}
    _assert_refused(client)
    info = key_api(local_gateway, "GET", "/key/info", params={"key": key.key_id})
    assert info.status_code == 404


def test_a_key_expires(local_gateway: LocalGateway) -> None:
    generated = key_api(
        local_gateway, "POST", "/key/generate", json={"key_alias": unique("short"), "duration": "3s"}
    )
    assert generated.status_code == 200
    body = generated.json()
    client = sdk(local_gateway, body["key"])
    if time.time() < body["expires_at"] - 0.2:
        client.files.list()  # usable before its time (and cached)
    time.sleep(max(0.0, body["expires_at"] - time.time()) + 0.1)
    _assert_refused(client)


def test_info_and_list_never_return_the_key_or_its_hash(local_gateway: LocalGateway) -> None:
    from gateway.runtime import secret_store
    from gateway.storage.keys import hash_key

    key = generate_key(local_gateway, "discreet")
    key_hash = hash_key(key.key, secret_store.key_pepper())
    responses = [
        key_api(local_gateway, "GET", "/key/info", params={"key": key.key}),
        key_api(local_gateway, "GET", "/key/info", params={"key": key.key_id}),
        key_api(local_gateway, "GET", "/key/list"),
        key_api(local_gateway, "GET", "/key/list", params={"return_full_object": "true", "size": "100"}),
        key_api(local_gateway, "POST", "/key/update", json={"key": key.key, "metadata": {"n": 1}}),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert key.key not in response.text and key_hash not in response.text
    assert responses[0].json()["info"]["key_alias"] == key.alias
    assert responses[0].json()["key"] == key.key_id


def test_key_management_needs_the_master_key(local_gateway: LocalGateway) -> None:
    import httpx

    key = generate_key(local_gateway, "not-an-operator")
    response = httpx.post(
        f"{local_gateway.url}/key/generate", headers={"Authorization": f"Bearer {key.key}"}, json={}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "master_key_required"
    unknown = key_api(local_gateway, "POST", "/key/update", json={"key": "key_nope", "providers": ["openai"]})
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}


def test_budget_amounts_are_bounded_and_kept_in_plain_digits(local_gateway: LocalGateway) -> None:
    """1e-7 went to the local table in exponent form (503); 1e300 was stored and every later
    /key/update answered 503; both now: a micro-dollar amount, or a 400 naming the bound."""
    tiny = key_api(
        local_gateway, "POST", "/key/generate", json={"key_alias": unique("tiny"), "max_budget": 1e-7}
    )
    assert tiny.status_code == 200 and tiny.json()["max_budget"] == 0.0
    key = tiny.json()["key"]
    for body in ({"max_budget": 1e300}, {"key": key, "max_budget": 1e200}):
        path = "/key/update" if "key" in body else "/key/generate"
        refused = key_api(local_gateway, "POST", path, json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "max_budget" and "1000000000" in refused.text
    updated = key_api(local_gateway, "POST", "/key/update", json={"key": key, "max_budget": 12.5})
    assert updated.status_code == 200 and updated.json()["max_budget"] == 12.5
    info = key_api(local_gateway, "GET", "/key/info", params={"key": key})
    assert info.status_code == 200 and info.json()["info"]["max_budget"] == 12.5
