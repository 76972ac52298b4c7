"""The `bedrock` deployments of the configuration, checked at synth (no CDK import: the
commands that only read settings use it too)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# A foundation model id (`anthropic.claude-3-5-haiku-20241022-v1:0`) or a cross-region inference
# profile id (`us.anthropic.claude-…`).
MODEL_ID = re.compile(r"^([a-z]{2,4}\.)?[a-z0-9-]+\.[a-zA-Z0-9.:_-]+$")


class BedrockConfigError(ValueError):
    pass


@dataclass(frozen=True)
class BedrockDeployment:
    name: str
    region: str | None  # None: the stack's region
    model_ids: tuple[str, ...]


def bedrock_deployments(providers: Mapping[str, Any]) -> list[BedrockDeployment]:
    """The `bedrock` deployments of the configuration, checked: the role invokes the models they
    list (`models`: alias -> Bedrock model id), so each lists at least one."""
    found = []
    for name, spec in providers.items():
        if not isinstance(spec, Mapping) or spec.get("type") != "bedrock":
            continue
        region = spec.get("region")
        if region is not None and (not isinstance(region, str) or not REGION.match(region)):
            raise BedrockConfigError(f"provider {name!r}: region {region!r} is not an AWS region name")
        models = spec.get("models") or {}
        if not isinstance(models, Mapping) or not models:
            raise BedrockConfigError(
                f'provider {name!r}: list the Bedrock models it may run in "models" '
                '(alias -> model id, e.g. {"claude-3-5-haiku": "anthropic.claude-3-5-haiku-20241022-v1:0"}): '
                "the service role invokes those only"
            )
        for model_id in models.values():
            if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
                raise BedrockConfigError(f"provider {name!r}: {model_id!r} is not a Bedrock model id")
        found.append(BedrockDeployment(name, region, tuple(sorted(set(models.values())))))
    return found
