"""One Lambda function per route and per asynchronous function, each with its own role.

Every role holds only the statements implied by its route's `grants` (see CAPABILITY_ACTIONS),
written as explicit `iam.PolicyStatement`s so that, e.g., "the retrieve function cannot
delete" is visible in the template and asserted by the tests. Each capability names exact
actions, and tests/infra/test_grants_match_code.py checks them against the calls each
function's code makes; a function that writes the table without `table:key-items` gets an
explicit Deny on `key#…` items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct
from gateway import routes
from gateway.runtime import resources

from infra.bedrock import CAPABILITY_ACTIONS as BEDROCK_CAPABILITY_ACTIONS
from infra.bedrock import BedrockBatchRole
from infra.bundling import dependency_layer_code, function_code
from infra.config import RETENTION_DAY_NAMES, GatewayConfig
from infra.events import GatewayEvents
from infra.stateful import SECRET_SPECS, DataRefs

RUNTIMES: dict[str, lambda_.Runtime] = {
    "3.11": lambda_.Runtime.PYTHON_3_11,
    "3.12": lambda_.Runtime.PYTHON_3_12,
    "3.13": lambda_.Runtime.PYTHON_3_13,
}
# With SnapStart, API Gateway invokes this alias of each route function's latest published
# version: SnapStart applies to published versions only, never to $LATEST.
SNAPSTART_ALIAS = "live"
ARCHITECTURES: dict[str, lambda_.Architecture] = {
    "arm64": lambda_.Architecture.ARM_64,
    "x86_64": lambda_.Architecture.X86_64,
}
SERVICE_NAME = "openai-gateway"
METRICS_NAMESPACE = "OpenAIGateway"

# The environment variable through which a caller finds each asynchronous function.
ASYNC_FUNCTION_ENV: dict[str, str] = {
    "file_transfer": resources.ENV_TRANSFER_FUNCTION,
    "batch_watcher": resources.ENV_WATCHER_FUNCTION,
}
INVOKE_PREFIX = "invoke:"

# Resource kinds a capability's actions apply to.
TABLE_ITEMS = "table-items"  # the table's items
IDEMPOTENCY_ITEMS = "idempotency-items"  # the table's `idempotency#…` items only
INDEX_PREFIX = "table-index:"  # + index name: Query on that index only
BUCKET_OBJECTS = "bucket-objects"  # objects under the gateway's key prefixes
BUCKET_LIST = "bucket-list"  # the bucket, ListBucket limited to those prefixes
KEPT_OBJECTS = "kept-objects"  # objects under the kept files' prefix
KEPT_LIST = "kept-list"  # the bucket, ListBucket limited to that prefix
PLAN_OBJECTS = "plan-objects"  # objects under the batch plans' prefix
EVENT_BUS = "event-bus"  # the gateway's EventBridge bus
WEBHOOK_QUEUE = "webhook-queue"  # the webhook delivery queue
WEBHOOK_DEAD_LETTERS = "webhook-dead-letters"  # its dead-letter queue

ITEM_WRITE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
# Partition key patterns for dynamodb:LeadingKeys (the table's partition key is `pk`).
KEY_ITEMS_PATTERN = "key#*"
IDEMPOTENCY_ITEMS_PATTERN = "idempotency#*"

CAPABILITY_ACTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    routes.TABLE_GET: {TABLE_ITEMS: ("dynamodb:GetItem",)},
    routes.TABLE_PUT: {TABLE_ITEMS: ("dynamodb:PutItem",)},
    routes.TABLE_UPDATE: {TABLE_ITEMS: ("dynamodb:UpdateItem",)},
    routes.TABLE_DELETE: {TABLE_ITEMS: ("dynamodb:DeleteItem",)},
    routes.TABLE_BATCH_WRITE: {TABLE_ITEMS: ("dynamodb:BatchWriteItem",)},
    routes.TABLE_BATCH_GET: {TABLE_ITEMS: ("dynamodb:BatchGetItem",)},
    routes.TABLE_QUERY_BY_OWNER: {INDEX_PREFIX + resources.INDEX_BY_OWNER: ("dynamodb:Query",)},
    routes.TABLE_QUERY_BY_KIND: {INDEX_PREFIX + resources.INDEX_BY_KIND: ("dynamodb:Query",)},
    routes.TABLE_QUERY_BY_WATCH: {INDEX_PREFIX + resources.INDEX_BY_WATCH: ("dynamodb:Query",)},
    # No action of its own: it lifts the Deny on `key#…` writes (see GatewayFunctions.statements).
    routes.TABLE_KEY_ITEMS: {},
    routes.TABLE_IDEMPOTENCY: {
        IDEMPOTENCY_ITEMS: (
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        )
    },
    routes.BUCKET_READ: {BUCKET_OBJECTS: ("s3:GetObject",)},
    routes.BUCKET_LIST: {BUCKET_LIST: ("s3:ListBucket",)},
    # Covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload too.
    routes.BUCKET_WRITE: {BUCKET_OBJECTS: ("s3:PutObject",)},
    routes.BUCKET_ABORT_UPLOAD: {BUCKET_OBJECTS: ("s3:AbortMultipartUpload",)},
    routes.BUCKET_DELETE: {BUCKET_OBJECTS: ("s3:DeleteObject",)},
    routes.KEPT_READ: {KEPT_OBJECTS: ("s3:GetObject",)},
    routes.KEPT_LIST: {KEPT_LIST: ("s3:ListBucket",)},
    routes.KEPT_WRITE: {KEPT_OBJECTS: ("s3:PutObject",)},
    routes.KEPT_ABORT_UPLOAD: {KEPT_OBJECTS: ("s3:AbortMultipartUpload",)},
    routes.KEPT_DELETE: {KEPT_OBJECTS: ("s3:DeleteObject",)},
    routes.PLAN_FILES_READ: {PLAN_OBJECTS: ("s3:GetObject",)},
    routes.PLAN_FILES_WRITE: {PLAN_OBJECTS: ("s3:PutObject",)},
    routes.EVENTS_PUT: {EVENT_BUS: ("events:PutEvents",)},
    routes.QUEUE_WEBHOOKS_SEND: {WEBHOOK_QUEUE: ("sqs:SendMessage",)},
    routes.QUEUE_WEBHOOKS_DLQ_SEND: {WEBHOOK_DEAD_LETTERS: ("sqs:SendMessage",)},
}
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
INVOKE_ACTIONS = ("lambda:InvokeFunction",)
BUCKET_PREFIXES = (resources.UPLOAD_PARTS_PREFIX, resources.CACHED_CONTENT_PREFIX)
# Functions whose bucket statements cover fewer key prefixes than BUCKET_PREFIXES.
FUNCTION_BUCKET_PREFIXES: dict[str, tuple[str, ...]] = {
    # Caches provider content and presigns GETs of it (signed with this role): never upload parts.
    "files_content": (resources.CACHED_CONTENT_PREFIX,),
    "files_delete": (resources.CACHED_CONTENT_PREFIX,),  # drops the cached copy with the file
    # The Uploads API and the transfer never see cached content.
    "uploads_add_part": (resources.UPLOAD_PARTS_PREFIX,),
    "uploads_complete": (resources.UPLOAD_PARTS_PREFIX,),
    "uploads_cancel": (resources.UPLOAD_PARTS_PREFIX,),
    "file_transfer": (resources.UPLOAD_PARTS_PREFIX,),
    "transfer_failed": (resources.UPLOAD_PARTS_PREFIX,),
    # the parts of a transfer it ends; a batch plan's files (listed and deleted at its finish)
    "batch_watcher": (resources.UPLOAD_PARTS_PREFIX, resources.PLAN_FILES_PREFIX),
}


def bucket_prefixes(function_name: str) -> tuple[str, ...]:
    """The key prefixes a function's bucket capabilities apply to."""
    return FUNCTION_BUCKET_PREFIXES.get(function_name, BUCKET_PREFIXES)


# Powertools' switch: the Tracer (gateway.observability.tracing) is off where this is "true".
TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
# What Lambda needs to send traces (active tracing), as the L2 `tracing` option grants it.
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


@dataclass(frozen=True)
class FunctionSpec:
    """What the stack needs from a Route or an AsyncFunction."""

    name: str
    handler: str
    grants: frozenset[str]
    memory_mb: int
    timeout_seconds: int
    description: str

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def invokes(self) -> tuple[str, ...]:
        return tuple(
            sorted(g.removeprefix(INVOKE_PREFIX) for g in self.grants if g.startswith(INVOKE_PREFIX))
        )


def route_spec(route: routes.Route) -> FunctionSpec:
    return FunctionSpec(
        route.name,
        route.handler,
        route.grants,
        route.memory_mb,
        route.timeout_seconds,
        f"{route.method} {route.path}",
    )


UnroutedFunction = routes.AsyncFunction | routes.ScheduledFunction | routes.QueueConsumer
_UNROUTED_KIND = {
    routes.AsyncFunction: "asynchronous",
    routes.ScheduledFunction: "scheduled",
    routes.QueueConsumer: "queue consumer",
}


def unrouted_spec(function: UnroutedFunction) -> FunctionSpec:
    """A function no route serves: invoked asynchronously, on a schedule or by its queue."""
    return FunctionSpec(
        function.name,
        function.handler,
        function.permissions,
        function.memory_mb,
        function.timeout_seconds,
        f"{function.name} ({_UNROUTED_KIND[type(function)]})",
    )


class GatewayFunctions(Construct):
    """The dependency layer and every function; `by_route` maps route name -> what API Gateway
    invokes (the function, or with SnapStart its alias)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataRefs,
        config: GatewayConfig,
        bedrock: BedrockBatchRole | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self._config = config
        self.events = GatewayEvents(self, "Events")
        self._bedrock = bedrock
        self._check_capabilities()
        self.runtime = RUNTIMES[config.python_version]
        self.architecture = ARCHITECTURES[config.architecture]
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=dependency_layer_code(config.python_version, config.architecture),
            compatible_runtimes=[self.runtime],
            compatible_architectures=[self.architecture],
            description="Runtime dependencies of the gateway functions (functions/requirements.txt)",
        )
        self._code = function_code(config.python_version)
        self.by_name: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.grants: dict[str, frozenset[str]] = {}
        # Asynchronous and scheduled functions first: the routes that invoke them need their names.
        for function in routes.ASYNC_FUNCTIONS:
            self._function(unrouted_spec(function))
        for scheduled in routes.SCHEDULED_FUNCTIONS:
            self._schedule(scheduled, self._function(unrouted_spec(scheduled)))
        for route in routes.ROUTES:
            self._function(route_spec(route))
        for consumer in routes.QUEUE_CONSUMERS:
            self._function(unrouted_spec(consumer)).add_event_source(
                event_sources.SqsEventSource(
                    self.events.queue, batch_size=consumer.batch_size, report_batch_item_failures=True
                )
            )
        self.aliases: dict[str, lambda_.Alias] = {}
        self.by_route = {route.name: self._invoked(route.name) for route in routes.ROUTES}
        for function in routes.ASYNC_FUNCTIONS:
            self._async_invoke_config(function)

    def _snap_start(self, spec: FunctionSpec) -> lambda_.SnapStartConf | None:
        """SnapStart (an option: it is billed) for the route functions, whose cold starts a client
        waits for; not for the asynchronous ones, invoked by name ($LATEST) and waited for by nobody."""
        if self._config.snapstart and any(route.name == spec.name for route in routes.ROUTES):
            return lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
        return None

    def _invoked(self, name: str) -> lambda_.IFunction:
        """What API Gateway invokes: the function, or with SnapStart the alias of its current version."""
        function = self.by_name[name]
        if not self._config.snapstart:
            return function
        alias = lambda_.Alias(
            self,
            f"{function.node.id}Alias",
            alias_name=SNAPSTART_ALIAS,
            version=function.current_version,
            description="The latest published version, restored from its SnapStart snapshot",
        )
        self.aliases[name] = alias
        return alias

    def _check_capabilities(self) -> None:
        known = set(CAPABILITY_ACTIONS) | set(self._data.secret_arns) | set(BEDROCK_CAPABILITY_ACTIONS)
        known |= {INVOKE_PREFIX + f.name for f in routes.ASYNC_FUNCTIONS}
        known |= {INVOKE_PREFIX + f.name for f in routes.SCHEDULED_FUNCTIONS}
        others: list[UnroutedFunction] = [
            *routes.ASYNC_FUNCTIONS,
            *routes.SCHEDULED_FUNCTIONS,
            *routes.QUEUE_CONSUMERS,
        ]
        used = {g for r in routes.ROUTES for g in r.grants} | {g for f in others for g in f.permissions}
        unknown = used - known
        if unknown:
            raise ValueError(
                f"the stack does not know how to grant {sorted(unknown)}: update infra/functions.py"
            )

    def common_environment(self) -> dict[str, str]:
        env = {
            resources.ENV_TABLE_NAME: self._data.table_name,
            resources.ENV_BUCKET_NAME: self._data.bucket_name,
            resources.ENV_PROVIDERS: self._config.providers_json,
            resources.ENV_DEFAULT_PROVIDER: self._config.default_provider,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": self._config.log_level,
        }
        for spec in SECRET_SPECS:
            env[spec.env_var] = self._data.secret_arns[spec.capability]
        if self._config.secrets_ttl_seconds is not None:
            env[resources.ENV_SECRETS_TTL] = str(self._config.secrets_ttl_seconds)
        if self._config.upstream_timeout_seconds is not None:
            env[resources.ENV_UPSTREAM_TIMEOUT] = str(self._config.upstream_timeout_seconds)
        if self._config.model_prices:
            env[resources.ENV_MODEL_PRICES] = json.dumps(self._config.model_prices, sort_keys=True)
        if self._config.default_output_tokens_per_request is not None:
            env[resources.ENV_DEFAULT_OUTPUT_TOKENS] = str(self._config.default_output_tokens_per_request)
        if self._bedrock is not None:
            env[resources.ENV_BEDROCK_ROLE_ARN] = self._bedrock.role.role_arn
        if self._config.loopback_test_endpoints:
            env[resources.ENV_WEBHOOKS_ALLOW_LOOPBACK] = "true"
            if self._config.test_endpoint_host is not None:
                env[resources.ENV_WEBHOOKS_TEST_HOST] = self._config.test_endpoint_host
        return env

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.construct_id}Logs",
            retention=_retention(self._config.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # The statements inline in the role, not in a separate AWS::IAM::Policy: one resource per
        # function fewer (the API stack counts against CloudFormation's 500: tests/infra/
        # test_snapstart.py). So X-Ray's statement is here too, and tracing is set on the L1 below
        # (the L2's `tracing` would add it to a policy of its own).
        access = [
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            ),
            iam.PolicyStatement(actions=list(XRAY_ACTIONS), resources=["*"]),
            *self.statements(spec.grants, bucket_prefixes(spec.name)),
        ]
        role = iam.Role(
            self,
            f"{spec.construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"openai-gateway {spec.name}: {', '.join(sorted(spec.grants)) or 'no data access'}",
            inline_policies={"access": iam.PolicyDocument(statements=access)},
        )
        environment = self.common_environment()
        for capability, (name, value) in self._capability_environment().items():
            if capability in spec.grants:
                environment[name] = value
        for async_name in spec.invokes:
            if async_name in ASYNC_FUNCTION_ENV:  # (an on-failure destination is invoked by Lambda)
                environment[ASYNC_FUNCTION_ENV[async_name]] = self.by_name[async_name].function_name
        if not spec.grants:
            # No AWS call to trace (/health): Lambda's own segment (active tracing) shows the
            # invocation, and without the Tracer a cold start does not load the X-Ray SDK
            # (~100 ms measured, README "Traces").
            environment[TRACE_DISABLED] = "true"
        function = lambda_.Function(
            self,
            spec.construct_id,
            runtime=self.runtime,
            architecture=self.architecture,
            handler=spec.handler,
            code=self._code,
            layers=[self.layer],
            memory_size=spec.memory_mb,
            timeout=cdk.Duration.seconds(spec.timeout_seconds),
            role=role,
            log_group=log_group,
            environment=environment,
            description=f"openai-gateway: {spec.description}",
            snap_start=self._snap_start(spec),
        )
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        self.by_name[spec.name] = function
        self.roles[spec.name] = role
        self.grants[spec.name] = spec.grants
        return function

    def _capability_environment(self) -> dict[str, tuple[str, str]]:
        """The environment variable (name, value) through which a capability's holder finds its resource."""
        return {
            routes.EVENTS_PUT: (resources.ENV_EVENT_BUS_NAME, self.events.bus.event_bus_name),
            routes.QUEUE_WEBHOOKS_SEND: (resources.ENV_WEBHOOK_QUEUE_URL, self.events.queue.queue_url),
            routes.QUEUE_WEBHOOKS_DLQ_SEND: (
                resources.ENV_WEBHOOK_DLQ_URL,
                self.events.dead_letters.queue_url,
            ),
        }

    def _schedule(self, scheduled: routes.ScheduledFunction, function: lambda_.Function) -> None:
        """EventBridge Scheduler runs it every `rate_context` minutes (cdk.json), with a role that
        may invoke that function only (L1: the L2 target also grants every version, `:*`)."""
        minutes = int(getattr(self._config, scheduled.rate_context))
        construct_id = unrouted_spec(scheduled).construct_id
        role = iam.Role(
            self,
            f"{construct_id}SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description=f"openai-gateway: EventBridge Scheduler invokes {scheduled.name}",
            inline_policies={
                "Invoke": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=list(INVOKE_ACTIONS), resources=[function.function_arn])
                    ]
                )
            },
        )
        scheduler.CfnSchedule(
            self,
            f"{construct_id}Schedule",
            schedule_expression=f"rate({minutes} minute{'s' if minutes > 1 else ''})",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=function.function_arn,
                role_arn=role.role_arn,
                # a missed pass is not retried: the next one comes within the interval
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=0),
            ),
            description=f"openai-gateway: {scheduled.name} every {minutes} minute(s)",
        )

    def _async_invoke_config(self, function: routes.AsyncFunction) -> None:
        """Lambda's retries and event age for the function's events, and where a failed event
        goes: the route table's on-failure function (granted as an `invoke:` capability, hence
        L1 here: the L2 destination would add a grant of its own). The alarms that see a record
        lost on the way are in infra/monitoring.py (transfer_failure_lost)."""
        spec = unrouted_spec(function)
        target = self.by_name[function.name]
        destination = None
        if function.on_failure:
            failure_arn = self.by_name[function.on_failure].function_arn
            destination = lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=failure_arn)
            )
        config = lambda_.CfnEventInvokeConfig(
            self,
            f"{spec.construct_id}AsyncConfig",
            function_name=target.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=function.retry_attempts,
            maximum_event_age_in_seconds=function.max_event_age_seconds,
            destination_config=destination,
        )
        # Lambda checks that the role may invoke the destination when the config is created.
        config.node.add_dependency(self.roles[function.name])

    def statements(
        self, grants: Iterable[str], prefixes: tuple[str, ...] = BUCKET_PREFIXES
    ) -> list[iam.PolicyStatement]:
        """The least-privilege statements for a set of capabilities, merged per resource kind."""
        table_arn = self._data.table_arn
        kind_resources: dict[str, list[str]] = {
            TABLE_ITEMS: [table_arn],
            IDEMPOTENCY_ITEMS: [table_arn],
            BUCKET_OBJECTS: self._data.object_arns(prefixes),
            BUCKET_LIST: [self._data.bucket_arn],
            KEPT_OBJECTS: self._data.object_arns((resources.KEPT_FILES_PREFIX,)),
            KEPT_LIST: [self._data.bucket_arn],
            PLAN_OBJECTS: self._data.object_arns((resources.PLAN_FILES_PREFIX,)),
            EVENT_BUS: [self.events.bus.event_bus_arn],
            WEBHOOK_QUEUE: [self.events.queue.queue_arn],
            WEBHOOK_DEAD_LETTERS: [self.events.dead_letters.queue_arn],
        }
        for index in resources.TABLE_INDEXES:
            kind_resources[INDEX_PREFIX + index] = [f"{table_arn}/index/{index}"]
        actions_by_kind: dict[str, set[str]] = {}
        statements: list[iam.PolicyStatement] = []
        for grant in sorted(grants):
            if grant in self._data.secret_arns:
                statements.append(
                    iam.PolicyStatement(
                        actions=list(SECRET_ACTIONS), resources=[self._data.secret_arns[grant]]
                    )
                )
            elif grant in BEDROCK_CAPABILITY_ACTIONS:
                continue  # below, when a bedrock deployment is configured
            elif grant.startswith(INVOKE_PREFIX):
                target = self.by_name[grant.removeprefix(INVOKE_PREFIX)]
                statements.append(
                    iam.PolicyStatement(actions=list(INVOKE_ACTIONS), resources=[target.function_arn])
                )
            else:
                for kind, granted in CAPABILITY_ACTIONS[grant].items():
                    actions_by_kind.setdefault(kind, set()).update(granted)
        for kind, actions in sorted(actions_by_kind.items()):
            statements.append(
                iam.PolicyStatement(
                    actions=sorted(actions),
                    resources=kind_resources[kind],
                    conditions=_conditions(kind, prefixes),
                )
            )
        if self._bedrock is not None:
            statements += self._bedrock.statements(frozenset(grants))
        writes = sorted(set(ITEM_WRITE_ACTIONS) & actions_by_kind.get(TABLE_ITEMS, set()))
        if writes and routes.TABLE_KEY_ITEMS not in grants:
            statements.append(key_items_write_denial(table_arn))
        return statements


def _conditions(kind: str, prefixes: tuple[str, ...]) -> dict[str, Any] | None:
    if kind == BUCKET_LIST:
        return {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}}
    if kind == KEPT_LIST:
        return {"StringLike": {"s3:prefix": [f"{resources.KEPT_FILES_PREFIX}*"]}}
    if kind == IDEMPOTENCY_ITEMS:
        # ForAllValues: every partition key the request names; each of these single-item
        # actions always names one, so the set is never empty (an empty set would pass).
        return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [IDEMPOTENCY_ITEMS_PATTERN]}}
    return None


def key_items_write_denial(table_arn: str) -> iam.PolicyStatement:
    """Deny every item write that names a `key#…` partition key.

    ForAnyValue: one matching key among the request's (a BatchWriteItem names several) is
    enough. An explicit Deny wins over any Allow, so a later broad grant cannot lift it; every
    item write (Put/Update/Delete/BatchWriteItem) carries its partition keys in LeadingKeys.
    """
    return iam.PolicyStatement(
        effect=iam.Effect.DENY,
        actions=list(ITEM_WRITE_ACTIONS),
        resources=[table_arn],
        conditions={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [KEY_ITEMS_PATTERN]}},
    )


def _retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[RETENTION_DAY_NAMES[days]]
