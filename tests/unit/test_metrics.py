# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)
"""Every metric of observability.metric_names emitted where its event happens, with exactly its
dimensions: the EMF lines Powertools' provider writes, read back as CloudWatch reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any

import httpx
import pytest
from gateway.errors import GatewayError
from gateway.observability import metric_names, metrics
from gateway.observability.metric_names import MetricName
from gateway.providers.config import ProviderDeployment
from gateway.providers.openai.client import ProviderClient
from gateway.service import batches, books, settlement, transfer_failure, watcher
from gateway.service.deadline import Deadline
from gateway.storage.id_map import NO_PROVIDER, IdMap, ObjectRecord
from gateway.webhooks import delivery, dispatch, queue
from gateway.webhooks.queue import DeliveryJob
from handlers import files_list, health

from tests.unit.conftest import FakeContext, call, event
from tests.unit.fault_injection.providers import FakeProvider, store_batch
from tests.unit.test_batches_service import FakeBatchesApi, provider  # noqa: F401  (fixture)
from tests.unit.test_create_budget_holds import KEY, _request, budgeted  # noqa: F401  (fixture)
from tests.unit.test_settlement import OUTPUT, CountingReader, finished_batch
from tests.unit.test_uploads import gateway as uploads_gateway  # noqa: F401  (fixture)
from tests.unit.test_uploads import sim  # noqa: F401  (fixture)


@pytest.fixture
def emitted() -> Iterator[list[dict[str, Any]]]:
    with metrics.capture() as lines:
        yield lines


def datapoints(lines: list[dict[str, Any]], metric: MetricName) -> list[tuple[dict[str, str], float]]:
    """(dimensions, value) of each datapoint of `metric`, checked against its declaration."""
    found = []
    for line in lines:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        if metric.name not in declared:
            continue
        assert directive["Namespace"] == metric_names.NAMESPACE
        assert declared[metric.name] == metric.unit
        primary, *rollups = directive["Dimensions"]
        assert sorted(primary) == sorted({"service", *metric.dimensions})
        assert sorted(map(sorted, rollups)) == sorted(sorted({"service", *r}) for r in metric.rollups)
        assert line["service"] == metric_names.SERVICE
        dims = {name: line[name] for name in metric.dimensions}
        values = line[metric.name]
        found += [(dims, float(v)) for v in (values if isinstance(values, list) else [values])]
    return found


def total(lines: list[dict[str, Any]], metric: MetricName, **dimensions: str) -> float:
    return sum(v for dims, v in datapoints(lines, metric) if dims.items() >= dimensions.items())


# The EMF lines ---------------------------------------------------------------------------


def test_one_line_per_dimension_set_counts_summed_and_rollups_declared(
    emitted: list[dict[str, Any]],
) -> None:
    metrics.emit(metric_names.REQUESTS, route="files_list", status_class="2xx")
    metrics.emit(metric_names.REQUESTS, route="files_list", status_class="2xx")
    metrics.emit(metric_names.REQUESTS, route="files_list", status_class="4xx")
    metrics.flush()
    assert len(emitted) == 2
    assert datapoints(emitted, metric_names.REQUESTS) == [
        ({"route": "files_list", "status_class": "2xx"}, 2.0),
        ({"route": "files_list", "status_class": "4xx"}, 1.0),
    ]
    assert emitted[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1] == ["service", "status_class"]
    metrics.flush()
    assert len(emitted) == 2  # flushed once


def test_latencies_are_kept_value_by_value_at_most_99_a_line(emitted: list[dict[str, Any]]) -> None:
    for value in range(250):
        metrics.emit(metric_names.PROVIDER_LATENCY, value, provider="openai")
    metrics.flush()
    assert len(emitted) == 3
    assert sorted(v for _, v in datapoints(emitted, metric_names.PROVIDER_LATENCY)) == list(range(250))


def test_what_a_worker_thread_emitted_is_written_by_the_invocations_flush(
    emitted: list[dict[str, Any]],
) -> None:
    import threading

    worker = threading.Thread(
        target=metrics.emit, args=(metric_names.PROVIDER_LATENCY, 5.0), kwargs={"provider": "openai"}
    )
    worker.start()
    worker.join()
    metrics.flush()
    assert datapoints(emitted, metric_names.PROVIDER_LATENCY) == [({"provider": "openai"}, 5.0)]


def test_a_metric_takes_exactly_its_declared_dimensions() -> None:
    with pytest.raises(ValueError, match="ProviderCalls"):
        metrics.emit(metric_names.PROVIDER_CALLS, provider="openai")
    with pytest.raises(ValueError, match="BudgetRefusals"):
        metrics.emit(metric_names.BUDGET_REFUSALS, key_id="key_a")


def test_lines_go_to_standard_output_as_in_lambda_and_not_when_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics.set_sink(None)
    metrics.emit(metric_names.BUDGET_REFUSALS)
    metrics.flush()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["BudgetRefusals"] == [1.0]
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.emit(metric_names.BUDGET_REFUSALS)
    metrics.flush()
    assert capsys.readouterr().out == ""


def test_every_declared_metric_has_a_known_unit_bounded_dimensions_and_an_emitter() -> None:
    from pathlib import Path

    from aws_lambda_powertools.metrics import MetricUnit

    units = {unit.value for unit in MetricUnit}
    code = "".join(path.read_text() for path in Path(metric_names.__file__).parents[1].rglob("*.py"))
    constants = {value: name for name, value in vars(metric_names).items() if isinstance(value, MetricName)}
    assert len({m.name for m in metric_names.ALL}) == len(metric_names.ALL) == len(constants)
    for metric in metric_names.ALL:
        assert metric.unit in units, metric
        assert not {"key", "key_id", "tenant", "owner", "batch_id", "file_id"} & set(metric.dimensions)
        assert f"metric_names.{constants[metric]}" in code, f"nothing emits {metric.name}"


def test_every_function_of_the_route_table_flushes_its_metrics_through_one_wrapper() -> None:
    import importlib

    from gateway import routes

    functions = [
        *routes.ROUTES,
        *routes.ASYNC_FUNCTIONS,
        *routes.SCHEDULED_FUNCTIONS,
        *routes.QUEUE_CONSUMERS,
    ]
    for function in functions:
        handler = importlib.import_module(f"handlers.{function.name}").handler
        assert getattr(handler, "instrumented", False), function.name


# Where each is emitted -------------------------------------------------------------------


def test_a_cold_start_once_per_function_in_its_environment(
    aws: None, emitted: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.observability import instrument

    monkeypatch.setattr(instrument, "_started", set())
    call(health.handler, event("GET", "/health", key=None))  # FakeContext: function "test"
    call(health.handler, event("GET", "/health", key=None))
    assert datapoints(emitted, metric_names.COLD_STARTS) == [({"function_name": "test"}, 1.0)]


def test_requests_by_route_and_status_class(aws: None, emitted: list[dict[str, Any]]) -> None:
    call(health.handler, event("GET", "/health", key=None))
    call(files_list.handler, event("GET", "/v1/files", key=None))  # 401
    call(files_list.handler, event("GET", "/v1/files"))
    assert datapoints(emitted, metric_names.REQUESTS) == [
        ({"route": "health", "status_class": "2xx"}, 1.0),
        ({"route": "files_list", "status_class": "4xx"}, 1.0),
        ({"route": "files_list", "status_class": "2xx"}, 1.0),
    ]


def _client(answer: Any) -> ProviderClient:
    deployment = ProviderDeployment(name="openai", type="openai", api_base="https://api.example/v1")
    client = ProviderClient(deployment, lambda refresh: "sk-provider", timeout=5)
    client._http = httpx.Client(transport=httpx.MockTransport(answer))
    return client


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(200, json={"id": "b"}), "ok"),
        (httpx.Response(404, json={"error": {"message": "no"}}), "4xx"),
        (httpx.Response(429, json={"error": {"message": "slow down"}}), "429"),
        (httpx.Response(503, json={"error": {"message": "down"}}), "5xx"),
        (httpx.ReadTimeout("late"), "timeout"),
        (httpx.ConnectError("refused"), "unreachable"),
    ],
)
def test_provider_calls_by_outcome_with_their_latency(
    answer: Any, outcome: str, emitted: list[dict[str, Any]]
) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    try:
        _client(reply).retrieve_batch("b")
    except GatewayError:
        assert outcome != "ok"
    metrics.flush()
    assert datapoints(emitted, metric_names.PROVIDER_CALLS) == [
        ({"provider": "openai", "outcome": outcome}, 1)
    ]
    ((dims, latency),) = datapoints(emitted, metric_names.PROVIDER_LATENCY)
    assert dims == {"provider": "openai"} and 0 <= latency < 5000


def test_a_batch_created_and_a_create_refused_by_its_budget(
    budgeted: Decimal, emitted: list[dict[str, Any]]
) -> None:
    from gateway.errors import InvalidRequestError
    from gateway.storage.budgets import BudgetStore

    batches.create_batch(KEY, None, _request())
    BudgetStore().configure(KEY.key_id, budgeted, None)  # the first batch holds all of it
    with pytest.raises(InvalidRequestError):
        batches.create_batch(KEY, None, _request())
    metrics.flush()
    assert datapoints(emitted, metric_names.BATCHES_CREATED) == [({"provider": "openai"}, 1)]
    assert datapoints(emitted, metric_names.BUDGET_REFUSALS) == [({}, 1)]


def test_a_settlement_emits_the_end_the_lines_and_the_cost_once(
    aws: None, emitted: list[dict[str, Any]]
) -> None:
    record, batch = finished_batch()
    settled = settlement.settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))
    assert settled.cost is not None
    settlement.settle_if_finished(record, batch, read_output=CountingReader(OUTPUT))  # settled: nothing
    metrics.flush()
    assert datapoints(emitted, metric_names.BATCHES_FINISHED) == [
        ({"provider": "openai", "status": "completed"}, 1)
    ]
    assert datapoints(emitted, metric_names.REQUESTS_COMPLETED) == [({"provider": "openai"}, 2)]
    assert datapoints(emitted, metric_names.REQUESTS_FAILED) == [({"provider": "openai"}, 1)]
    ((dims, cost),) = datapoints(emitted, metric_names.COST_SETTLED)
    assert dims == {"provider": "openai", "model": "gpt-4o-mini"}
    assert cost == pytest.approx(float(settled.cost.total)) and cost > 0


@pytest.fixture
def fake_provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    from gateway.service import adoption, translate

    fake = FakeProvider()
    for module in (watcher, batches, translate, adoption):
        monkeypatch.setattr(module, "client_for", lambda _provider: fake)
    return fake


def test_a_watcher_pass(fake_provider: FakeProvider, emitted: list[dict[str, Any]]) -> None:
    store_batch(fake_provider, 1, "in_progress")
    store_batch(fake_provider, 2, "in_progress")
    fake_provider.batches["up-batch-2"]["status"] = "failed"
    report = watcher.run_pass(Deadline.after(120))
    metrics.flush()
    ((_, duration),) = datapoints(emitted, metric_names.WATCHER_PASS_DURATION)
    assert duration > 0
    assert datapoints(emitted, metric_names.WATCHER_STOPPED_EARLY) == [({}, 0)]
    assert datapoints(emitted, metric_names.WATCHER_BATCHES_TRACKED) == [({}, 2)]
    assert report.changed >= 1  # batch 2 ended
    assert datapoints(emitted, metric_names.WATCHER_CHANGES) == [({}, report.changed)]
    assert datapoints(emitted, metric_names.STRANDED_ADOPTED) == [({}, 0)]
    assert datapoints(emitted, metric_names.STRANDED_GIVEN_UP) == [({}, 0)]
    ((_, age),) = datapoints(emitted, metric_names.OLDEST_UNFINISHED_AGE)
    assert age == pytest.approx(time.time() - (1_700_000_000 + 1), abs=5)  # batch 1, unfinished
    assert datapoints(emitted, metric_names.BATCHES_FINISHED) == [
        ({"provider": "openai", "status": "failed"}, 1)
    ]
    assert datapoints(emitted, metric_names.INVARIANT_VIOLATIONS) == []  # the books balance


def test_a_stranded_create_given_up(fake_provider: FakeProvider, emitted: list[dict[str, Any]]) -> None:
    from gateway.storage import pending

    record = ObjectRecord(
        id="batch_stranded",
        kind="batch",
        owner="master",
        provider="openai",
        created_at=1_700_000_000,
        object={
            "id": "batch_stranded",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-in",
            "completion_window": "24h",
            "status": "validating",
            "created_at": 1_700_000_000,
        },
        state={"input_file_id": "file-in", pending.PENDING: {"attempted_at": 1_700_000_000, "body": {}}},
    )
    assert pending.put_new(record) is None
    watcher.run_pass(Deadline.after(120))
    metrics.flush()
    assert datapoints(emitted, metric_names.STRANDED_GIVEN_UP) == [({}, 1)]
    assert datapoints(emitted, metric_names.STRANDED_ADOPTED) == [({}, 0)]


def test_invariant_violations_by_invariant(
    fake_provider: FakeProvider, emitted: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store_batch(fake_provider, 1, "in_progress")
    monkeypatch.setattr(
        books, "check_pass", lambda id_map, touched: {"stale_outbox": ["evt_a", "evt_b"], "holds_off": ["k"]}
    )
    watcher.run_pass(Deadline.after(120))
    metrics.flush()
    assert sorted(datapoints(emitted, metric_names.INVARIANT_VIOLATIONS), key=str) == [
        ({"invariant": "holds_off"}, 1),
        ({"invariant": "stale_outbox"}, 2),
    ]


EVENT = {"id": "evt_1", "object": "event", "type": "batch.completed", "created_at": 1, "data": {"id": "b"}}


@pytest.fixture
def endpoint(aws: None) -> Iterator[ObjectRecord]:
    record = ObjectRecord(
        id="we_metrics",
        kind="webhook_endpoint",
        owner="key_a",
        provider=NO_PROVIDER,
        created_at=1,
        object={"url": "https://8.8.8.8/h", "event_types": ["batch.completed"]},
        state={"generation": 1},
    )
    IdMap().put(record, reverse=False)
    queue.use_local_queue(lambda name, body, delay: None)
    yield record
    queue.use_local_queue(None)


@pytest.mark.parametrize(
    ("status", "late", "outcome"), [(200, False, "delivered"), (500, False, "retried"), (500, True, "failed")]
)
def test_webhook_deliveries_by_outcome_and_latency(
    endpoint: ObjectRecord,
    status: int,
    late: bool,
    outcome: str,
    emitted: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_send = delivery.send
    transport = httpx.MockTransport(lambda request: httpx.Response(status))
    monkeypatch.setattr(
        delivery, "send", lambda *args, **kwargs: real_send(*args, **kwargs, transport=transport)
    )
    first = time.time() - (10 * 86400 if late else 0)
    dispatch.run(DeliveryJob(endpoint_id=endpoint.id, event=EVENT, first_attempt_at=first))
    metrics.flush()
    assert datapoints(emitted, metric_names.WEBHOOK_DELIVERIES) == [({"outcome": outcome}, 1)]
    ((_, latency),) = datapoints(emitted, metric_names.WEBHOOK_LATENCY)
    assert 0 <= latency < 10_000


def test_a_transfer_failure_counted_once(aws: None, emitted: list[dict[str, Any]]) -> None:
    import boto3
    from gateway.runtime.settings import get_settings

    boto3.client("s3").create_bucket(Bucket=get_settings().bucket_name)
    record = ObjectRecord(
        id="file-failing",
        kind="file",
        owner="master",
        provider="azure",
        created_at=1,
        object={
            "id": "file-failing",
            "object": "file",
            "bytes": 3,
            "created_at": 1,
            "filename": "a.jsonl",
            "purpose": "batch",
            "status": "uploaded",
        },
        state={"transfer": {"upload_id": "upload_x", "deadline": 100}},
    )
    IdMap().put(record)
    assert transfer_failure.fail_abandoned_transfer("file-failing", "gave up") == "error"
    assert transfer_failure.fail_abandoned_transfer("file-failing", "gave up") == "error"  # already
    metrics.flush()
    assert datapoints(emitted, metric_names.TRANSFER_FAILURES) == [({"provider": "azure"}, 1)]


def test_a_transfer_counts_the_bytes_it_moved(
    uploads_gateway: list[dict[str, Any]], emitted: list[dict[str, Any]]
) -> None:
    from handlers import uploads_complete

    from tests.unit.test_uploads import CHUNKS, transfer, upload_call, uploaded

    upload, part_ids = uploaded(CHUNKS)
    status, done = upload_call(uploads_complete.handler, upload["id"], "complete", {"part_ids": part_ids})
    assert status == 200, done
    assert transfer(done["file"]["id"]) == "processed"
    assert transfer(done["file"]["id"]) is None  # a redelivered event moves nothing
    assert datapoints(emitted, metric_names.TRANSFER_BYTES) == [
        ({"provider": "openai"}, sum(map(len, CHUNKS)))
    ]


# Traces ----------------------------------------------------------------------------------


class FakeTracer:
    """Stands for Powertools' Tracer (tracing is off in tests): what was annotated, where."""

    def __init__(self) -> None:
        self.annotations: list[tuple[str, str, Any]] = []
        self.provider = self
        self.captured: list[bool] = []

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations.append(("handler", key, value))

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[Any]:
        tracer = self

        class Segment:
            def put_annotation(self, key: str, value: Any) -> None:
                tracer.annotations.append((name, key, value))

        yield Segment()

    def capture_lambda_handler(self, handler: Any, capture_response: bool) -> Any:
        self.captured.append(capture_response)
        return handler


def _provider_key(key: str) -> None:
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from gateway.runtime import resources

    boto3.client("secretsmanager").put_secret_value(
        SecretId=resources.DEFAULT_PROVIDER_KEYS_SECRET, SecretString=json.dumps({"openai": key})
    )
    parameters.clear_caches()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> FakeTracer:
    from gateway.observability import tracing

    fake = FakeTracer()
    monkeypatch.setattr(tracing, "tracer", lambda: fake)
    return fake


def test_a_request_is_annotated_with_its_request_id_and_gateway_id(aws: None, traced: FakeTracer) -> None:
    from handlers import files_retrieve

    from tests.unit.conftest import store_file

    file_id = "file-" + "A1" * 12
    store_file(file_id)
    request = event(
        "GET", f"/v1/files/{file_id}", resource="/v1/files/{file_id}", path_parameters={"file_id": file_id}
    )
    _provider_key("sk-provider")
    call(files_retrieve.handler, request)  # its provider (unreachable here) is asked too
    assert ("handler", "x_request_id", request["requestContext"]["requestId"]) in traced.annotations
    assert ("handler", "gateway_id", file_id) in traced.annotations
    calls = {name for name, _, _ in traced.annotations if name.startswith("## provider")}
    assert calls and all((name, "gateway_id", file_id) in traced.annotations for name in calls)


def test_a_provider_call_is_a_subsegment_with_provider_and_status(traced: FakeTracer) -> None:
    from gateway.observability import tracing

    tracing.about("batch_" + "B2" * 12)
    _client(lambda request: httpx.Response(200, json={"id": "b"})).retrieve_batch("up-1")
    assert traced.annotations == [
        ("handler", "gateway_id", "batch_" + "B2" * 12),
        ("## provider GET /batches", "gateway_id", "batch_" + "B2" * 12),
        ("## provider GET /batches", "provider", "openai"),
        ("## provider GET /batches", "outcome", "ok"),
        ("## provider GET /batches", "status", 200),
    ]
    tracing.about(None)


def test_handlers_are_traced_without_their_response(traced: FakeTracer) -> None:
    from gateway.observability.instrument import instrumented

    handler = instrumented(lambda event, context: {"secret": "data"})
    assert handler({}, FakeContext()) == {"secret": "data"}
    assert traced.captured == [False]


def test_no_key_or_secret_reaches_an_annotation_or_a_metric(
    aws: None, traced: FakeTracer, emitted: list[dict[str, Any]]
) -> None:
    """The master key in the header and in the path, a provider key on the call: none of them
    (nor the pepper) is annotated or a dimension; a path value not shaped like a gateway id is
    not annotated at all."""
    from handlers import files_retrieve

    from tests.unit.conftest import MASTER_KEY

    secrets = (MASTER_KEY, "pepper", "sk-provider")
    _provider_key("sk-provider")
    request = event(
        "GET",
        f"/v1/files/{MASTER_KEY}",
        resource="/v1/files/{file_id}",
        path_parameters={"file_id": MASTER_KEY},
    )
    call(files_retrieve.handler, request)
    call(files_list.handler, event("GET", "/v1/files", key="sk-wrong-" + MASTER_KEY))
    with suppress(GatewayError):
        _client(lambda request: httpx.Response(401, json={})).retrieve_batch("b")
    metrics.flush()
    assert traced.annotations and emitted
    assert not [a for a in traced.annotations if any(s in str(a[2]) for s in secrets)]
    assert "gateway_id" not in {key for _, key, _ in traced.annotations}
    assert not [line for line in emitted if any(s in json.dumps(line) for s in secrets)]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        ("ThrottlingException", "429"),
        ("ValidationException", "4xx"),
        ("InternalServerException", "5xx"),
    ],
)
def test_bedrock_calls_by_outcome(
    aws: None, error: str | None, outcome: str, emitted: list[dict[str, Any]]
) -> None:
    import boto3
    from botocore.stub import Stubber
    from gateway.providers.bedrock.client import BedrockClient

    deployment = ProviderDeployment(name="bedrock", type="bedrock", region="us-east-1")
    client = BedrockClient(deployment, lambda refresh: None, timeout=5)
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    client._client = bedrock
    status = {"ThrottlingException": 429, "ValidationException": 400, "InternalServerException": 500}
    with Stubber(bedrock) as stub:
        if error is None:
            stub.add_response("list_model_invocation_jobs", {"invocationJobSummaries": []})
        else:
            stub.add_client_error("list_model_invocation_jobs", error, http_status_code=status[error])
        try:
            client._call("list_model_invocation_jobs")
        except GatewayError:
            assert outcome != "ok"
    metrics.flush()
    assert datapoints(emitted, metric_names.PROVIDER_CALLS) == [
        ({"provider": "bedrock", "outcome": outcome}, 1)
    ]


def test_a_closed_dimension_takes_only_its_listed_values() -> None:
    with pytest.raises(ValueError, match="outcome is one of"):
        metrics.emit(metric_names.PROVIDER_CALLS, provider="openai", outcome="slow")
    with pytest.raises(ValueError, match="outcome is one of"):
        metrics.emit(metric_names.WEBHOOK_DELIVERIES, outcome="bounced")
    metrics.discard()


def test_the_outcomes_the_code_emits_are_exactly_the_listed_ones() -> None:
    # what the dashboard and the alarms sum over (infra/monitoring.py reads the same lists)
    from gateway.observability import provider_calls

    answered = {provider_calls.outcome_of(status) for status in range(100, 600)}
    not_answered = {provider_calls.TIMEOUT, provider_calls.UNREACHABLE}
    assert sorted(answered | not_answered) == sorted(metric_names.PROVIDER_CALLS.values_of("outcome"))
    assert set(metric_names.PROVIDER_ERROR_OUTCOMES) < set(metric_names.PROVIDER_OUTCOMES)
    assert sorted((dispatch.DELIVERED, dispatch.RETRIED, dispatch.FAILED)) == sorted(
        metric_names.WEBHOOK_DELIVERIES.values_of("outcome")
    )
