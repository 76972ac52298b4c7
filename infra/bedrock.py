"""Amazon Bedrock batch inference: the service role Bedrock assumes to run the gateway's jobs,
and what the functions that call Bedrock may do.

The role (created when a `bedrock` deployment is configured) may read the bucket's Bedrock input
prefix, write its output prefix and invoke the configured models, nothing else; only Bedrock,
for jobs of this account, may assume it. The functions get the model invocation job actions
their route grants name, and iam:PassRole on this role only, to Bedrock only.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct
from gateway import routes
from gateway.runtime import resources

from infra.bedrock_config import BedrockDeployment

# The region prefix of a cross-region inference profile id (`us.` in `us.anthropic.claude-…`).
_PROFILE_PREFIX = re.compile(r"^[a-z]{2,4}\.(?=[a-z0-9-]+\.)")

BEDROCK_PRINCIPAL = "bedrock.amazonaws.com"
# Capability -> Bedrock actions (the PassRole of a create is added beside them).
CAPABILITY_ACTIONS: dict[str, tuple[str, ...]] = {
    # (a create's tags need bedrock:TagResource on the jobs too: added below, with the PassRole)
    routes.BEDROCK_CREATE_JOB: ("bedrock:CreateModelInvocationJob",),
    routes.BEDROCK_GET_JOB: ("bedrock:GetModelInvocationJob",),
    routes.BEDROCK_LIST_JOBS: ("bedrock:ListModelInvocationJobs",),
    routes.BEDROCK_STOP_JOB: ("bedrock:StopModelInvocationJob",),
    routes.BEDROCK_RECORDS_WRITE: ("s3:PutObject",),  # the jobs' records, under the input prefix
    routes.BEDROCK_RESULTS_READ: ("s3:GetObject",),  # the jobs' results, under the output prefix
}


# How cdk-nag shows the pseudo parameters in a finding's resource.
NAG_PSEUDO = {"partition": "<AWS::Partition>", "region": "<AWS::Region>", "account": "<AWS::AccountId>"}


def _pseudo(nag: bool) -> dict[str, str]:
    if nag:
        return NAG_PSEUDO
    return {"partition": cdk.Aws.PARTITION, "region": cdk.Aws.REGION, "account": cdk.Aws.ACCOUNT_ID}


def model_arns(deployment: BedrockDeployment, *, nag: bool = False) -> list[str]:
    """What InvokeModel may name for the deployment's models: the foundation models, and for a
    cross-region inference profile the profile and its model in every region it routes to."""
    pseudo = _pseudo(nag)
    region = deployment.region or pseudo["region"]
    partition, account = pseudo["partition"], pseudo["account"]
    arns = []
    for model_id in deployment.model_ids:
        base = _PROFILE_PREFIX.sub("", model_id)
        if base != model_id:
            arns.append(f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}")
            arns.append(f"arn:{partition}:bedrock:*::foundation-model/{base}")
        else:
            arns.append(f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}")
    return arns


def job_arns(deployments: list[BedrockDeployment], *, nag: bool = False) -> list[str]:
    pseudo = _pseudo(nag)
    regions = sorted({d.region or pseudo["region"] for d in deployments})
    return [
        f"arn:{pseudo['partition']}:bedrock:{region}:{pseudo['account']}:model-invocation-job/*"
        for region in regions
    ]


def nag_wildcards(deployments: list[BedrockDeployment]) -> tuple[list[str], list[str]]:
    """(the jobs' ARNs, the models' ARNs with a wildcard), as cdk-nag names them in IAM5 findings."""
    models = sorted({arn for d in deployments for arn in model_arns(d, nag=True) if "*" in arn})
    return job_arns(deployments, nag=True), models


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
        self.bucket_arn = bucket_arn
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
            description="openai-gateway: Bedrock batch jobs (read input, write output, invoke its models)",
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
            elif capability == routes.BEDROCK_RECORDS_WRITE:
                targets = [f"{self.bucket_arn}/{resources.BEDROCK_INPUT_PREFIX}*"]
            elif capability == routes.BEDROCK_RESULTS_READ:
                targets = [f"{self.bucket_arn}/{resources.BEDROCK_OUTPUT_PREFIX}*"]
            elif capability == routes.BEDROCK_CREATE_JOB:
                targets = self.jobs + self.models
            else:
                targets = self.jobs
            statements.append(iam.PolicyStatement(actions=actions, resources=targets))
            if capability == routes.BEDROCK_CREATE_JOB:
                statements.append(iam.PolicyStatement(actions=["bedrock:TagResource"], resources=self.jobs))
                statements.append(
                    iam.PolicyStatement(
                        actions=["iam:PassRole"],
                        resources=[self.role.role_arn],
                        conditions={"StringEquals": {"iam:PassedToService": BEDROCK_PRINCIPAL}},
                    )
                )
        return statements
