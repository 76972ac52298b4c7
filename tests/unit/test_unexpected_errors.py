"""Failures no layer expected still end in an OpenAI envelope, never a crashed function."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from gateway.storage import id_map
from handlers import files_list, files_retrieve

from tests.unit.conftest import call, event


def _throttled(*args: Any, **kwargs: Any) -> Any:
    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetItem")


def _retrieve_event() -> dict[str, Any]:
    return event(
        "GET", "/v1/files/file-abc", resource="/v1/files/{file_id}", path_parameters={"file_id": "file-abc"}
    )


def test_an_aws_failure_in_a_handler_is_a_503(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(id_map.IdMap, "get", _throttled)
    request = _retrieve_event()
    status, body, headers = call(files_retrieve.handler, request)
    assert status == 503
    assert body["error"]["code"] == "service_unavailable"
    assert "Rate exceeded" not in body["error"]["message"]
    assert headers["x-request-id"]


def test_an_aws_failure_while_authenticating_is_a_503(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.http import auth

    monkeypatch.setattr(auth, "authenticate", _throttled)
    status, body, headers = call(files_list.handler, event("GET", "/v1/files", key="sk-some-virtual-key"))
    assert status == 503
    assert body["error"]["type"] == "api_error"
    assert headers["x-request-id"]


def test_a_bug_is_a_500_envelope_without_details(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("internal detail")

    monkeypatch.setattr(id_map.IdMap, "get", broken)
    request = _retrieve_event()
    status, body, _ = call(files_retrieve.handler, request)
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "internal detail" not in body["error"]["message"]


def test_a_value_dynamodb_refuses_is_a_400_not_a_retryable_503(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        message = (
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit"
        )
        raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "GetItem")

    monkeypatch.setattr(id_map.IdMap, "get", refused)
    status, body, _ = call(files_retrieve.handler, _retrieve_event())
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "hashkey" not in body["error"]["message"]


def test_an_over_long_id_never_reaches_dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.storage import dynamo

    long_id = "file-" + "a" * 3000
    calls: list[str] = []
    real = dynamo.dynamodb_client()
    monkeypatch.setattr(real, "get_item", lambda **kwargs: calls.append(kwargs["Key"]["pk"]["S"]))
    request = event(
        "GET", f"/v1/files/{long_id}", resource="/v1/files/{file_id}", path_parameters={"file_id": long_id}
    )
    status, body, _ = call(files_retrieve.handler, request)
    assert status == 404 and body["error"]["code"] == "not_found"
    assert long_id not in body["error"]["message"]  # quoted shortened
    assert calls == []
