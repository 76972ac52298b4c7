"""The two stacks and the app wiring, with cdk-nag (AwsSolutions) checks.

`OpenAIGatewayData` holds the stateful resources (RETAINed); `OpenAIGatewayApi` holds the
API, the functions and their roles, and can be destroyed and redeployed freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks
from constructs import Construct, IConstruct
from gateway import routes
from gateway.runtime import resources

from infra import API_STACK_NAME, DATA_STACK_NAME
from infra.api import GatewayApi
from infra.bedrock import BedrockBatchRole, nag_wildcards
from infra.bedrock_config import bedrock_deployments
from infra.config import RETENTION_DAY_NAMES, GatewayConfig
from infra.functions import GatewayFunctions, bucket_prefixes
from infra.monitoring import AlarmTopic, GatewayMonitoring
from infra.stateful import DataRefs, StatefulResources

DESCRIPTION = "OpenAI-compatible Batches and Files API gateway"
_PROFILE_REASON = "A cross-region inference profile's model, in the regions the profile routes to"


def acknowledge(construct: IConstruct, *rules: tuple[str, str]) -> None:
    """cdk-nag 3 suppressions: (rule id, one-line reason), on the construct and its children."""
    cdk.Validations.of(construct).acknowledge(
        *(cdk.Acknowledgment(id=rule, reason=reason) for rule, reason in rules)
    )


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{DESCRIPTION}: stateful resources (retained)",
            termination_protection=True,
        )
        self.data = StatefulResources(self, "Data")
        self.refs = self.data.export(self)
        cdk.CfnOutput(self, "TableName", value=self.data.table.table_name)
        cdk.CfnOutput(self, "BucketName", value=self.data.bucket.bucket_name)
        for spec in self.data.secret_specs.values():
            # The name only: values never leave Secrets Manager.
            cdk.CfnOutput(self, f"{spec.construct_id}SecretName", value=spec.name)
        acknowledge(
            self.data.bucket,
            (
                "AwsSolutions-S1",
                "Transient objects (upload parts, cached content) accessed only by the functions",
            ),
        )
        for capability, secret in self.data.secrets.items():
            acknowledge(secret, ("AwsSolutions-SMG4", self.data.secret_specs[capability].no_rotation_reason))


class ApiStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataStack,
        config: GatewayConfig,
    ) -> None:
        super().__init__(scope, construct_id, description=f"{DESCRIPTION}: API and functions")
        self.add_stack_dependency(data, "imports the data stack's exports")
        deployments = bedrock_deployments(config.providers)
        self.bedrock = (
            BedrockBatchRole(self, "BedrockBatch", deployments=deployments, bucket_arn=data.refs.bucket_arn)
            if deployments
            else None
        )
        self.functions = GatewayFunctions(
            self, "Functions", data=data.refs, config=config, bedrock=self.bedrock
        )
        self.gateway = GatewayApi(
            self,
            "Gateway",
            functions=dict(self.functions.by_route),
            config=config,
            log_retention=logs.RetentionDays[RETENTION_DAY_NAMES[config.log_retention_days]],
        )
        self.alarm_topic = AlarmTopic(self, "Alarms", email=config.alarm_email)
        self.monitoring = GatewayMonitoring(
            self,
            "Monitoring",
            api=self.gateway.api,
            access_logs=self.gateway.access_logs,
            functions=self.functions.by_name,
            events=self.functions.events,
            table_name=data.refs.table_name,
            config=config,
            topic=self.alarm_topic.topic,
        )
        cdk.CfnOutput(self, "ApiUrl", value=self.gateway.api.url, description="Clients use <ApiUrl>v1/...")
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.alarm_topic.topic.topic_arn,
            description="Every alarm notifies this SNS topic: subscribe to it (or set alarm_email)",
        )
        cdk.CfnOutput(
            self,
            "DashboardName",
            value=self.monitoring.dashboard_name,
            description="The CloudWatch dashboard (README: Dashboard)",
        )
        cdk.CfnOutput(
            self,
            "EventBusName",
            value=self.functions.events.bus.event_bus_name,
            description="Batch events (source openai-gateway): route them with EventBridge rules",
        )
        self._acknowledge_nag(data.refs)

    def _acknowledge_nag(self, data: DataRefs) -> None:
        for api_part in (self.gateway.api, *self.gateway.path_stacks.values()):
            self._acknowledge_api_nag(api_part)
        self._acknowledge_function_nag(data)
        acknowledge(
            self.alarm_topic.topic,
            (
                "AwsSolutions-SNS2",
                "CloudWatch alarms cannot publish to the AWS-managed SNS key; notices hold no secret",
            ),
        )

    def _acknowledge_api_nag(self, api_part: IConstruct) -> None:
        acknowledge(
            api_part,
            ("AwsSolutions-APIG2", "Requests are validated in the functions (pydantic models)"),
            ("AwsSolutions-APIG3", "No WAF: stage throttling and per-key checks in the functions"),
            (
                "AwsSolutions-APIG4",
                "Authentication is done in the functions against hashed virtual keys and the master key",
            ),
            (
                "AwsSolutions-COG4",
                "Authentication is done in the functions against hashed virtual keys and the master key",
            ),
            (
                "AwsSolutions-APIG6",
                "Execution logging needs an account-wide API Gateway role; access logs and X-Ray are on",
            ),
        )

    def _acknowledge_function_nag(self, data: DataRefs) -> None:
        for function in self.functions.by_name.values():
            acknowledge(
                function,
                (
                    "AwsSolutions-L1",
                    "Runtime from python_version (cdk.json): byte code compiled by that CPython at deploy",
                ),
            )
        bucket_capabilities = {routes.BUCKET_READ, routes.BUCKET_WRITE, routes.BUCKET_DELETE}
        for name, role in self.functions.roles.items():
            rules = [
                (
                    "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments/PutTelemetryRecords have no resource scope",
                )
            ]
            if self.functions.grants[name] & bucket_capabilities:
                rules += [
                    (
                        f"AwsSolutions-IAM5[Resource::{data.bucket_arn_export}/{prefix}*]",
                        "Object access is limited to a gateway key prefix",
                    )
                    for prefix in bucket_prefixes(name)
                ]
            if self.functions.grants[name] & routes.KEPT_OBJECT_CAPABILITIES:
                rules.append(
                    (
                        f"AwsSolutions-IAM5[Resource::{data.bucket_arn_export}/{resources.KEPT_FILES_PREFIX}*]",
                        "Object access is limited to the gateway-kept files' key prefix",
                    )
                )
            if self.bedrock is not None:
                rules += self._bedrock_rules(self.functions.grants[name], data.bucket_arn_export)
            acknowledge(role, *rules)
        if self.bedrock is not None:
            _, models = nag_wildcards(self.bedrock.deployments)
            acknowledge(
                self.bedrock.role,
                *(
                    (
                        f"AwsSolutions-IAM5[Resource::{data.bucket_arn_export}/{prefix}*]",
                        "Bedrock reads and writes its jobs' objects under one prefix",
                    )
                    for prefix in (resources.BEDROCK_INPUT_PREFIX, resources.BEDROCK_OUTPUT_PREFIX)
                ),
                *((f"AwsSolutions-IAM5[Resource::{arn}]", _PROFILE_REASON) for arn in models),
            )

    def _bedrock_rules(self, grants: frozenset[str], bucket_export: str) -> list[tuple[str, str]]:
        assert self.bedrock is not None
        jobs, models = nag_wildcards(self.bedrock.deployments)
        rules = []
        if grants & {routes.BEDROCK_CREATE_JOB, routes.BEDROCK_GET_JOB, routes.BEDROCK_STOP_JOB}:
            rules += [
                (f"AwsSolutions-IAM5[Resource::{arn}]", "Job ids are Bedrock's, known after create")
                for arn in jobs
            ]
        if routes.BEDROCK_CREATE_JOB in grants:
            rules += [(f"AwsSolutions-IAM5[Resource::{arn}]", _PROFILE_REASON) for arn in models]
        for capability, prefix in (
            (routes.BEDROCK_RECORDS_WRITE, resources.BEDROCK_INPUT_PREFIX),
            (routes.BEDROCK_RESULTS_READ, resources.BEDROCK_OUTPUT_PREFIX),
        ):
            if capability in grants:
                rules.append(
                    (
                        f"AwsSolutions-IAM5[Resource::{bucket_export}/{prefix}*]",
                        "Bedrock jobs' objects, one prefix",
                    )
                )
        return rules


@dataclass
class GatewayApp:
    data: DataStack
    api: ApiStack
    config: GatewayConfig


def build(app: cdk.App, *, nag: bool = True) -> GatewayApp:
    """Both stacks, configured from the app's context; `nag` adds the AwsSolutions checks."""
    config = GatewayConfig.from_context(app.node)
    data = DataStack(app, DATA_STACK_NAME)
    api = ApiStack(app, API_STACK_NAME, data=data, config=config)
    cdk.Tags.of(app).add("project", "openai-gateway")
    if nag:
        enable_nag(app)
    return GatewayApp(data, api, config)


def enable_nag(app: cdk.App) -> AwsSolutionsChecks:
    checks = AwsSolutionsChecks(app)
    cdk.Validations.of(app).add_plugins(checks)
    return checks


def nag_errors(scope: IConstruct) -> list[str]:
    """Unsuppressed AwsSolutions errors in `scope`, as 'rule at construct path' (empty when clean)."""
    report = AwsSolutionsChecks().validate_scope(scope)
    return [
        f"{violation.rule_name} at {resource.construct_path}: {violation.description}"
        for violation in report.violations
        if violation.severity == "error"
        for resource in violation.violating_resources
    ]
