"""VirtualClock: time in the fakes moves only when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portside.adapters.memory import DEFAULT_START, VirtualClock
from portside.ports import ValidationError


def test_starts_at_a_fixed_instant_so_runs_are_reproducible() -> None:
    clock = VirtualClock()
    assert clock.now() == DEFAULT_START
    assert clock.datetime() == datetime(2026, 1, 1, tzinfo=UTC)
    assert VirtualClock(start=0).now() == 0.0


def test_advance_moves_time_and_tells_listeners() -> None:
    clock = VirtualClock()
    seen: list[float] = []
    remove = clock.on_advance(seen.append)
    assert clock.advance(1.5) == DEFAULT_START + 1.5
    clock.advance(0)
    remove()
    clock.advance(10)
    assert seen == [DEFAULT_START + 1.5, DEFAULT_START + 1.5]
    assert clock.now() == DEFAULT_START + 11.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "seconds is -1. pass a finite number of seconds, 0 or more"),
        (float("nan"), "seconds is nan"),
        (float("inf"), "seconds is inf"),
        (True, "seconds must be a number of seconds, got bool"),
        ("5", "seconds must be a number of seconds, got str"),
    ],
)
def test_advance_refuses_what_is_not_a_forward_step(value: object, message: str) -> None:
    clock = VirtualClock()
    with pytest.raises(ValidationError, match="^" + message.replace(".", r"\.")) as info:
        clock.advance(value)  # type: ignore[arg-type]
    assert info.value.field == "seconds"
    assert clock.now() == DEFAULT_START


def test_start_must_be_a_finite_number() -> None:
    with pytest.raises(ValidationError, match="start") as info:
        VirtualClock(start=float("nan"))
    assert info.value.field == "start"
