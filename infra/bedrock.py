"""Amazon Bedrock batch inference: the service role Bedrock assumes to run the gateway's jobs,
and what the functions that call Bedrock may do.

The role (created when a `bedrock` deployment is configured) may read the bucket's Bedrock input
prefix, write its output prefix and invoke the configured models, nothing else; only Bedrock,
for jobs of this account, may assume it. The functions get the model invocation job actions
their route grants name, and iam:PassRole on this role only, to Bedrock only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct
from gateway import resources, routes

BEDROCK_PRINCIPAL = "bedrock.amazonaws.com"
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# A foundation model id (`anthropic.claude-3-5-haiku-20241022-v1:0`) or a cross-region inference
# profile id (`us.anthropic.claude-…`).
MODEL_ID = re.compile(r"^([a-z]{2,4}\.)?[a-z0-9-]+\.[a-zA-Z0-9.:_-]+$")
_PROFILE_PREFIX = re.compile(r"^[a-z]{2,4}\.(?=[a-z0-9-]+\.)")

# Capability -> Bedrock actions (the PassRole of a create is added beside them).
CAPABILITY_ACTIONS: dict[str, tuple[str, ...]] = {
    # Tags given at create need TagResource too.
    routes.BEDROCK_CREATE_JOB: ("bedrock:CreateModelInvocationJob", "bedrock:TagResource"),
    routes.BEDROCK_GET_JOB: ("bedrock:GetModelInvocationJob",),
    routes.BEDROCK_LIST_JOBS: ("bedrock:ListModelInvocationJobs",),
    routes.BEDROCK_STOP_JOB: ("bedrock:StopModelInvocationJob",),
}


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
                f"provider {name!r}: list the Bedrock models it may run in \"models\" "
                '(alias -> model id, e.g. {"claude-3-5-haiku": "anthropic.claude-3-5-haiku-20241022-v1:0"}): '
                "the service role invokes those only"
            )
        for model_id in models.values():
            if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
                raise BedrockConfigError(f"provider {name!r}: {model_id!r} is not a Bedrock model id")
        found.append(BedrockDeployment(name, region, tuple(sorted(set(models.values())))))
    return found


def model_arns(deployment: BedrockDeployment) -> list[str]:
    """What InvokeModel may name for the deployment's models: the foundation models, and for a
    cross-region inference profile the profile and its model in every region it routes to."""
    region = deployment.region or cdk.Aws.REGION
    partition, account = cdk.Aws.PARTITION, cdk.Aws.ACCOUNT_ID
    arns = []
    for model_id in deployment.model_ids:
        base = _PROFILE_PREFIX.sub("", model_id)
        if base != model_id:
            arns.append(f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}")
            arns.append(f"arn:{partition}:bedrock:*::foundation-model/{base}")
        else:
            arns.append(f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}")
    return arns


def job_arns(deployments: list[BedrockDeployment]) -> list[str]:
    regions = sorted({d.region or cdk.Aws.REGION for d in deployments})
    return [
        f"arn:{cdk.Aws.PARTITION}:bedrock:{region}:{cdk.Aws.ACCOUNT_ID}:model-invocation-job/*"
        for region in regions
    ]


class BedrockBatchRole(Construct):
    """The service role of the gateway's Bedrock batch inference jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployments: list[BedrockDeployment],
        bucket_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployments = deployments
        self.models = sorted({arn for d in deployments for arn in model_arns(d)})
        self.jobs = job_arns(deployments)
        input_prefix, output_prefix = resources.BEDROCK_INPUT_PREFIX, resources.BEDROCK_OUTPUT_PREFIX
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                BEDROCK_PRINCIPAL,
                conditions={
                    "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": self.jobs},
                },
            ),
            description="openai-gateway: Amazon Bedrock batch inference jobs (read input, write output, invoke the configured models)",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{input_prefix}*"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{bucket_arn}/{output_prefix}*"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{input_prefix}*", f"{output_prefix}*"]}},
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=self.models))

    def statements(self, grants: frozenset[str]) -> list[iam.PolicyStatement]:
        """A function's Bedrock statements for its route's grants."""
        statements = []
        for capability in sorted(grants & set(CAPABILITY_ACTIONS)):
            actions = list(CAPABILITY_ACTIONS[capability])
            if capability == routes.BEDROCK_LIST_JOBS:
                targets = ["*"]  # ListModelInvocationJobs has no resource-level permissions
            elif capability == routes.BEDROCK_CREATE_JOB:
                targets = self.jobs + self.models
            else:
                targets = self.jobs
            statements.append(iam.PolicyStatement(actions=actions, resources=targets))
            if capability == routes.BEDROCK_CREATE_JOB:
                statements.append(
                    iam.PolicyStatement(
                        actions=["iam:PassRole"],
                        resources=[self.role.role_arn],
                        conditions={"StringEquals": {"iam:PassedToService": BEDROCK_PRINCIPAL}},
                    )
                )
        return statements
