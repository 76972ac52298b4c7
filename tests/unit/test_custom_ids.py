"""gateway.formats.custom_ids: the fast read of a line's custom_id finds what json.loads finds."""

from __future__ import annotations

import json
from typing import Any

from gateway.formats.custom_ids import custom_id_of, id_key, id_of_key, quoted, unquoted
from hypothesis import given, settings
from hypothesis import strategies as st


def parsed(line: bytes) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) and custom_id else None


texts = st.text(alphabet=st.sampled_from('ab"\\ é\n\t{}:,') | st.characters(), max_size=12)
values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.integers() | texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts | st.just("custom_id"), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    fields: list[tuple[str, Any]] = []
    if draw(st.booleans()):
        fields.append(("id", draw(texts)))
    if draw(st.booleans()):
        fields.append(("custom_id", draw(texts | values)))
    fields += draw(st.lists(st.tuples(texts | st.just("custom_id"), values), max_size=3))
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    body = ", ".join(f"{json.dumps(key)}: {_dumped(value, draw(st.booleans()))}" for key, value in fields)
    spaces = draw(st.sampled_from(["", " ", "\t "]))
    return f"{spaces}{{{spaces}{body}}}".encode()


def _dumped(value: Any, ascii_only: bool) -> str:
    """JSON of `value`, its non-ASCII characters as they are unless `ascii_only`; a lone
    surrogate (which UTF-8 cannot hold) always escaped, as a JSON file in UTF-8 holds it."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


@settings(max_examples=500, deadline=None)
@given(line=lines())
def test_the_fast_read_finds_what_json_loads_finds(line: bytes) -> None:
    assert custom_id_of(line) == parsed(line)


def test_fast_path_and_others() -> None:
    assert custom_id_of(b'{"custom_id": "a-1", "body": {}}') == "a-1"
    assert custom_id_of(b'{"id": "batch_req_1", "custom_id": "a-1", "response": {}}') == "a-1"
    assert custom_id_of(b'{"custom_id": "x", "custom_id": "y"}') == "y"  # json.loads: the last wins
    assert custom_id_of(b'{"custom_id": "a\\"b"}') == 'a"b'
    assert custom_id_of(b'{"body": {"custom_id": "nested"}}') is None
    assert custom_id_of(b'{"custom_id": ""}') is None
    assert custom_id_of(b"not json") is None
    assert custom_id_of(b'["custom_id"]') is None


@given(custom_id=st.text(min_size=1))
def test_quoted_round_trips(custom_id: str) -> None:
    text = quoted(custom_id)
    assert b"\t" not in text and b"\n" not in text
    assert unquoted(text) == custom_id


def test_a_custom_ids_key_is_what_a_line_holds_between_its_quotes_when_it_needs_no_escape() -> None:
    line = json.dumps({"id": "batch_req_1", "custom_id": "héllo ✓"}, ensure_ascii=False).encode()
    assert id_key(str(custom_id_of(line))) == line.split(b'"')[7] == "héllo ✓".encode()
    assert id_key(unquoted(quoted("héllo ✓"))) == id_key("héllo ✓")  # the index writes it escaped


@given(st.text(alphabet=st.characters(blacklist_categories=())))
def test_every_custom_id_has_a_key_and_comes_back_from_it(custom_id: str) -> None:
    """Lone surrogates too: JSON escapes them, and json.loads gives them back."""
    assert id_of_key(id_key(custom_id)) == custom_id
    assert id_key(unquoted(quoted(custom_id))) == id_key(custom_id)
