"""No secret value, in any form, reaches a template, an environment or an output."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.conftest import Synth
from tests.infra.template_tools import resources_of, walk

# OpenAI-style keys and AWS access key ids.
KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{6,}|(?<![A-Z0-9])AKIA[0-9A-Z]{16}")


@pytest.fixture(params=["data", "api"])
def template(request: pytest.FixtureRequest, synth: Synth) -> dict:
    return synth.data_json if request.param == "data" else synth.api_json


def test_no_literal_secret_string(template: dict) -> None:
    keys = [value for path, value in walk(template) if path.endswith("#key")]
    assert "SecretString" not in keys
    assert "SecretStringTemplate" in keys or "Fn::ImportValue" in keys  # the walk reached the secrets


def test_no_dynamic_reference_to_a_secret_value(template: dict) -> None:
    for path, value in walk(template):
        if isinstance(value, str):
            assert "{{resolve:secretsmanager" not in value, path


def test_no_string_looks_like_a_key(template: dict) -> None:
    checked = 0
    for path, value in walk(template):
        if not isinstance(value, str) or "/Metadata" in path or path.endswith("S3Key"):
            continue
        checked += 1
        assert not KEY_LIKE.search(value), f"{path}: {value[:20]}..."
    assert checked > 0


def test_function_environment_values_are_names_or_settings(synth: Synth) -> None:
    for function in resources_of(synth.api_json, "AWS::Lambda::Function").values():
        for name, value in function["Properties"]["Environment"]["Variables"].items():
            if isinstance(value, dict):  # a reference: a name or an ARN
                assert set(value) <= {"Ref", "Fn::ImportValue", "Fn::GetAtt"}, name
                if "Fn::ImportValue" in value:
                    assert value["Fn::ImportValue"].endswith(("Name", "Arn")), name
                continue
            assert not KEY_LIKE.search(value), name
            assert "api_key" not in value.lower(), name


def test_key_pattern_catches_keys() -> None:
    assert KEY_LIKE.search("sk-proj-abcdefghijkl")
    assert KEY_LIKE.search("AKIAABCDEFGHIJKLMNOP")
    assert not KEY_LIKE.search("https://api.openai.com/v1")


def test_outputs_hold_no_secret_value(synth: Synth) -> None:
    for template in (synth.data_json, synth.api_json):
        for name, output in template.get("Outputs", {}).items():
            rendered = json.dumps(output["Value"])
            assert "SecretString" not in rendered and "resolve:secretsmanager" not in rendered, name
