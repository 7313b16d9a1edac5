"""The queue fake's worker handle: a consumer of one queue, whose slots the job runner runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from portside.adapters.memory.queue.state import QueueState
from portside.ports import (
    AbandonedHandler,
    Classifier,
    ConfigurationError,
    JobHandler,
    RateLimit,
    Retention,
    WorkerHandle,
    WorkerStatus,
)
from portside.ports.inputs import check_seconds

__all__ = ["InMemoryWorker", "SlotRunner"]

SlotRunner = Callable[["InMemoryWorker"], Coroutine[Any, Any, None]]
"""Runs one of a started worker's slots until the worker closes (``JobRunner.run_slot``)."""


class InMemoryWorker:
    """Runs ``handler`` for jobs of one queue, at most ``concurrency`` at once.

    Not started, it only serves ``drain()``; started, it also runs jobs in the background
    on the event loop, like a real worker. ``processed`` counts finished attempts and
    ``failed`` the attempts that raised. Made by ``InMemoryQueue.consume()``.

    Args:
        state: The state of the queue it consumes.
        handler: The coroutine function that runs one attempt.
        concurrency: Attempts at once at most.
        rate_limit: Jobs per window the queue's workers may start, if limited.
        timeout: Seconds an attempt may run when its job sets no timeout.
        classify: Decides transient or permanent for a handler's error.
        on_abandoned: Kept for the port; the fake's jobs never stall, so it is never called.
        keep_complete: Retention of completed jobs that set none of their own.
        keep_fail: Retention of failed jobs that set none of their own.
        run_slot: Runs one of the worker's slots once started.
        detach: Called once when the worker has closed.
    """

    def __init__(
        self,
        state: QueueState,
        handler: JobHandler,
        *,
        concurrency: int,
        rate_limit: RateLimit | None,
        timeout: float | None,
        classify: Classifier | None,
        on_abandoned: AbandonedHandler | None,
        run_slot: SlotRunner,
        keep_complete: bool | int | Retention = False,
        keep_fail: bool | int | Retention = False,
        detach: Callable[[InMemoryWorker], None],
    ) -> None:
        self.state = state
        self.handler = handler
        self.concurrency = concurrency
        self.rate_limit = rate_limit
        self.timeout = timeout
        self.classify = classify
        self.on_abandoned = on_abandoned
        self.keep_complete = keep_complete
        self.keep_fail = keep_fail
        self.active = 0
        self.processed = 0
        self.failed = 0
        self.started = False
        self.paused = False
        self.closing = False
        self.closed = False
        self.last_fetch_at: float | None = None
        self.name = "memory"
        """How ``list_workers`` names it (the queue numbers its workers)."""
        self.connected_at = 0.0
        """When the queue made it (virtual clock)."""
        self._run_slot = run_slot
        self._detach = detach
        self._slots: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Begin running jobs in the background (idempotent)."""
        if self.closing:
            raise ConfigurationError(
                f"the worker of queue {self.state.name!r} is closed",
                fix="create a new one with queue.consume(...)",
            )
        if self.started:
            return
        self.started = True
        for _ in range(self.concurrency):
            slot = asyncio.create_task(self._run_slot(self))
            self._slots.add(slot)
            slot.add_done_callback(self._slots.discard)

    async def close(self, grace: float = 30.0) -> None:
        """Stop taking jobs; wait up to ``grace`` seconds (real time) for running ones.

        Attempts still running after the grace period are cancelled and their jobs go back to
        waiting with a ``stalled`` event, as a real worker's stalled jobs do.
        """
        grace = check_seconds(grace, "grace")
        if self.closing:
            return
        self.closing = True
        self.state.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self.active:
                    await self.state.changed()
        current = asyncio.current_task()
        stuck = [
            record.task
            for record in list(self.state.active)
            if record.worker is self and record.task not in (None, current)
        ]
        victims = [task for task in (*stuck, *self._slots) if task is not None]
        for task in victims:
            task.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while self.active:
                    await self.state.changed()
        self.closed = True
        self._detach(self)
        self.state.wake()

    async def pause(self) -> None:
        """Stop taking new jobs in this worker; running ones finish."""
        self.paused = True

    async def resume(self) -> None:
        """Take jobs again after :meth:`pause`."""
        self.paused = False
        self.state.wake()

    def status(self) -> WorkerStatus:
        """Liveness and counters."""
        return WorkerStatus(
            queue=self.state.name,
            running=self.started and not self.closing,
            paused=self.paused,
            concurrency=self.concurrency,
            active=self.active,
            processed=self.processed,
            failed=self.failed,
            last_fetch_at=self.last_fetch_at,
        )

    async def __aenter__(self) -> InMemoryWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"InMemoryWorker(queue={self.state.name!r}, concurrency={self.concurrency})"


def _conforms(worker: InMemoryWorker) -> WorkerHandle:
    return worker
