"""Files through the local server with the official SDK, for both providers."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from devserver.server import LocalGateway
from tests.integration.helpers import batch_jsonl, client, error_of, upload_batch_file


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_file_lifecycle_under_a_provider_prefix(local_gateway: LocalGateway, provider: str) -> None:
    sdk = client(local_gateway, provider=provider)
    content = batch_jsonl(3)

    created = sdk.files.create(file=("lifecycle.jsonl", io.BytesIO(content)), purpose="batch")
    assert created.id.startswith("file-")
    # Azure still processes a new file ("pending" there): it reads "uploaded", OpenAI's word,
    # so that strict clients (LiteLLM validates with pydantic) accept it.
    assert created.status == ("uploaded" if provider == "azure" else "processed")
    openai.types.FileObject.model_validate(created.to_dict())
    assert (created.bytes, created.filename, created.purpose) == (len(content), "lifecycle.jsonl", "batch")

    # Any prefix reaches the owning provider: the plain /v1 client retrieves the same file.
    plain = client(local_gateway)
    retrieved = plain.files.retrieve(created.id)
    assert retrieved.id == created.id
    assert retrieved.bytes == len(content)
    openai.types.FileObject.model_validate(retrieved.to_dict())

    downloaded = plain.files.with_raw_response.content(created.id)
    assert downloaded.content == content
    assert downloaded.headers["content-type"] == "application/octet-stream"
    assert 'filename="lifecycle.jsonl"' in downloaded.headers["content-disposition"]

    deleted = plain.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        plain.files.retrieve(created.id)


def test_provider_named_by_header_form_field_and_query(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    by_header = upload_batch_file(sdk, extra_headers={"custom-llm-provider": "azure"})
    by_field = upload_batch_file(sdk, extra_body={"custom_llm_provider": "azure"})
    by_query = upload_batch_file(sdk, extra_query={"provider": "azure"})
    by_litellm_query = upload_batch_file(sdk, extra_query={"custom_llm_provider": "azure"})
    default = upload_batch_file(sdk)

    azure_ids = {f.id for f in sdk.files.list(extra_query={"provider": "azure"})}
    assert azure_ids == {f.id for f in sdk.files.list(extra_query={"custom_llm_provider": "azure"})}
    openai_ids = {f.id for f in sdk.files.list(extra_headers={"custom-llm-provider": "openai"})}
    assert {by_header.id, by_field.id, by_query.id, by_litellm_query.id} <= azure_ids
    assert default.id in openai_ids
    assert default.id not in azure_ids
    assert not azure_ids & openai_ids


def test_expires_after_in_both_spellings(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    created = upload_batch_file(sdk, expires_after={"anchor": "created_at", "seconds": 7200})
    assert created.expires_at == created.created_at + 7200

    # The dotted form that some clients send as plain form fields.
    response = httpx.post(
        f"{local_gateway.api_base}/files",
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
        data={"purpose": "batch", "expires_after.anchor": "created_at", "expires_after.seconds": "3600"},
        files={"file": ("dotted.jsonl", batch_jsonl(1), "application/jsonl")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_at"] == body["created_at"] + 3600


def test_list_pagination_visits_every_file_once(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    created = [
        upload_batch_file(sdk, 1, name=f"page-{i}.jsonl", extra_headers={"custom-llm-provider": "azure"})
        for i in range(5)
    ]
    ids = [f.id for f in created]

    # limit=2 forces three pages; auto-paging follows `after` until has_more is false.
    seen = [f.id for f in sdk.files.list(limit=2, order="asc", extra_query={"provider": "azure"})]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in ids] == ids

    newest_first = sdk.files.list(limit=2, order="desc", extra_query={"provider": "azure"})
    assert [f.id for f in newest_first.data] == ids[::-1][:2]
    assert newest_first.has_more is True

    last_page = sdk.files.list(limit=10000, after=ids[-2], order="asc", extra_query={"provider": "azure"})
    assert [f.id for f in last_page.data][:1] == [ids[-1]]


def test_list_filters_by_purpose(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    user_data = sdk.files.create(file=("notes.txt", io.BytesIO(b"hello")), purpose="user_data")
    batch_file = upload_batch_file(sdk)
    listed = {f.id: f.purpose for f in sdk.files.list(purpose="user_data")}
    assert listed.get(user_data.id) == "user_data"
    assert batch_file.id not in listed


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"purpose": "nonsense"}, "purpose"),
        ({}, "purpose"),
        (
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "10"},
            "expires_after",
        ),
    ],
)
def test_bad_upload_names_the_param(local_gateway: LocalGateway, form: dict[str, str], param: str) -> None:
    response = httpx.post(
        f"{local_gateway.api_base}/files",
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
        data=form,
        files={"file": ("x.jsonl", b"{}\n", "application/jsonl")},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param)


def test_upload_without_a_file_is_a_400(local_gateway: LocalGateway) -> None:
    response = httpx.post(
        f"{local_gateway.api_base}/files",
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
        data={"purpose": "batch"},
        files={"other": ("x.jsonl", b"{}\n")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


def test_unknown_file_is_a_404_envelope(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    for call in (sdk.files.retrieve, sdk.files.delete, sdk.files.content):
        with pytest.raises(openai.NotFoundError) as caught:
            call("file-doesnotexist")
        error = error_of(caught.value)
        assert "file-doesnotexist" in error["message"]
