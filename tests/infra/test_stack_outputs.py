"""`python -m infra.stack_outputs`: what make e2e-deployed reads from a deployed stack (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from infra import API_STACK_NAME, DATA_STACK_NAME
from infra.stack_outputs import main


def _stack_with_outputs(name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_prints_the_api_url_and_the_master_key(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    _stack_with_outputs(API_STACK_NAME, {"ApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/prod/"})
    _stack_with_outputs(DATA_STACK_NAME, {"MasterKeySecretName": "openai-gateway/master-key"})
    boto3.client("secretsmanager").create_secret(Name="openai-gateway/master-key", SecretString="sk-deployed")

    assert main(["api-url"]) == 0
    assert capsys.readouterr().out.strip() == "https://abc.execute-api.us-east-1.amazonaws.com/prod"
    assert main(["master-key"]) == 0
    assert capsys.readouterr().out.strip() == "sk-deployed"


def test_a_missing_output_says_to_deploy_first(aws: None) -> None:
    _stack_with_outputs(API_STACK_NAME, {"Other": "x"})
    with pytest.raises(SystemExit) as exited:
        main(["api-url"])
    assert "make deploy" in str(exited.value)


def test_no_stack_ends_with_one_line_naming_the_region(aws: None) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["api-url"])
    message = str(exited.value)
    assert "us-east-1" in message and "make deploy" in message and "\n" not in message
