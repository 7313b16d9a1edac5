"""A NUL character can never reach Postgres text columns (run history, events)."""

from __future__ import annotations

import json

import pytest

from portside.adapters.memory import InMemoryQueue
from portside.ports import JobOptions, ValidationError
from portside.ports.validation import (
    check_job_id,
    check_stream_name,
    encode_payload,
    json_payload,
)


def test_a3_a_job_id_with_nul_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValidationError, match="contains a NUL character") as info:
        check_job_id("nul-\x00-id")
    assert info.value.field == "options.job_id"
    with pytest.raises(ValidationError, match="NUL"):
        JobOptions(job_id="a\x00b")


def test_o1_a_stream_name_with_nul_is_refused() -> None:
    with pytest.raises(ValidationError, match="stream contains a NUL character"):
        check_stream_name("run-\x00")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"note": "a\x00b"}, "data.note"),
        ({"items": [{"x": "ok"}, {"x": "\x00"}]}, "data.items[1].x"),
        ({"bad\x00key": 1}, "data key 'bad\\x00key'"),
    ],
)
async def test_a3_job_data_with_nul_is_refused_naming_the_field(
    data: dict[str, object], field: str
) -> None:
    """A3/Q1: jsonb (run history, dead letters) cannot hold NUL, so enqueue refuses it."""
    queue = InMemoryQueue()
    with pytest.raises(ValidationError, match="NUL") as info:
        await queue.enqueue("q", "job", data)
    assert info.value.field == field
    assert "base64" in (info.value.fix or "")
    assert (await queue.counts("q")).waiting == 0


def test_a3_a_literal_backslash_u0000_is_not_a_nul() -> None:
    """The fast check looks at the encoded text; an escaped backslash must not trip it."""
    assert json.loads(encode_payload({"path": "C:\\u0000"})) == {"path": "C:\\u0000"}


def test_o1_event_payload_with_nul_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"payload\.text contains a NUL"):
        json_payload({"text": "\x00"}, field="payload")
