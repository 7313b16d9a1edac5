"""Test helpers: recording outbox handlers and condition waits with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent, OutboxHandler
from portside.testing import wait_for

__all__ = ["DEADLINE", "Deliveries", "append_many", "wait_until"]

DEADLINE = 20.0


class Deliveries:
    """Records deliveries of one or more handlers in one global order; waits for a count."""

    def __init__(self) -> None:
        self.log: list[tuple[str, OutboxEvent]] = []
        self._changed = asyncio.Condition()

    def handler(self, name: str = "a") -> OutboxHandler:
        """A handler that records each event under ``name`` (e.g. which publisher)."""

        async def record(event: OutboxEvent) -> None:
            self.log.append((name, event))
            async with self._changed:
                self._changed.notify_all()

        return record

    @property
    def events(self) -> list[OutboxEvent]:
        """Every delivered event, in delivery order."""
        return [event for _, event in self.log]

    def seqs(self, stream: str) -> list[int]:
        """The delivered seqs of ``stream``, in delivery order."""
        return [event.seq for event in self.events if event.stream == stream]

    async def wait_for(self, count: int, timeout: float = DEADLINE) -> list[OutboxEvent]:
        """Wait until ``count`` deliveries were recorded; fail naming what arrived."""
        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.log) >= count), timeout
                )
        except TimeoutError:
            tail = [(event.stream, event.seq) for event in self.events[-20:]]
            raise AssertionError(
                f"waited {timeout} s for {count} outbox deliveries, got {len(self.log)}; "
                f"last ones: {tail}"
            ) from None
        return self.events


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE
) -> None:
    """Re-run ``check`` (e.g. a query) until it is true; fail naming ``what`` at the deadline."""
    await wait_for(check, timeout=timeout, message=what)


async def append_many(outbox: PostgresOutbox, stream: str, count: int, **payload: Any) -> None:
    """Append ``count`` events to ``stream`` in one transaction."""
    async with outbox.transaction() as tx:
        for index in range(count):
            await outbox.append(tx, stream, "test.event", {"i": index, **payload})
