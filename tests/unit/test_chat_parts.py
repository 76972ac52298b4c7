"""The reading of an OpenAI chat body every translator shares (chat_parts): what it refuses,
naming the field, and what it hands the provider's own rules."""

from __future__ import annotations

import pytest
from gateway.providers import chat_parts
from gateway.providers.chat_parts import FunctionCall, TranslationError


def test_a_neutral_value_counts_only_in_its_own_type() -> None:
    assert chat_parts.is_neutral(0, (None, 0, 0.0)) and chat_parts.is_neutral(None, (None, 0))
    assert not chat_parts.is_neutral(False, (None, 0))  # False == 0, but not the neutral 0
    assert not chat_parts.is_neutral(0.5, (None, 0, 0.0))


def test_messages_are_read_in_order_and_a_non_object_is_refused_where_it_stands() -> None:
    walked = chat_parts.chat_messages([{"role": "user"}, "oops"])
    assert next(walked) == ("body.messages[0]", {"role": "user"})
    with pytest.raises(TranslationError) as raised:
        next(walked)
    assert raised.value.field == "body.messages[1]"
    for empty in (None, [], {}):
        with pytest.raises(TranslationError, match="non-empty list"):
            next(chat_parts.chat_messages(empty))


def test_turns_of_one_role_merge() -> None:
    turns: list[dict[str, object]] = []
    chat_parts.append_turn(turns, "user", [{"text": "a"}], key="parts")
    chat_parts.append_turn(turns, "user", [{"text": "b"}], key="parts")
    chat_parts.append_turn(turns, "model", [{"text": "c"}], key="parts")
    assert turns == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
    ]


def test_function_calls_and_their_refusals() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    assert chat_parts.function_calls({"tool_calls": [call]}, "m") == [FunctionCall("c1", "f", {"x": 1})]
    assert chat_parts.function_calls({"tool_calls": None}, "m") == []
    refused = {
        "m.tool_calls": {"tool_calls": "c1"},
        "m.tool_calls[0]": {"tool_calls": [{"type": "custom", "function": {}}]},
        "m.tool_calls[0].function.arguments": {
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "[1]"}}]
        },
    }
    for field, message in refused.items():
        with pytest.raises(TranslationError) as raised:
            chat_parts.function_calls(message, "m")
        assert raised.value.field == field


def test_image_data_urls_caps_and_stops() -> None:
    assert chat_parts.image_data("data:IMAGE/PNG;base64,AAA", "u", {"image/png"}) == ("image/png", "AAA")
    assert chat_parts.image_data("https://example.com/a.png", "u", {"image/png"}) is None
    with pytest.raises(TranslationError, match="image type image/bmp is not supported"):
        chat_parts.image_data("data:image/bmp;base64,AAA", "u", {"image/png"})
    assert chat_parts.max_tokens({"max_tokens": 5, "max_completion_tokens": 7}) == (
        "max_completion_tokens",
        7,
    )
    assert chat_parts.max_tokens({}) is None
    with pytest.raises(TranslationError) as raised:
        chat_parts.max_tokens({"max_tokens": True})
    assert raised.value.field == "body.max_tokens"
    assert chat_parts.stop_sequences("\n") == ["\n"]  # which to drop is the provider's rule
    with pytest.raises(TranslationError, match="between 0 and 1 for Gemini models"):
        chat_parts.number(1.5, "top_p", 0, 1, "Gemini")


def test_a_field_is_taken_at_any_value_another_only_at_a_neutral_one() -> None:
    neutral = chat_parts.neutral_only("n", "seed")
    body = {"model": "m", "n": 1, "seed": None}
    chat_parts.check_fields(body, takes={"model"}, neutral=neutral, refusal="no such feature")
    chat_parts.check_fields({"n": 3}, takes={"n"}, neutral=neutral, refusal="no such feature")
    with pytest.raises(TranslationError, match="no such feature") as raised:
        chat_parts.check_fields(
            {"model": "m", "n": 2}, takes={"model"}, neutral=neutral, refusal="no such feature"
        )
    assert raised.value.field == "body.n"
    with pytest.raises(TranslationError, match="not a chat completions field") as raised:
        chat_parts.check_fields({"bogus": None}, takes={"model"}, neutral=neutral, refusal="no such feature")
    assert raised.value.field == "body.bogus"
