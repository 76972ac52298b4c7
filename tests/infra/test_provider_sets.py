"""Deployments with one provider: OpenAI alone (the shipped cdk.json, the session synth) or
Azure alone (one extra synth of the same app, without cdk-nag). A placeholder stops `app.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template
from gateway.runtime import resources

from infra import REPO_ROOT
from infra.stack import build
from tests.infra.conftest import Synth, cdk_context

AZURE = {
    "type": "azure",
    "api_base": "https://contoso-eu.openai.azure.com",
    "api_version": "2025-04-01-preview",
}


def _function_environment(providers: dict, default_provider: str) -> dict:
    return {
        "Environment": {
            "Variables": Match.object_like(
                {
                    resources.ENV_PROVIDERS: json.dumps(providers, sort_keys=True, separators=(",", ":")),
                    resources.ENV_DEFAULT_PROVIDER: default_provider,
                }
            )
        }
    }


def test_the_shipped_settings_deploy_openai_and_bedrock(synth: Synth) -> None:
    assert set(synth.context["providers"]) == {"openai", "bedrock"}
    synth.api.has_resource_properties(
        "AWS::Lambda::Function", _function_environment(synth.context["providers"], "openai")
    )


def test_azure_alone_deploys(tmp_path: Path) -> None:
    context = {**cdk_context(), "providers": {"azure": AZURE}, "default_provider": "azure"}
    app = cdk.App(outdir=str(tmp_path), context=context)
    gateway = build(app, nag=False)
    api = Template.from_stack(gateway.api)
    api.has_resource_properties("AWS::Lambda::Function", _function_environment({"azure": AZURE}, "azure"))
    functions = api.find_resources("AWS::Lambda::Function")
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert "openai" not in json.loads(variables[resources.ENV_PROVIDERS])


def test_app_py_stops_with_one_clear_message_on_a_placeholder(tmp_path: Path) -> None:
    placeholder = {**AZURE, "api_base": "https://YOUR-RESOURCE.openai.azure.com"}
    context = {
        "providers": {
            "openai": {"type": "openai", "api_base": "https://api.openai.com/v1"},
            "azure": placeholder,
        }
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "placeholder api_base 'https://YOUR-RESOURCE.openai.azure.com'" in result.stderr
    assert "Traceback" not in result.stderr
