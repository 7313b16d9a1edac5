"""Outbox argument rules every adapter shares: append input, subscribe and retention (O1, O4)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from portside.ports import ValidationError
from portside.ports.inputs import check_append, check_from_seq, check_seconds


class Step(BaseModel):
    name: str
    attempt: int


def test_o1_append_input_is_normalised() -> None:
    stream, kind, data, text, key, carried = check_append(
        "run-1", "step", Step(name="a", attempt=2), "k"
    )
    assert (stream, kind, data, key) == ("run-1", "step", {"name": "a", "attempt": 2}, "k")
    assert carried is None
    assert text == '{"name":"a","attempt":2}'


def test_o1_unicode_payload_is_kept_verbatim() -> None:
    *_, text, _, _ = check_append("s", "t", {"city": "Zürich", "emoji": "🙂"}, None)
    assert text == '{"city":"Zürich","emoji":"🙂"}'


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (("s", "t", {"a": {"b": [1, "x\x00"]}}, None), "payload.a.b[1]", "NUL"),
        (("s", "t", {"k\x00": 1}, None), "payload key 'k\\x00'", "NUL"),
        (("s\x00", "t", {}, None), "stream", "NUL"),
        (("s", "t\x00", {}, None), "type", "NUL"),
        (("s", "t", {}, "k\x00"), "key", "NUL"),
        (("s", "  ", {}, None), "type", "empty"),
        (("s", 3, {}, None), "type", "must be a string"),
        (("s", "t" * 201, {}, None), "type", "201 characters"),
        (("s", "t", {}, ""), "key", "empty"),
        (("s", "t", {"n": 2**60}, None), "payload.n", "safe range"),
        (("s", "t", "text", None), "payload", "JSON object"),
    ],
)
def test_o1_bad_append_input_names_the_field(
    args: tuple[object, object, object, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        check_append(*args)
    assert info.value.field == field
    assert info.value.fix


def test_subscribe_and_retention_arguments() -> None:
    assert check_from_seq(1) == 1
    assert check_seconds(0, "older_than") == 0.0
    assert check_seconds(1.5, "older_than") == 1.5
    for bad in (0, -3, True, 1.0, None):
        with pytest.raises(ValidationError):
            check_from_seq(bad)


@pytest.mark.parametrize("bad", ["", 7, "x" * 8193, "a\x00b"])
def test_obs1_a_bad_trace_context_is_refused_naming_the_field(bad: object) -> None:
    """OBS1: trace_context is checked with the other append arguments."""
    with pytest.raises(ValidationError) as caught:
        check_append("s", "t", {}, None, bad)
    assert caught.value.field == "trace_context"
