"""Azure OpenAI's own clients against the local server, unchanged: AzureOpenAI with a dated
api_version and with "v1", the openai SDK on Azure's v1 path, and no silent misroute."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable

import httpx
import httpx2
import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of, wait_for_batch

API_VERSION = "2024-10-21"


def azure_client(gateway: LocalGateway, api_version: str, *, deployment: str = "azure") -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=f"{gateway.url}/{deployment}",
        api_key=gateway.master_key,
        api_version=api_version,
        max_retries=0,
        timeout=30,
    )


def azure_v1_client(gateway: LocalGateway) -> openai.OpenAI:
    """What Azure documents for its v1 API (and LiteLLM builds for api_version v1/preview/latest)."""
    return openai.OpenAI(
        base_url=f"{gateway.url}/azure/openai/v1/", api_key=gateway.master_key, max_retries=0
    )


def upstream_providers(gateway: LocalGateway, tag: str) -> list[str]:
    """The simulator's providers of the batches created with metadata {"tag": tag}."""
    assert gateway.simulator is not None
    state = gateway.simulator.state
    with state.lock:
        return [b.provider for b in state.batches.values() if (b.metadata or {}).get("tag") == tag]


def requests_seen(sdk_factory: Callable[[httpx2.Client], openai.OpenAI]) -> tuple[openai.OpenAI, list[str]]:
    seen: list[str] = []
    http = httpx2.Client(
        event_hooks={"request": [lambda request: seen.append(f"{request.method} {request.url}")]}
    )
    return sdk_factory(http), seen


@pytest.mark.parametrize(
    ("make_client", "created_status"),
    [
        # AzureOpenAI calls the dated API's paths (/openai/files?api-version=...), whatever the
        # version: Azure answers its creates with 201 there, and with 200 on its v1 API.
        pytest.param(lambda gw: azure_client(gw, API_VERSION), 201, id="AzureOpenAI-2024-10-21"),
        pytest.param(lambda gw: azure_client(gw, "v1"), 201, id="AzureOpenAI-v1"),
        pytest.param(azure_v1_client, 200, id="openai-on-azure-v1-path"),
    ],
)
def test_azure_clients_run_files_and_batches_end_to_end(
    local_gateway: LocalGateway, make_client: Callable[[LocalGateway], openai.OpenAI], created_status: int
) -> None:
    sdk = make_client(local_gateway)
    created = sdk.files.with_raw_response.create(
        file=("azure.jsonl", io.BytesIO(batch_jsonl(2)), "application/jsonl"), purpose="batch"
    )
    assert created.status_code == created_status
    input_file = created.parse()
    openai.types.FileObject.model_validate(input_file.to_dict())
    assert sdk.files.retrieve(input_file.id).id == input_file.id
    assert input_file.id in {f.id for f in sdk.files.list()}

    tag = uuid.uuid4().hex
    raw_batch = sdk.batches.with_raw_response.create(
        input_file_id=input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tag": tag},
    )
    assert raw_batch.status_code == created_status
    batch = raw_batch.parse()
    assert upstream_providers(local_gateway, tag) == ["azure"]  # the batch belongs to Azure
    assert batch.id in {b.id for b in sdk.batches.list()}
    done = wait_for_batch(sdk, batch.id)
    assert done.status == "completed", done
    assert done.model == "gpt-4o-mini" and done.output_file_id is not None
    openai.types.Batch.model_validate(done.to_dict())
    assert len(sdk.files.content(done.output_file_id).text.splitlines()) == 2

    with pytest.raises(openai.ConflictError) as finished:
        sdk.batches.cancel(batch.id)
    assert finished.value.response.headers["x-should-retry"] == "false"
    assert sdk.files.delete(input_file.id).deleted is True


def test_azure_openai_uploads_large_files_in_parts(local_gateway: LocalGateway) -> None:
    sdk = azure_client(local_gateway, API_VERSION)
    content = batch_jsonl(40)
    raw = sdk.uploads.with_raw_response.create(
        bytes=len(content), filename="parts.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    assert raw.status_code == 201
    upload = raw.parse()
    half = len(content) // 2
    parts = [sdk.uploads.parts.create(upload.id, data=chunk).id for chunk in (content[:half], content[half:])]
    done = sdk.uploads.complete(upload.id, part_ids=parts)
    assert done.status == "completed" and done.file is not None
    deadline = time.monotonic() + 30
    while (file := sdk.files.retrieve(done.file.id)).status != "processed":
        assert file.status != "error" and time.monotonic() < deadline, file
        time.sleep(0.1)
    assert sdk.files.content(file.id).read() == content
    assert file.id not in {f.id for f in client(local_gateway, provider="openai").files.list()}


def test_azure_cancel_and_the_short_endpoint_form(local_gateway: LocalGateway) -> None:
    sdk = azure_client(local_gateway, API_VERSION)
    input_file = sdk.files.create(file=("c.jsonl", io.BytesIO(batch_jsonl(1))), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=input_file.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]  # Azure's documented form
        completion_window="24h",
    )
    assert batch.endpoint == "/v1/chat/completions"
    cancelled = sdk.batches.cancel(batch.id)
    # a cancel reads cancelling until the provider's in-flight requests stop; a read after that, cancelled
    assert cancelled.status in ("cancelling", "cancelled")
    assert wait_for_batch(sdk, batch.id).status == "cancelled"


def test_a_final_409_is_not_retried_by_the_sdk(local_gateway: LocalGateway) -> None:
    sdk = azure_client(local_gateway, API_VERSION)
    batch = sdk.batches.create(
        input_file_id=sdk.files.create(file=("r.jsonl", io.BytesIO(batch_jsonl(1))), purpose="batch").id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait_for_batch(sdk, batch.id)
    retrying, seen = requests_seen(
        lambda http: openai.AzureOpenAI(
            azure_endpoint=f"{local_gateway.url}/azure",
            api_key=local_gateway.master_key,
            api_version=API_VERSION,
            max_retries=2,
            http_client=http,
        )
    )
    with pytest.raises(openai.ConflictError):
        retrying.batches.cancel(batch.id)
    assert len([line for line in seen if "/cancel" in line]) == 1, seen


def test_azure_signs_never_reach_the_openai_deployment(local_gateway: LocalGateway) -> None:
    # Azure's path form under an OpenAI deployment
    with pytest.raises(openai.BadRequestError) as on_openai:
        azure_client(local_gateway, API_VERSION, deployment="openai").files.list()
    error = error_of(on_openai.value)
    assert error["code"] == "wrong_base_url" and "<gateway>/azure" in error["message"]

    # api-version on an OpenAI path, with no deployment named or the OpenAI one
    for path in ("/v1/files", "/files", "/openai/v1/batches"):
        response = httpx.get(
            f"{local_gateway.url}{path}",
            params={"api-version": API_VERSION},
            headers={"api-key": local_gateway.master_key},
        )
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "wrong_base_url"
        assert response.json()["error"]["param"] == "api-version"

    # an id the OpenAI deployment owns, touched with Azure's wire format
    openai_file = client(local_gateway).files.create(
        file=("o.jsonl", io.BytesIO(batch_jsonl(1))), purpose="batch"
    )
    with pytest.raises(openai.BadRequestError) as owned:
        azure_client(local_gateway, API_VERSION).files.retrieve(openai_file.id)
    assert "openai" in error_of(owned.value)["message"]
    # ... which the OpenAI form still serves
    assert client(local_gateway, provider="azure").files.retrieve(openai_file.id).id == openai_file.id


def test_api_key_header_authenticates_and_a_wrong_one_is_refused(local_gateway: LocalGateway) -> None:
    url = f"{local_gateway.url}/azure/openai/batches"
    ok = httpx.get(url, params={"api-version": API_VERSION}, headers={"api-key": local_gateway.master_key})
    assert ok.status_code == 200 and ok.json()["object"] == "list"
    refused = httpx.get(url, params={"api-version": API_VERSION}, headers={"api-key": "sk-wrong"})
    assert refused.status_code == 401
