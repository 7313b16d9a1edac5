"""Drivers that run the contract suites on the in-memory fakes."""

from __future__ import annotations

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
from portside.ports import JobOutcome
from portside.testing.contracts.drivers import OutboxDriver, QueueDriver

__all__ = ["InMemoryOutboxDriver", "InMemoryQueueDriver"]


class InMemoryQueueDriver:
    """Drives an :class:`InMemoryQueue`: ``drain`` and ``advance`` are the fake's own.

    Args:
        queue: The fake under test; a fresh one by default.
    """

    def __init__(self, queue: InMemoryQueue | None = None) -> None:
        self._queue = queue if queue is not None else InMemoryQueue()

    @property
    def queue(self) -> InMemoryQueue:
        """The fake under test."""
        return self._queue

    async def drain(self, queue: str) -> list[JobOutcome]:
        """Run the due jobs of ``queue`` until idle (``InMemoryQueue.drain``)."""
        return await self._queue.drain(queue)

    async def advance(self, seconds: float) -> None:
        """Move the fake's virtual clock."""
        await self._queue.advance(seconds)

    async def aclose(self) -> None:
        """Close the fake."""
        await self._queue.close()


class InMemoryOutboxDriver:
    """Drives an :class:`InMemoryOutbox`; ``another_outbox`` shares its storage.

    Args:
        outbox: The fake under test; a fresh one by default.
    """

    def __init__(self, outbox: InMemoryOutbox | None = None) -> None:
        self._outbox = outbox if outbox is not None else InMemoryOutbox()
        self._others: list[InMemoryOutbox] = []

    @property
    def outbox(self) -> InMemoryOutbox:
        """The fake under test."""
        return self._outbox

    async def another_outbox(self) -> InMemoryOutbox:
        """A second outbox on the same storage (a second publisher, O6)."""
        other = self._outbox.share()
        self._others.append(other)
        return other

    async def aclose(self) -> None:
        """Close the fake and every outbox ``another_outbox`` made."""
        for outbox in (*self._others, self._outbox):
            await outbox.close()


def _conforms(
    queue: InMemoryQueueDriver, outbox: InMemoryOutboxDriver
) -> tuple[QueueDriver, OutboxDriver]:
    return queue, outbox
