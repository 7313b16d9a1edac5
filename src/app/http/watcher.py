"""Follow the queues' lifecycle events in the background: listeners (webhooks) and waiting ages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from portside.app.logs import event as log_event
from portside.ports import EventStream, QueueEvent, QueuePort

__all__ = ["EventListener", "QueueWatcher"]

EventListener = Callable[[QueueEvent], Awaitable[None]]

_log = logging.getLogger("portside.http.watcher")
_MAX_TRACKED = 10_000
_RETRY_FIRST = 0.5
_RETRY_MAX = 30.0
_LEAVES_WAITING = frozenset({"active", "completed", "failed", "retrying", "stalled"})


class QueueWatcher:
    """Reads ``queue.events(...)`` of each queue and hands every event to the listeners.

    It also remembers which jobs it saw enqueued and not yet started, so it can tell the
    age of the oldest one it knows of (``oldest_waiting``): a lower bound when jobs were
    waiting before the watcher started. A broken event stream is reopened with back-off.

    Args:
        queue: The queue port.
        queues: The queues to follow.
        clock: Epoch seconds now.
    """

    def __init__(
        self,
        queue: QueuePort,
        queues: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self.queues = tuple(queues)
        self._clock = clock
        self._listeners: list[EventListener] = []
        self._waiting: dict[str, dict[str, float]] = {name: {} for name in self.queues}
        self._tasks: list[asyncio.Task[None]] = []

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` for every event (its errors are logged, never fatal)."""
        self._listeners.append(listener)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        """Open every queue's event stream; events from now on reach the listeners."""
        if self._tasks:
            return
        for name in self.queues:
            stream = self._queue.events(name)
            self._tasks.append(
                asyncio.create_task(self._follow(name, stream), name=f"portside-watch-{name}")
            )

    async def stop(self) -> None:
        """Close every stream."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def oldest_waiting(self, queue: str) -> float | None:
        """Seconds the oldest job seen enqueued (and not yet started) has waited, or None."""
        waiting = self._waiting.get(queue)
        if not waiting:
            return None
        return max(self._clock() - min(waiting.values()), 0.0)

    def track(self, event: QueueEvent) -> None:
        """Update the waiting jobs from ``event`` (called for every event read)."""
        waiting = self._waiting.setdefault(event.queue, {})
        if event.kind == "enqueued":
            if len(waiting) < _MAX_TRACKED:
                waiting.setdefault(event.job_id, event.timestamp)
        elif event.kind in _LEAVES_WAITING:
            waiting.pop(event.job_id, None)

    async def _follow(self, name: str, stream: EventStream) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                async for item in stream:
                    delay = _RETRY_FIRST
                    await self._dispatch(item)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log_event(
                    _log, "watcher.stream_failed", logging.WARNING, queue=name, error=str(error)
                )
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            # Reconnect back-off after a failed event stream (not a wait for a condition).
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
            stream = self._queue.events(name)

    async def _dispatch(self, item: QueueEvent) -> None:
        self.track(item)
        for listener in list(self._listeners):
            try:
                await listener(item)
            except Exception as error:
                log_event(
                    _log,
                    "watcher.listener_failed",
                    logging.WARNING,
                    queue=item.queue,
                    job_id=item.job_id,
                    kind=item.kind,
                    error=str(error),
                )
