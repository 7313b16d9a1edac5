"""Pure checks of the Postgres outbox: append input, settings, back-off (O1, O5)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from portside.adapters.postgres.checks import check_append, check_from_seq, check_older_than
from portside.adapters.postgres.settings import OutboxSettings
from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import ValidationError


class Step(BaseModel):
    name: str
    attempt: int


def test_o1_append_input_is_normalised() -> None:
    stream, kind, data, text, key = check_append("run-1", "step", Step(name="a", attempt=2), "k")
    assert (stream, kind, data, key) == ("run-1", "step", {"name": "a", "attempt": 2}, "k")
    assert text == '{"name":"a","attempt":2}'


def test_o1_unicode_payload_is_kept_verbatim() -> None:
    *_, text, _ = check_append("s", "t", {"city": "Zürich", "emoji": "🙂"}, None)
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
    assert check_older_than(0) == 0.0
    assert check_older_than(1.5) == 1.5
    for bad in (0, -3, True, 1.0, None):
        with pytest.raises(ValidationError):
            check_from_seq(bad)


def test_settings_reject_unknown_and_out_of_range_knobs() -> None:
    assert OutboxSettings.from_tuning({}).batch_size == 500
    with pytest.raises(ValidationError, match="batch_sise") as info:
        OutboxSettings.from_tuning({"batch_sise": 10})
    assert info.value.field == "batch_sise"
    assert "batch_size" in str(info.value)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        OutboxSettings.from_tuning({"batch_size": 0})
    with pytest.raises(ValidationError, match="pool_min_size 5 exceeds"):
        OutboxSettings.from_tuning({"pool_min_size": 5, "pool_max_size": 2})


def test_o5_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = ReconnectBackoff(0.1, 1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.failures == 8
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_o5_backoff_jitter_spreads_clients_apart() -> None:
    delays = {ReconnectBackoff(1.0, 1.0).next_delay() for _ in range(50)}
    assert len(delays) > 40
