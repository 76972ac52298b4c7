"""Synthesizes the CDK app once per test session (both stacks, cdk-nag on).

`api_json`/`api` is the API stack with its nested stacks merged in (template_tools.flattened):
what the tests check does not depend on which template a resource lives in. `templates` holds
each template as CloudFormation receives it (the resource budget counts those).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before jsii starts node: silence the end-of-life banner of the machine's Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra import DATA_STACK_NAME, REPO_ROOT
from infra.stack import GatewayApp, build
from tests.infra.template_tools import flattened


@dataclass
class Synth:
    app: cdk.App
    gateway: GatewayApp
    outdir: Path
    context: dict[str, Any]
    data_json: dict[str, Any]
    api_json: dict[str, Any]
    data: Template
    api: Template
    data_termination_protection: bool
    validation_report: dict[str, Any]
    # Template file name -> template: the two stacks and every nested stack, unmerged.
    templates: dict[str, dict[str, Any]]


def cdk_context() -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    context = cdk_context()
    # Write the validation report instead of raising, so test_nag shows the findings.
    context["@aws-cdk/core:failSynthOnValidationErrors"] = False
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context=context)
    gateway = build(app, nag=True)
    assembly = app.synth()
    data_artifact = assembly.get_stack_by_name(DATA_STACK_NAME)
    report_path = outdir / "validation-report.json"
    api_json = flattened(outdir, gateway.api)
    yield Synth(
        app=app,
        gateway=gateway,
        outdir=outdir,
        context=context,
        data_json=data_artifact.template,
        api_json=api_json,
        data=Template.from_json(data_artifact.template),
        api=Template.from_json(api_json),
        data_termination_protection=bool(data_artifact.termination_protection),
        validation_report=json.loads(report_path.read_text()) if report_path.exists() else {},
        templates=all_templates(outdir, gateway),
    )


def all_templates(outdir: Path, gateway: GatewayApp) -> dict[str, dict[str, Any]]:
    templates = {}
    for stack in (gateway.data, gateway.api):
        templates[stack.template_file] = json.loads((outdir / stack.template_file).read_text())
        for construct in stack.node.find_all():
            if isinstance(construct, cdk.NestedStack):
                templates[construct.template_file] = json.loads(
                    (outdir / construct.template_file).read_text()
                )
    return templates
