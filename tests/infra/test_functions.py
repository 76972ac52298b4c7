"""One function per route and per asynchronous function, configured from the route table."""

from __future__ import annotations

import json

from gateway import routes
from gateway.runtime import resources

from tests.infra.conftest import Synth
from tests.infra.template_tools import (
    as_list,
    functions_by_handler,
    resources_of,
    role_id_of,
    statements_of_role,
)

SPECS: list[routes.Route | routes.AsyncFunction | routes.ScheduledFunction | routes.QueueConsumer] = [
    *routes.ROUTES,
    *routes.ASYNC_FUNCTIONS,
    *routes.SCHEDULED_FUNCTIONS,
    *routes.QUEUE_CONSUMERS,
]
TRANSFER = next(f for f in routes.ASYNC_FUNCTIONS if f.name == "file_transfer")
COMMON_ENV = {
    resources.ENV_TABLE_NAME,
    resources.ENV_BUCKET_NAME,
    resources.ENV_MASTER_KEY_SECRET,
    resources.ENV_PROVIDER_KEYS_SECRET,
    resources.ENV_KEY_PEPPER_SECRET,
    resources.ENV_PROVIDERS,
    resources.ENV_DEFAULT_PROVIDER,
    resources.ENV_BEDROCK_ROLE_ARN,  # the shipped cdk.json has a bedrock deployment
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_METRICS_NAMESPACE",
}
# A capability's resource, found through this variable by the functions that hold it.
CAPABILITY_ENV = {
    routes.EVENTS_PUT: resources.ENV_EVENT_BUS_NAME,
    routes.QUEUE_WEBHOOKS_SEND: resources.ENV_WEBHOOK_QUEUE_URL,
    routes.QUEUE_WEBHOOKS_DLQ_SEND: resources.ENV_WEBHOOK_DLQ_URL,
}
OPTIONAL_ENV = {resources.ENV_SECRETS_TTL, resources.ENV_UPSTREAM_TIMEOUT}


def test_exactly_one_function_per_route_and_async_function(synth: Synth) -> None:
    functions = resources_of(synth.api_json, "AWS::Lambda::Function")
    assert len(functions) == len(SPECS)
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == sorted(spec.handler for spec in SPECS)
    assert all(h.startswith("handlers.") and h.endswith(".handler") for h in handlers)


def test_memory_and_timeout_come_from_the_route_table(synth: Synth) -> None:
    functions = functions_by_handler(synth.api_json)
    for spec in SPECS:
        _, properties = functions[spec.handler]
        assert properties["MemorySize"] == spec.memory_mb, spec.name
        assert properties["Timeout"] == spec.timeout_seconds, spec.name
    assert functions[TRANSFER.handler][1]["Timeout"] == 900


def test_runtime_architecture_tracing_and_shared_layer(synth: Synth) -> None:
    layers = resources_of(synth.api_json, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    ((layer_id, layer),) = layers.items()
    runtime = f"python{synth.gateway.config.python_version}"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    code_keys = set()
    for handler, (_, properties) in functions_by_handler(synth.api_json).items():
        assert properties["Runtime"] == runtime, handler
        assert properties["Architectures"] == ["arm64"], handler
        assert properties["TracingConfig"] == {"Mode": "Active"}, handler
        assert properties["Layers"] == [{"Ref": layer_id}], handler
        code_keys.add(properties["Code"]["S3Key"])
    assert len(code_keys) == 1, "all functions share one code asset"
    assert code_keys != {layer["Properties"]["Content"]["S3Key"]}


def test_the_tracer_is_off_only_where_a_function_calls_no_aws_service(synth: Synth) -> None:
    # Lambda still records each invocation (active tracing); the Tracer would only add the X-Ray
    # SDK's import to a cold start. A function without grants calls nothing on AWS
    # (test_grants_match_code checks the grants against the calls).
    functions = functions_by_handler(synth.api_json)
    specs = [*routes.ROUTES, *routes.ASYNC_FUNCTIONS]
    untraced = set()
    for spec in specs:
        environment = functions[spec.handler][1]["Environment"]["Variables"]
        if environment.get("POWERTOOLS_TRACE_DISABLED") == "true":
            untraced.add(spec.name)
    grants = {spec.name: getattr(spec, "grants", spec.permissions) for spec in specs}
    assert untraced == {name for name, granted in grants.items() if not granted}
    assert "health" in untraced and "batches_create" not in untraced


def test_each_function_logs_to_its_own_group_with_retention(synth: Synth) -> None:
    groups = resources_of(synth.api_json, "AWS::Logs::LogGroup")
    used = []
    for handler, (_, properties) in functions_by_handler(synth.api_json).items():
        group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id]["Properties"]["RetentionInDays"] == synth.context["log_retention_days"], (
            handler
        )
        used.append(group_id)
    assert len(set(used)) == len(used)


def test_environment_holds_only_the_allowed_variables(synth: Synth) -> None:
    functions = functions_by_handler(synth.api_json)
    transfer_id = functions[TRANSFER.handler][0]
    watcher_id = functions[routes.SCHEDULED_FUNCTIONS[0].handler][0]
    for spec in SPECS:
        variables = functions[spec.handler][1]["Environment"]["Variables"]
        grants = spec.grants if isinstance(spec, routes.Route) else spec.permissions
        invokes = routes.INVOKE_TRANSFER in grants
        expected = COMMON_ENV | ({resources.ENV_TRANSFER_FUNCTION} if invokes else set())
        if routes.INVOKE_WATCHER in grants:
            expected |= {resources.ENV_WATCHER_FUNCTION}
            assert variables[resources.ENV_WATCHER_FUNCTION] == {"Ref": watcher_id}
        expected |= {env for capability, env in CAPABILITY_ENV.items() if capability in grants}
        expected |= set() if grants else {"POWERTOOLS_TRACE_DISABLED"}  # nothing on AWS to trace
        assert expected <= set(variables) <= expected | OPTIONAL_ENV, spec.name
        if invokes:
            assert variables[resources.ENV_TRANSFER_FUNCTION] == {"Ref": transfer_id}
        assert variables["POWERTOOLS_SERVICE_NAME"] == "openai-gateway"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "OpenAIGateway"
        assert variables["POWERTOOLS_LOG_LEVEL"] == synth.context["log_level"]
        assert variables[resources.ENV_DEFAULT_PROVIDER] == synth.context["default_provider"]
        assert json.loads(variables[resources.ENV_PROVIDERS]) == synth.context["providers"]


def test_only_batches_create_gets_the_watcher_function_name_and_may_invoke_it(synth: Synth) -> None:
    """A planned batch starts at once: batches_create invokes the watcher (Event) for it."""
    functions = functions_by_handler(synth.api_json)
    watcher_arn = {"Fn::GetAtt": [functions[routes.SCHEDULED_FUNCTIONS[0].handler][0], "Arn"]}
    with_name, invokers = set(), set()
    for handler, (_, properties) in functions.items():
        if resources.ENV_WATCHER_FUNCTION in properties["Environment"]["Variables"]:
            with_name.add(handler)
        for statement in statements_of_role(synth.api_json, role_id_of(properties)):
            if (
                "lambda:InvokeFunction" in as_list(statement["Action"])
                and statement["Resource"] == watcher_arn
            ):
                invokers.add(handler)
    assert with_name == invokers == {routes.route("batches_create").handler}


def test_only_uploads_complete_gets_the_transfer_function_name(synth: Synth) -> None:
    with_name = {
        handler
        for handler, (_, properties) in functions_by_handler(synth.api_json).items()
        if resources.ENV_TRANSFER_FUNCTION in properties["Environment"]["Variables"]
    }
    assert with_name == {routes.route("uploads_complete").handler}
