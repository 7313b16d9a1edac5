"""The worker runtime: one consumer per registry queue, sampled metrics, graceful stop (A2, Q10)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from portside.app.attempts import AttemptRunner
from portside.app.errors import UnknownQueueError
from portside.app.logs import event
from portside.app.metrics import WorkerMetrics
from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import DEFAULT_FAILURE_RETENTION, ValidationError, WorkerHandle, WorkerStatus

__all__ = ["TIMEOUT_MARGIN", "WorkerRuntime"]

TIMEOUT_MARGIN = 5.0
"""Seconds added to a queue's job timeout for the adapter's own timeout: the runtime's timeout
fires first, so a timed-out attempt is still recorded in run history."""

_log = logging.getLogger("portside.worker")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WorkerRuntime:
    """Runs the registry's jobs on ``infra``.

    Args:
        registry: The jobs.
        infra: Adapters; ``infra.history`` is required (run history and dead letters).
        queues: Only these queues (default: every registry queue).
        grace: Seconds ``stop()`` waits for in-flight jobs by default.
        clock: Timestamps for run history (a virtual clock in tests).
        metrics: Where to count; a fresh ``WorkerMetrics`` by default.
        sample_interval: Seconds between queue-depth samples; None disables the sampler.
        retention: Dead letters older than this are purged.
        retention_interval: Seconds between purges; None disables them.
        started_at: ``time.perf_counter()`` when the process started, for the start-up time.
    """

    def __init__(
        self,
        registry: Registry,
        infra: Infra,
        *,
        queues: Iterable[str] | None = None,
        grace: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        metrics: WorkerMetrics | None = None,
        sample_interval: float | None = 15.0,
        retention: timedelta = DEFAULT_FAILURE_RETENTION,
        retention_interval: float | None = 6 * 3600.0,
        started_at: float | None = None,
    ) -> None:
        known = registry.queues()
        chosen = list(dict.fromkeys(queues)) if queues is not None else known
        for queue in chosen:
            if queue not in known:
                raise UnknownQueueError(queue, known)
        if not chosen:
            raise ValidationError(
                "the registry has no jobs, so the worker has no queue to consume",
                fix="register at least one JobDefinition",
                field="queues",
            )
        if grace < 0:
            raise ValidationError(f"grace is {grace!r}", fix="give seconds >= 0", field="grace")
        self.registry = registry
        self.infra = infra
        self.queues = chosen
        self.grace = grace
        self.metrics = metrics or WorkerMetrics()
        self._clock = clock
        self._sample_interval = sample_interval
        self._retention = retention
        self._retention_interval = retention_interval
        self._started_at = started_at
        self._handles: dict[str, WorkerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.startup_seconds: float | None = None

    @property
    def running(self) -> bool:
        """Whether consumers are started and not yet stopped."""
        return bool(self._handles)

    async def start(self) -> None:
        """Start one consumer per queue; returns once every consumer is fetching."""
        if self._handles:
            return
        begin = time.perf_counter()
        history = self.infra.require_history()
        runner = AttemptRunner(self.registry, self.infra, history, self.metrics, self._clock)
        event(_log, "worker.starting", queues=self.queues, infra=self.infra.name, pid=os.getpid())
        handles: dict[str, WorkerHandle] = {}
        for queue in self.queues:
            settings = self.registry.queue_settings(queue)
            handles[queue] = self.infra.queue.consume(
                queue,
                runner,
                concurrency=settings.concurrency,
                rate_limit=settings.rate_limit,
                timeout=settings.timeout + TIMEOUT_MARGIN,
                classify=runner.classify,
            )
        try:
            await asyncio.gather(*(handle.start() for handle in handles.values()))
        except BaseException:
            await asyncio.gather(
                *(handle.close(0) for handle in handles.values()), return_exceptions=True
            )
            raise
        self._handles = handles
        ready = time.perf_counter()
        origin = self._started_at if self._started_at is not None else begin
        self.startup_seconds = ready - origin
        self.metrics.startup.set(self.startup_seconds)
        event(
            _log,
            "worker.ready",
            queues=self.queues,
            startup_ms=round(self.startup_seconds * 1000, 1),
            start_ms=round((ready - begin) * 1000, 1),
        )
        if self._sample_interval is not None:
            self._tasks.append(asyncio.create_task(self._every(self._sample_interval, self.sample)))
        if self._retention_interval is not None:
            self._tasks.append(
                asyncio.create_task(self._every(self._retention_interval, self.purge_expired))
            )

    async def stop(self, grace: float | None = None) -> None:
        """Stop intake, wait up to ``grace`` seconds for in-flight jobs, then release them."""
        if not self._handles:
            return
        wait = self.grace if grace is None else grace
        event(_log, "worker.stopping", queues=self.queues, grace=wait)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        handles, self._handles = self._handles, {}
        results = await asyncio.gather(
            *(handle.close(wait) for handle in handles.values()), return_exceptions=True
        )
        for queue, result in zip(handles, results, strict=True):
            if isinstance(result, BaseException):
                event(_log, "worker.close_failed", logging.ERROR, queue=queue, error=str(result))
        statuses = [handle.status() for handle in handles.values()]
        event(
            _log,
            "worker.stopped",
            queues=self.queues,
            processed=sum(status.processed for status in statuses),
            failed=sum(status.failed for status in statuses),
        )

    def status(self) -> list[WorkerStatus]:
        """Liveness and counters of every consumer."""
        return [handle.status() for handle in self._handles.values()]

    async def sample(self) -> None:
        """Sample every queue's counts into the depth gauges."""
        for queue in self.queues:
            self.metrics.queue_sampled(queue, await self.infra.queue.counts(queue))

    async def purge_expired(self) -> int:
        """Delete dead letters past retention; return how many."""
        removed = await self.infra.require_history().purge_failures(
            self._retention, now=self._clock()
        )
        if removed:
            event(_log, "dead_letters.purged", removed=removed)
        return removed

    async def _every(self, seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await action()
            except Exception as error:
                # A sampler or purge failure must never stop the worker; it is retried.
                event(_log, "worker.background_failed", logging.WARNING, error=str(error))
            await asyncio.sleep(seconds)

    async def __aenter__(self) -> WorkerRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
