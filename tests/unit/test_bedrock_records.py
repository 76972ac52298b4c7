"""OpenAI batch lines -> Bedrock batch inference records, and Bedrock's output records -> outcomes.

Expected records follow the documented examples of Bedrock's batch inference
(docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html: a Claude 3 Haiku
record `{"recordId": "CALL0000001", "modelInput": {"anthropic_version": "bedrock-2023-05-31",
"max_tokens": 1024, "messages": [...]}}`; batch-inference-results.html: output lines
`{"recordId", "modelInput", "modelOutput"}` or `{..., "error": {"errorCode", "errorMessage"}}`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.errors import InvalidRequestError
from gateway.providers.bedrock import records as bedrock_records
from gateway.providers.bedrock.records import Records

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MODELS = {"claude-3-haiku": HAIKU, "opus": "anthropic.claude-3-opus-20240229-v1:0"}
TRANSCRIPT = "Summarize the following call transcript: ..."


def _line(custom_id: str, **body: Any) -> bytes:
    request = {"model": "claude-3-haiku", "messages": [{"role": "user", "content": TRANSCRIPT}], **body}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}
    ).encode()


def _records(lines: list[bytes], models: dict[str, str] = MODELS) -> tuple[list[dict[str, Any]], Records]:
    into = Records()
    out = [
        json.loads(r)
        for r in bedrock_records.records(lines, models=models, default_max_tokens=4096, into=into)
    ]
    return out, into


def test_the_documented_claude_record() -> None:
    (record,), into = _records([_line("call-1", max_tokens=1024)])
    assert record == {
        "recordId": "R0000000001",
        "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 1024,
            # the documented [{"type": "text", "text": ...}] in Anthropic's equivalent string form
            "messages": [{"role": "user", "content": TRANSCRIPT}],
        },
    }
    assert (into.model_id, into.custom_ids) == (HAIKU, ["call-1"])
    assert into.size == len(json.dumps(record, separators=(",", ":"))) + 1


def test_fields_translate_and_the_default_max_tokens_applies() -> None:
    (record,), _ = _records(
        [
            _line(
                "a",
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                ],
                temperature=0.2,
                top_p=0.9,
                stop=["END"],
                user="u-1",
            )
        ]
    )
    body = record["modelInput"]
    assert body["system"] == "Be brief." and body["max_tokens"] == 4096
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.2, 0.9, ["END"])
    assert "model" not in body and "metadata" not in body  # the job names the model


def test_a_model_id_works_directly_and_an_inference_profile_too() -> None:
    _, into = _records([_line("a", model="us.anthropic.claude-sonnet-4-20250514-v1:0")], models={})
    assert into.model_id == "us.anthropic.claude-sonnet-4-20250514-v1:0"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([_line("a", model="meta.llama3-1-8b-instruct-v1:0")], "Line 1: Model 'meta.llama3-1-8b"),
        ([_line("a"), _line("b", model="opus")], "Line 2: model 'anthropic.claude-3-opus"),
        ([b'{"custom_id": "x", "url": "/v1/embeddings", "body": {}}'], "Line 1: url '/v1/embeddings'"),
        ([b"not json"], "Line 1: is not a batch request line"),
        (  # a body that is no object is not a request (never a 500)
            [_line("a"), b'{"custom_id": "y", "url": "/v1/chat/completions", "body": "hi"}'],
            "Line 2: is not a batch request line",
        ),
        (
            [_line("a", model="anthropic.claude-3-sonnet-20240229-v1:0")],
            "Line 1: Model 'anthropic.claude-3-sonnet-20240229-v1:0' is not configured",
        ),
        (
            [_line("a", messages=[{"role": "user", "content": [{"type": "input_audio"}]}])],
            "Line 1: body.messages[0]",
        ),
    ],
)
def test_lines_that_cannot_be_translated_name_their_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        _records(lines)
    assert message in error.value.message and error.value.status_code == 400


def test_limits_answer_400_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequestError, match="at least 100 records per job; this file has 99"):
        bedrock_records.check_minimum(99)
    bedrock_records.check_minimum(100)
    monkeypatch.setattr(bedrock_records, "MAX_RECORDS", 2)
    with pytest.raises(InvalidRequestError, match="at most 2 records per job"):
        _records([_line(str(n)) for n in range(3)])
    monkeypatch.setattr(bedrock_records, "MAX_RECORDS", 50_000)
    monkeypatch.setattr(bedrock_records, "MAX_INPUT_FILE_BYTES", 300)
    with pytest.raises(InvalidRequestError, match="input files of at most 300 bytes"):
        _records([_line(str(n)) for n in range(3)])


def test_output_records_become_outcomes_by_record_id_in_any_order() -> None:
    custom_ids = ["first", "second/with:odd chars"]
    message = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": HAIKU,
        "content": [{"type": "text", "text": "A short summary."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }
    failed = bedrock_records.outcome(
        {
            "recordId": "R0000000002",
            "modelInput": {},
            "error": {"errorCode": 400, "errorMessage": "bad request"},
        },
        custom_ids,
        1_700_000_000,
    )
    succeeded = bedrock_records.outcome(
        {"recordId": "R0000000001", "modelInput": {}, "modelOutput": message}, custom_ids, 1_700_000_000
    )
    assert failed is not None and succeeded is not None
    assert (failed.custom_id, failed.kind, failed.status_code, failed.error_message) == (
        "second/with:odd chars",
        "errored",
        400,
        "bad request",
    )
    assert succeeded.custom_id == "first" and succeeded.kind == "succeeded" and succeeded.body is not None
    assert succeeded.body["object"] == "chat.completion"
    assert succeeded.body["choices"][0]["message"]["content"] == "A short summary."
    assert (
        succeeded.body["usage"]["prompt_tokens"] == 12 and succeeded.body["usage"]["completion_tokens"] == 5
    )
    # A record the gateway did not write (Bedrock adds ids to records without one) is skipped.
    assert bedrock_records.outcome({"recordId": "CALL0000001", "modelOutput": message}, custom_ids, 0) is None
    assert bedrock_records.outcome({"recordId": "R0000000009", "modelOutput": message}, custom_ids, 0) is None


@pytest.mark.parametrize(
    "model", ["cohere.command-r-v1:0", "amazon.titan-text-express-v1", "meta.llama2-13b-chat-v1"]
)
def test_only_supported_families_run(model: str) -> None:
    """Claude, Nova, Llama 3/4 and gpt-oss run (test_bedrock_families.py); Titan's and Llama 2's
    bodies are other schemas, Cohere's another family."""
    with pytest.raises(
        InvalidRequestError, match="supported model families are Anthropic Claude, Amazon Nova"
    ):
        _records([_line("a", model=model)], models={})


def test_families() -> None:
    assert bedrock_records.family(HAIKU) == "anthropic"
    assert bedrock_records.family("eu.anthropic.claude-3-5-sonnet-20240620-v1:0") == "anthropic"
    assert bedrock_records.family("amazon.nova-lite-v1:0") == "amazon"


def test_the_upload_check_names_the_untranslatable_field() -> None:
    bedrock_records.check_line(json.loads(_line("a"))["body"], models=MODELS, default_max_tokens=10)
    with pytest.raises(ValueError, match=r"^body.model: Model 'gpt-4o'"):
        bedrock_records.check_line({"model": "gpt-4o", "messages": []}, models=MODELS, default_max_tokens=10)
    with pytest.raises(ValueError, match=r"^body.messages"):
        bedrock_records.check_line({"model": "opus", "messages": []}, models=MODELS, default_max_tokens=10)


@pytest.mark.parametrize("geo", ["us", "eu", "apac", "global", "us-gov", "jp", "au"])
def test_every_cross_region_inference_profile_is_the_anthropic_family(geo: str) -> None:
    profile = f"{geo}.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert bedrock_records.family(profile) == "anthropic"
    assert bedrock_records.family(f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile}") == (
        "anthropic"
    )
    _, into = _records([_line("a", model=profile)], models={})
    assert into.model_id == profile


def test_the_short_chat_completions_url_is_read_as_the_v1_form_as_the_upload_check_does() -> None:
    short = json.loads(_line("a"))
    short["url"] = "/chat/completions"
    out, into = _records([json.dumps(short).encode(), _line("b")])
    assert len(out) == 2 and into.custom_ids == ["a", "b"]


def test_an_image_by_url_is_refused_with_its_line_bedrock_takes_base64_only() -> None:
    by_url = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    inline = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    out, _ = _records([_line("a", messages=[{"role": "user", "content": inline}])])
    assert out[0]["modelInput"]["messages"][0]["content"][0]["source"]["type"] == "base64"
    with pytest.raises(InvalidRequestError) as error:
        _records([_line("a"), _line("b", messages=[{"role": "user", "content": by_url}])])
    assert error.value.message.startswith("Line 2: body.messages[0].content[1].image_url.url")
    assert "base64" in error.value.message
    with pytest.raises(ValueError, match=r"^body.messages\[0\].content\[1\].image_url.url: .*base64"):
        bedrock_records.check_line(
            {"model": "opus", "messages": [{"role": "user", "content": by_url}]},
            models=MODELS,
            default_max_tokens=10,
        )


def test_an_alias_of_a_newer_claude_sends_temperature_without_top_p() -> None:
    models = {"sonnet": "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "haiku": HAIKU}
    newer, _ = _records([_line("a", model="sonnet", temperature=0.3, top_p=0.8)], models=models)
    assert newer[0]["modelInput"]["temperature"] == 0.3 and "top_p" not in newer[0]["modelInput"]
    older, _ = _records([_line("a", model="haiku", temperature=0.3, top_p=0.8)], models=models)
    assert (older[0]["modelInput"]["temperature"], older[0]["modelInput"]["top_p"]) == (0.3, 0.8)
