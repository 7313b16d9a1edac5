"""Shared input checks (ports.validation): every bad input names its field and the fix."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import BaseModel

from portside.ports import ValidationError
from portside.ports.validation import (
    MAX_NAME_LENGTH,
    MAX_PAYLOAD_BYTES,
    _check_json,
    _plain,
    check_job_id,
    check_job_name,
    check_queue_name,
    check_stream_name,
    encode_payload,
    json_payload,
)


def _error(call: Any, *args: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call(*args)
    return info.value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "queue is empty. pass a non-empty queue name"),
        ("   ", "queue is empty"),
        (None, "queue must be a string, got NoneType. pass the queue name as str"),
        (42, "queue must be a string, got int"),
        (
            "a" * 201,
            f"queue is 201 characters long. keep the queue name to at most {MAX_NAME_LENGTH}",
        ),
        ("has space", "queue name 'has space' is invalid. use letters, digits"),
        ("agents-run:", "queue name 'agents-run:' is invalid"),
        (":orchestrator", "queue name ':orchestrator' is invalid"),
        ("a::b", "queue name 'a::b' is invalid"),
    ],
)
def test_q1_queue_names(value: object, message: str) -> None:
    error = _error(check_queue_name, value)
    assert str(error).startswith(message)
    assert error.field == "queue"


def test_q1_namespaced_queue_names_are_valid() -> None:
    for name in (
        "agents-run:orchestrator",
        "ingest",
        "a.b_c-d:e:f",
        "sync-energy-retail-prd-hourly",
    ):
        assert check_queue_name(name) == name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "name is empty"),
        (b"bytes", "name must be a string, got bytes"),
        ("two\nlines", "job name 'two\\nlines' contains control characters"),
        ("nul\0", "name contains a NUL character"),
    ],
)
def test_job_names(value: object, message: str) -> None:
    error = _error(check_job_name, value)
    assert message in str(error)
    assert error.field == "name"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a:b", "job id 'a:b' contains ':'. BullMQ reserves ':' as its key separator"),
        ("123", "job id '123' is an integer. BullMQ reserves integer ids for generated ids"),
        (123, "options.job_id must be a string, got int"),
        ("", "options.job_id is empty"),
    ],
)
def test_q1_custom_job_ids(value: object, message: str) -> None:
    error = _error(check_job_id, value)
    assert str(error).startswith(message)
    assert error.field == "options.job_id"
    assert check_job_id("order-42") == "order-42"


def test_stream_names() -> None:
    assert _error(check_stream_name, "").field == "stream"
    assert "stream must be a string, got int" in str(_error(check_stream_name, 7))
    assert check_stream_name("run:01HZ") == "run:01HZ"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"x": float("nan")}, "data.x", "data.x is nan, which JSON cannot represent"),
        ({"x": float("-inf")}, "data.x", "data.x is -inf"),
        ({"n": 2**53}, "data.n", "outside JSON's safe range (±2**53-1). send it as a string"),
        ({"n": -(2**64)}, "data.n", "outside JSON's safe range"),
        ({"d": date(2026, 1, 1)}, "data.d", "data.d is a date, which is not JSON"),
        ({"s": {1, 2}}, "data.s", "data.s is a set, which is not JSON"),
        ({"b": b"raw"}, "data.b", "data.b is a bytes, which is not JSON"),
        ({"l": [1, {"deep": object()}]}, "data.l[1].deep", "is a object, which is not JSON"),
        ({1: "x"}, "data", "data has the non-string key 1. use string keys"),
        (["a"], "data", "data must be a JSON object (dict or pydantic model), got list"),
        ("text", "data", "got str. wrap the value in a dict"),
        (None, "data", "got NoneType"),
        ({"t": "\ud800"}, "data", "lone surrogate"),
    ],
)
def test_q2_non_json_payloads(data: object, field: str, message: str) -> None:
    """Q2: a payload JSON cannot carry is refused, naming the exact path."""
    error = _error(json_payload, data)
    assert message in str(error), str(error)
    assert error.field == field


def test_q2_deep_nesting_is_refused() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(70):
        node["x"] = {}
        node = node["x"]
    error = _error(json_payload, deep)
    assert "nested more than 64 levels deep. flatten the payload" in str(error)


def test_q2_oversized_payload_is_refused() -> None:
    error = _error(json_payload, {"blob": "x" * MAX_PAYLOAD_BYTES})
    assert f"over the {MAX_PAYLOAD_BYTES}-byte limit" in str(error)
    assert "store large content elsewhere and pass its key" in str(error)


def test_q2_payloads_are_normalised_json() -> None:
    class Payload(BaseModel):
        day: date
        tags: tuple[str, ...]

    assert json_payload(Payload(day=date(2026, 1, 2), tags=("a",))) == {
        "day": "2026-01-02",
        "tags": ["a"],
    }
    assert json_payload({"t": (1, 2), "n": None, "ok": True, "f": 1.5}) == {
        "t": [1, 2],
        "n": None,
        "ok": True,
        "f": 1.5,
    }
    assert (
        _error(
            json_payload,
            {"x": float("nan")},
        ).field
        == "data.x"
    )
    assert _error(json_payload, {"x": float("nan")}, "payload").field == "payload.x"


class _Colour(enum.StrEnum):
    RED = "red"


class _Count(enum.IntEnum):
    ONE = 1


class _Frozen(Mapping[str, Any]):
    """A read-only Mapping that is not a dict."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _nested(levels: int, leaf: Any) -> dict[str, Any]:
    node: Any = leaf
    for _ in range(levels):
        node = {"x": node}
    return {"top": node}


TRICKY: list[Any] = [
    {"n": 2**53 - 1, "m": -(2**53 - 1)},
    {"n": 2**53},
    {"n": -(2**53)},
    {"f": 1.7976931348623157e308, "g": -1.7976931348623157e308},
    {"f": float("inf")},
    {"f": float("nan")},
    {"f": -float("inf")},
    {"ok": True, "no": False, "none": None, "t": (1, [2, (3,)])},
    {"deep": [[{"k": {1: "x"}}]]},
    {"k": {None: 1}},
    {"k": {True: 1}},
    {"s": _Colour.RED, _Colour.RED: 1},
    {"i": _Count.ONE},
    {"m": MappingProxyType({"a": 1})},
    {"m": _Frozen(a=[1, 2])},
    {"bad": [1, {2, 3}]},
    {"b": b"x"},
    _nested(63, {}),
    _nested(63, {"leaf": 1}),
    _nested(62, {"leaf": [1]}),
    _nested(63, [1]),
    _nested(63, []),
    _nested(64, {}),
    _nested(64, 1),
    _nested(70, 1),
]


@pytest.mark.parametrize("data", TRICKY, ids=range(len(TRICKY)))
def test_q2_the_quick_payload_check_never_passes_what_the_full_check_refuses(data: Any) -> None:
    """Q2: ``_plain`` (exact types, no error paths) says yes only where the field-naming
    ``_check_json`` accepts, so the fast path can never let a bad payload through."""
    try:
        _check_json(data, "data", 0)
    except ValidationError:
        assert not _plain(data, 0)
        with pytest.raises(ValidationError):
            encode_payload(data)
    else:
        assert json_payload(data) == _reencoded(data)


def _reencoded(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(key): _reencoded(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_reencoded(value) for value in data]
    return data


def test_q1_encoded_payloads_are_compact_json_text() -> None:
    """Q1: the text sent to Redis is compact and keeps non-ASCII characters as they are."""
    assert encode_payload({"a": [1, 2.5, None], "b": "é"}) == '{"a":[1,2.5,null],"b":"é"}'


def test_q2_mappings_that_are_not_dicts_are_json_objects() -> None:
    """Q2: any Mapping is a JSON object, at the top or nested (it used to crash the encoder
    with a TypeError instead of being accepted)."""
    payload = MappingProxyType({"inner": _Frozen(a=1), "list": [MappingProxyType({"b": 2})]})
    assert json_payload(payload) == {"inner": {"a": 1}, "list": [{"b": 2}]}
    assert _error(json_payload, _Frozen(x=float("nan"))).field == "data.x"
