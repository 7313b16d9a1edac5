"""Helpers of the contract suites: event-driven waits with deadlines, probes, error checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from portside.ports import EventStream, Job, PortsideError, QueueEvent, ValidationError

__all__ = [
    "ConcurrencyProbe",
    "collect_events",
    "expect_invalid",
    "history",
    "wait_for_event",
]

DEADLINE = 10.0
"""Seconds any contract wait allows before failing with what it waited for."""


async def wait_for_event(flag: asyncio.Event, what: str) -> None:
    """Wait until ``flag`` is set, or fail after ``DEADLINE`` naming ``what`` was awaited."""
    try:
        async with asyncio.timeout(DEADLINE):
            await flag.wait()
    except TimeoutError:
        raise AssertionError(f"waited {DEADLINE:g} s for {what}") from None


async def collect_events(
    stream: EventStream,
    done: Callable[[list[QueueEvent]], bool],
    what: str,
) -> list[QueueEvent]:
    """Read ``stream`` until ``done(events_so_far)``; fail after ``DEADLINE`` naming ``what``."""
    events: list[QueueEvent] = []
    try:
        async with asyncio.timeout(DEADLINE):
            while not done(events):
                events.append(await anext(stream))
    except TimeoutError:
        seen = [(e.kind, e.job_id, e.attempt) for e in events]
        raise AssertionError(f"waited {DEADLINE:g} s for {what}; received {seen}") from None
    return events


def history(events: list[QueueEvent], job_id: str) -> list[tuple[str, int]]:
    """(kind, attempt) of one job's events, in order."""
    return [(event.kind, event.attempt) for event in events if event.job_id == job_id]


@contextmanager
def expect_invalid(field: str, *words: str) -> Iterator[pytest.ExceptionInfo[ValidationError]]:
    """Expect a portside ValidationError naming ``field`` (its ``field`` and its message)."""
    with pytest.raises(ValidationError) as info:
        yield info
    error = info.value
    assert isinstance(error, PortsideError)
    assert error.field == field, f"error names field {error.field!r}, expected {field!r}: {error}"
    assert field in str(error), f"message does not name {field!r}: {error}"
    for word in words:
        assert word in str(error), f"message does not mention {word!r}: {error}"


class ConcurrencyProbe:
    """A handler that measures how many attempts run at once (Q6).

    The first ``limit`` attempts hold until ``limit`` of them run together (proving the
    limit is reached); from then on every attempt passes through a yield point, where a
    worker exceeding its limit would show up in ``peak``.
    """

    def __init__(self, limit: int, timeout: float = DEADLINE) -> None:
        self.limit = limit
        self.timeout = timeout
        self.running = 0
        self.peak = 0
        self.finished = 0
        self.reached = asyncio.Event()
        self.stuck = False

    async def __call__(self, job: Job) -> Any:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.running >= self.limit:
                self.reached.set()
            if not self.reached.is_set():
                try:
                    async with asyncio.timeout(self.timeout):
                        await self.reached.wait()
                except TimeoutError:
                    self.stuck = True  # report it in the test; let the rest run through
                    self.reached.set()
            await asyncio.sleep(0)  # a yield point, not a wait: other attempts may start here
            return None
        finally:
            self.running -= 1
            self.finished += 1
