"""Queue lifecycle events of the queue fake: logged rows and live event streams."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from portside.ports import EventStream, FailureKind, QueueEvent, QueueEventKind

__all__ = ["EventRow", "InMemoryEventStream", "to_event"]

EventRow = tuple[
    QueueEventKind, str, str, str | None, int, float, Any, Any, str | None, FailureKind | None
]
"""kind, queue, job_id, name, attempt, timestamp, progress, result, error, failure_kind."""


def to_event(row: EventRow) -> QueueEvent:
    """The port value of a logged row."""
    kind, queue, job_id, name, attempt, timestamp, progress, result, error, failure = row
    return QueueEvent(
        kind=kind,
        queue=queue,
        job_id=job_id,
        name=name,
        attempt=attempt,
        timestamp=timestamp,
        progress=progress,
        result=result,
        error=error,
        failure_kind=failure,
    )


class InMemoryEventStream:
    """Events of one queue from the moment it was created; buffered without limit until read.

    Iteration ends after ``aclose()`` or when the queue adapter closes (buffered events are
    still delivered in the second case).
    """

    def __init__(self, detach: Callable[[InMemoryEventStream], None]) -> None:
        self._detach = detach
        self._buffer: deque[QueueEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    def push(self, event: QueueEvent) -> None:
        """Deliver one event (called by the queue)."""
        if self._ended:
            return
        self._buffer.append(event)
        self._wake()

    def end(self) -> None:
        """Finish iteration once the buffer is read (the queue closed)."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> InMemoryEventStream:
        return self

    async def __anext__(self) -> QueueEvent:
        while not self._buffer:
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop receiving events; unread ones are dropped."""
        self._buffer.clear()
        self.end()
        self._detach(self)


def _conforms(stream: InMemoryEventStream) -> EventStream:
    return stream
