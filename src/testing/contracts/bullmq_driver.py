"""The BullMQ adapter as a ``QueueDriver`` for the queue contract suite."""

from __future__ import annotations

from portside.adapters.bullmq import BullMQQueue
from portside.ports import JobOutcome, QueuePort

__all__ = ["BullMQQueueDriver"]


class BullMQQueueDriver:
    """Drives a ``BullMQQueue`` (isolated by its key prefix) through the contract suite."""

    def __init__(self, adapter: BullMQQueue) -> None:
        self._adapter = adapter

    @property
    def queue(self) -> QueuePort:
        """The adapter under test."""
        return self._adapter

    async def drain(self, queue: str) -> list[JobOutcome]:
        """Run due jobs with the registered handlers until none is due (``BullMQQueue.drain``)."""
        return await self._adapter.drain(queue)

    async def advance(self, seconds: float) -> None:
        """Promote delayed work due within ``seconds`` (``BullMQQueue.advance``)."""
        await self._adapter.advance(seconds)
