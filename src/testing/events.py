"""Capturing a queue's lifecycle events in a test, with event-driven waits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType

from portside.ports import EventStream, QueueEvent, QueueEventKind, QueuePort
from portside.testing.waiting import WaitTimeout

__all__ = ["EventCapture"]

EventFilter = Callable[[QueueEvent], bool]


class EventCapture:
    """Collects the events of one queue from the moment it is created.

    It subscribes at once (``QueuePort.events``), so events of anything done after creating it
    are captured; a background task moves them into ``events``. Close it (or use it as
    ``async with``) to stop; the ``queue_events`` fixture closes it after the test.

    Args:
        queue_port: The adapter, real or fake.
        queue: The queue name.
    """

    def __init__(self, queue_port: QueuePort, queue: str) -> None:
        self.queue = queue
        self.events: list[QueueEvent] = []
        """Every event received so far, in arrival order."""
        self._stream: EventStream = queue_port.events(queue)
        self._changed = asyncio.Condition()
        self._error: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(
            self._collect(), name=f"portside-events-{queue}"
        )

    async def _collect(self) -> None:
        try:
            async for event in self._stream:
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by wait_for instead of dying silently
            async with self._changed:
                self._error = exc
                self._changed.notify_all()

    def kinds(self, job_id: str | None = None) -> list[QueueEventKind]:
        """The kinds received so far (of one job, if given), in order."""
        return [e.kind for e in self.events if job_id is None or e.job_id == job_id]

    def matching(
        self, kind: QueueEventKind | None = None, *, job_id: str | None = None
    ) -> list[QueueEvent]:
        """The events received so far of ``kind`` and/or ``job_id``."""
        return [
            e
            for e in self.events
            if (kind is None or e.kind == kind) and (job_id is None or e.job_id == job_id)
        ]

    async def wait_for(
        self,
        kind: QueueEventKind | None = None,
        *,
        job_id: str | None = None,
        count: int = 1,
        where: EventFilter | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - documented harness API (docs/harness.md)
    ) -> list[QueueEvent]:
        """Wait until ``count`` events match, woken by each arriving event (no polling).

        Returns:
            The matching events (at least ``count``).

        Raises:
            WaitTimeout: Saying what was awaited and listing the kinds received.
        """

        def found() -> list[QueueEvent]:
            hits = self.matching(kind, job_id=job_id)
            return [e for e in hits if where is None or where(e)]

        deadline = time.monotonic() + timeout
        async with self._changed:
            while len(found()) < count and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
            hits = found()
        if len(hits) >= count:
            return hits
        what = f"{count} {kind or 'any'} event(s)" + (f" of job {job_id}" if job_id else "")
        reason = f"; the stream failed: {self._error!r}" if self._error else ""
        raise WaitTimeout(
            f"timed out after {timeout:g} s waiting for {what} on queue {self.queue!r}; "
            f"received {self.kinds()}{reason}"
        )

    async def close(self) -> None:
        """Stop capturing (events received stay in ``events``)."""
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stream.aclose()

    async def __aenter__(self) -> EventCapture:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
