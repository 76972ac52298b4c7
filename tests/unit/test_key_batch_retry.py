"""A virtual key's default `retry` of its batches' lines (`batch_retry`): set at generate,
changed or removed at update, shown by info, validated as a create's own `retry`, and handed to
every request the key authenticates (service.batches uses it when a create sends none)."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.http import auth
from gateway.models.retry import RetryOptions
from handlers import keys_generate, keys_info, keys_update

from tests.unit.conftest import call, event

DEFAULT = {"expired": True, "failed_codes": ["server_error"]}


def _generate(**body: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = call(keys_generate.handler, event("POST", "/key/generate", body=body))
    return status, answer


def _update(**body: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = call(keys_update.handler, event("POST", "/key/update", body=body))
    return status, answer


def _info(key_id: str) -> dict[str, Any]:
    status, answer, _ = call(keys_info.handler, event("GET", "/key/info", query={"key": key_id}))
    assert status == 200, answer
    return dict(answer["info"])


def _caller_of(plain_key: str) -> auth.Caller:
    auth.clear_key_cache()  # as another function would read it
    return auth.authenticate({"Authorization": f"Bearer {plain_key}"})


def test_generate_keeps_the_default_and_every_request_of_the_key_carries_it(aws: None) -> None:
    status, generated = _generate(key_alias="retrying", batch_retry=DEFAULT)
    assert status == 200, generated
    assert generated["batch_retry"] == DEFAULT
    assert _info(generated["key_id"])["batch_retry"] == DEFAULT
    assert _caller_of(generated["key"]).batch_retry == RetryOptions(**DEFAULT)


def test_a_key_without_one_has_none(aws: None) -> None:
    status, generated = _generate()
    assert status == 200 and generated["batch_retry"] is None
    assert _caller_of(generated["key"]).batch_retry is None


def test_update_changes_keeps_or_removes_the_default(aws: None) -> None:
    _, generated = _generate(batch_retry=DEFAULT)
    key_id = generated["key_id"]
    status, updated = _update(key=key_id, batch_retry={"expired": True})
    assert status == 200 and updated["batch_retry"] == {"expired": True, "failed_codes": []}
    status, updated = _update(key=key_id, key_alias="renamed")  # not sent: kept
    assert status == 200 and updated["batch_retry"] == {"expired": True, "failed_codes": []}
    assert _caller_of(generated["key"]).batch_retry == RetryOptions(expired=True)
    status, updated = _update(key=key_id, batch_retry=None)  # null: removed
    assert status == 200 and updated["batch_retry"] is None
    assert _info(key_id)["batch_retry"] is None
    assert _caller_of(generated["key"]).batch_retry is None


def test_a_default_that_retries_nothing_is_kept_as_none(aws: None) -> None:
    _, generated = _generate(batch_retry={"expired": False, "failed_codes": []})
    assert generated["batch_retry"] is None and _caller_of(generated["key"]).batch_retry is None


@pytest.mark.parametrize(
    ("batch_retry", "param"),
    [
        ({"expired": "sometimes"}, "batch_retry.expired"),
        ({"failed_codes": "server_error"}, "batch_retry.failed_codes"),
        ({"failed_codes": [f"code_{n}" for n in range(21)]}, "batch_retry.failed_codes"),
        ("expired", "batch_retry"),
    ],
)
def test_a_bad_default_is_a_400_naming_it_at_generate_and_update(
    aws: None, batch_retry: Any, param: str
) -> None:
    status, answer = _generate(batch_retry=batch_retry)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    _, generated = _generate(batch_retry=DEFAULT)
    status, answer = _update(key=generated["key_id"], batch_retry=batch_retry)
    assert status == 400 and answer["error"]["param"] == param
    assert _info(generated["key_id"])["batch_retry"] == DEFAULT  # unchanged
