"""No key of any kind ever reaches a log line, a metric or a trace annotation: master, virtual,
provider, or a wrong one tried."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest
from gateway.observability import logger as gateway_logger

from devserver.server import SIM_AZURE_KEY, SIM_OPENAI_KEY, LocalGateway
from tests.integration.helpers import client, upload_batch_file
from tests.integration.tenancy import generate_key


@pytest.fixture
def gateway_logs() -> Iterator[io.StringIO]:
    """Every line the functions log from now on, formatted as in CloudWatch (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(gateway_logger.registered_formatter)
    python_logger = logging.getLogger(gateway_logger.name)
    python_logger.addHandler(handler)
    try:
        yield stream
    finally:
        python_logger.removeHandler(handler)


def test_keys_never_appear_in_the_logs(local_gateway: LocalGateway, gateway_logs: io.StringIO) -> None:
    assert local_gateway.simulator is not None
    tenant = generate_key(local_gateway, "logs")
    wrong = "sk-wrong-key-that-must-not-be-logged"

    tenant_sdk = client(local_gateway, key=tenant.key)
    file_id = upload_batch_file(tenant_sdk, extra_headers={"custom-llm-provider": "azure"}).id
    tenant_sdk.files.list()
    with pytest.raises(openai.AuthenticationError):
        client(local_gateway, key=wrong).files.list()
    httpx.get(f"{local_gateway.api_base}/files", headers={"api-key": wrong})
    # The provider rejects the gateway's key once: the gateway logs it and re-reads the key.
    local_gateway.simulator.add_fault(status=401, path_contains="/files", method="GET")
    try:
        client(local_gateway).files.retrieve(file_id)
    finally:
        local_gateway.simulator.clear_faults()

    logs = gateway_logs.getvalue()
    assert tenant.key_id in logs  # the logs do speak of the key: by its id
    assert "provider rejected the key" in logs
    for secret in (local_gateway.master_key, tenant.key, wrong, SIM_OPENAI_KEY, SIM_AZURE_KEY):
        assert secret not in logs


def test_every_request_is_logged_with_its_request_id(
    local_gateway: LocalGateway, gateway_logs: io.StringIO
) -> None:
    headers = {"Authorization": f"Bearer {local_gateway.master_key}"}
    ok = httpx.get(f"{local_gateway.api_base}/files", headers=headers)
    missing = httpx.get(f"{local_gateway.api_base}/files/file-nope", headers=headers)
    lines = [json.loads(line) for line in gateway_logs.getvalue().splitlines()]
    for response, route in ((ok, "files_list"), (missing, "files_retrieve")):
        request_id = response.headers["x-request-id"]
        [line] = [entry for entry in lines if entry.get("correlation_id") == request_id]
        assert (line["route"], line["status"], line["key_id"]) == (route, response.status_code, "master")


class _RecordingTracer:
    """Stands for Powertools' Tracer (off outside Lambda): every annotation put, anywhere."""

    def __init__(self) -> None:
        self.annotations: list[tuple[str, object]] = []
        self.provider = self

    def put_annotation(self, key: str, value: object) -> None:
        self.annotations.append((key, value))

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[_RecordingTracer]:
        yield self


def test_keys_never_reach_a_metric_or_a_trace_annotation(
    local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same requests as above, with the keys also in a path and a query: the EMF lines the
    functions wrote and the annotations they put name no key (but do name routes, providers,
    request ids and gateway ids)."""
    from gateway.observability import metrics, tracing

    assert local_gateway.simulator is not None
    tracer = _RecordingTracer()
    monkeypatch.setattr(tracing, "tracer", lambda: tracer)
    tenant = generate_key(local_gateway, "metrics")
    wrong = "sk-wrong-key-that-must-not-be-measured"
    with metrics.capture() as lines:
        tenant_sdk = client(local_gateway, key=tenant.key)
        file_id = upload_batch_file(tenant_sdk, extra_headers={"custom-llm-provider": "azure"}).id
        tenant_sdk.files.list()
        with pytest.raises(openai.AuthenticationError):
            client(local_gateway, key=wrong).files.list()
        httpx.get(f"{local_gateway.api_base}/files/{tenant.key}", headers={"api-key": tenant.key})
        httpx.get(f"{local_gateway.api_base}/files", params={"after": wrong}, headers={"api-key": wrong})
        local_gateway.simulator.add_fault(status=401, path_contains="/files", method="GET")
        try:
            client(local_gateway).files.retrieve(file_id)
        finally:
            local_gateway.simulator.clear_faults()
    emitted = json.dumps(lines)
    annotated = json.dumps(tracer.annotations)
    assert '"route": "files_create"' in emitted and '"provider": "azure"' in emitted
    assert file_id in annotated and "x_request_id" in annotated
    for secret in (local_gateway.master_key, tenant.key, wrong, SIM_OPENAI_KEY, SIM_AZURE_KEY):
        assert secret not in emitted and secret not in annotated
