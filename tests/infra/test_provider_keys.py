"""`make put-provider-keys`: input validation and the secret lookup (no AWS call)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.provider_keys import parse_keys, secret_name_from_stack


def test_parse_keys_accepts_an_object_of_strings() -> None:
    assert parse_keys('{"openai": "sk-test-1234", "azure": "abc"}') == {
        "openai": "sk-test-1234",
        "azure": "abc",
    }


def test_a_service_account_key_is_kept_as_its_json_text() -> None:
    """A vertex deployment's key: the key file's JSON pasted as the value."""
    key = {"type": "service_account", "client_email": "a@b", "private_key": "k", "token_uri": "https://t"}
    parsed = parse_keys(json.dumps({"vertex": key, "openai": "sk-test"}))
    assert json.loads(parsed["vertex"]) == key and parsed["openai"] == "sk-test"


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"openai": 1}', '{"openai": {"type": "other"}}', '{"openai": "  "}', "{not json"],
)
def test_parse_keys_rejects_anything_else(text: str) -> None:
    with pytest.raises(SystemExit) as error:
        parse_keys(text)
    assert "sk-" not in str(error.value)


class FakeCloudFormation:
    def __init__(self, outputs: list[dict[str, str]]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


def test_secret_name_comes_from_the_stack_output() -> None:
    client = FakeCloudFormation(
        [{"OutputKey": "ProviderKeysSecretName", "OutputValue": "openai-gateway/provider-keys"}]
    )
    assert secret_name_from_stack(client, "OpenAIGatewayData") == "openai-gateway/provider-keys"
    with pytest.raises(SystemExit):
        secret_name_from_stack(FakeCloudFormation([]), "OpenAIGatewayData")
