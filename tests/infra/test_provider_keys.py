"""`make put-provider-keys`: input validation and the secret lookup (no AWS call)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.provider_keys import parse_keys, secret_name_from_stack


def test_parse_keys_accepts_an_object_of_strings() -> None:
    assert parse_keys('{"openai": "sk-test-1234", "azure": "abc"}') == {
        "openai": "sk-test-1234",
        "azure": "abc",
    }


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"openai": 1}', '{"openai": "  "}', "{not json"])
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
