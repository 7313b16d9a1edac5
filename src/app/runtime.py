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
from typing import TYPE_CHECKING, Any, Literal

from portside.app.attempts import AttemptRunner
from portside.app.errors import UnknownQueueError
from portside.app.logs import add_log_context, event, flush_logs
from portside.app.metrics import WorkerMetrics
from portside.app.queue_caps import apply_queue_caps
from portside.app.registry import Registry
from portside.app.run_recorder import RUNNING_ROW_AFTER, RunRecorder
from portside.infra import Infra
from portside.ports import (
    DEFAULT_FAILURE_RETENTION,
    HistoryPort,
    ValidationError,
    WorkerHandle,
    WorkerStatus,
)
from portside.ports.history import DEFAULT_RUN_RETENTION

if TYPE_CHECKING:
    from portside.app.tracing.spans import Tracing

__all__ = [
    "DEFAULT_LOST_AFTER",
    "DEFAULT_OUTBOX_RETENTION",
    "STOP_MARGIN",
    "WorkerRuntime",
]

DEFAULT_OUTBOX_RETENTION = timedelta(days=7)
"""How long published outbox events are kept (``PORTSIDE_OUTBOX_RETENTION``)."""

DEFAULT_LOST_AFTER = 60.0
"""BullMQ's default lock duration (30 s) plus its stalled-check interval (30 s)."""

STOP_MARGIN = 10.0
"""Seconds ``stop(grace)`` may take beyond ``grace``: an adapter whose close hangs is abandoned
(and logged as ``worker.close_timeout``) so the process can still exit."""

_BACKGROUND_WAIT = 2.0
"""Seconds a cancelled sampler or purge gets to end (part of ``STOP_MARGIN``)."""

_CANCEL_WAIT = 1.0
"""Seconds an abandoned close gets to unwind after its cancellation (part of ``STOP_MARGIN``)."""

_log = logging.getLogger("portside.worker")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _per_queue(recorder: RunRecorder, queues: list[str]) -> dict[str, int]:
    return {queue: recorder.in_flight(queue) for queue in queues}


def _where(task: asyncio.Task[None]) -> str:
    """The chain of awaits a task is suspended in, for the close-timeout log."""
    steps: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(steps) < 20:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            steps.append(type(awaited).__name__)
            break
        steps.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " > ".join(steps) or "finished"


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
        run_retention: Finished run-history rows older than this are purged; None keeps them
            forever. Running attempts are never purged.
        retention_interval: Seconds between purges; None disables them (all kinds).
        outbox_retention: Published outbox events older than this are purged (Q15); None
            keeps them.
        lost_after: Seconds after which a ``running`` run-history row nobody vouched for is
            closed as ``lost``: the queue's lock duration plus its stalled-check interval, so
            the job has surely been taken back by then. None never closes rows.
        running_row_after: Seconds an attempt runs before it gets a ``running`` row (shorter
            attempts are written once, when they end).
        started_at: ``time.perf_counter()`` when the process started, for the start-up time.
        tracing: ``"auto"``: decided at ``start()`` by ``portside.app.tracing.resolve_tracing``
            (``$PORTSIDE_TRACING``; on when an OpenTelemetry SDK is configured); a ``Tracing``:
            every attempt is a consumer span; None: no tracing, and no cost for it.
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
        run_retention: timedelta | None = DEFAULT_RUN_RETENTION,
        retention_interval: float | None = 6 * 3600.0,
        outbox_retention: timedelta | None = DEFAULT_OUTBOX_RETENTION,
        lost_after: float | None = DEFAULT_LOST_AFTER,
        running_row_after: float = RUNNING_ROW_AFTER,
        started_at: float | None = None,
        tracing: Tracing | Literal["auto"] | None = "auto",
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
        if run_retention is not None and run_retention <= timedelta(0):
            raise ValidationError(
                f"run_retention is {run_retention!r}",
                fix="give a positive timedelta, or None to keep run history forever",
                field="run_retention",
            )
        self.registry = registry
        self.infra = infra
        self.queues = chosen
        self.grace = grace
        self.metrics = metrics or WorkerMetrics()
        self._clock = clock
        self._sample_interval = sample_interval
        self._retention = retention
        self._run_retention = run_retention
        self._retention_interval = retention_interval
        self._outbox_retention = outbox_retention
        self._lost_after = lost_after
        self._running_row_after = running_row_after
        self._started_at = started_at
        self._tracing = tracing
        self._recorder: RunRecorder | None = None
        self._attempts: AttemptRunner | None = None
        self._handles: dict[str, WorkerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.startup_seconds: float | None = None
        self.unreleased = 0
        """Jobs still held by consumers whose close did not finish in time (0 normally)."""
        self._halt = asyncio.Event()

    @property
    def running(self) -> bool:
        """Whether consumers are started and not yet stopped."""
        return bool(self._handles)

    async def start(self) -> None:
        """Set the registry's queue-wide caps, then start one consumer per queue; returns once
        every consumer is fetching."""
        if self._handles:
            return
        begin = time.perf_counter()
        history = self.infra.require_history()
        recorder = RunRecorder(
            history, self.metrics, self._clock, running_row_after=self._running_row_after
        )
        runner = self._attempt_runner(history, recorder)
        self._recorder = recorder
        self._attempts = runner
        self.metrics.count_in_flight(lambda: _per_queue(recorder, self.queues))
        event(_log, "worker.starting", queues=self.queues, infra=self.infra.name, pid=os.getpid())
        await apply_queue_caps(self.registry, self.infra.queue, self.queues)
        handles: dict[str, WorkerHandle] = {}
        for queue in self.queues:
            settings = self.registry.queue_settings(queue)
            handles[queue] = self.infra.queue.consume(
                queue,
                runner,
                concurrency=settings.concurrency,
                rate_limit=settings.rate_limit,
                # The runner enforces each job's timeout itself, around the handler only: a
                # run-history write retried through a Postgres outage never times it out.
                timeout=None,
                classify=runner.classify,
                on_abandoned=runner.abandoned,
                # Jobs of other producers (Node, a raw enqueue) carry no retention: the
                # queue's stays bounded all the same (Q15).
                remove_on_complete=settings.remove_on_complete,
                remove_on_fail=settings.remove_on_fail,
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
        self._halt = asyncio.Event()
        self._start_run_keeping(recorder)
        if self._sample_interval is not None:
            sampler = self._every(self._sample_interval, self.sample)
            self._tasks.append(asyncio.create_task(sampler, name="portside-sampler"))
        if self._retention_interval is not None:
            purge = self._every(self._retention_interval, self.purge_expired)
            self._tasks.append(asyncio.create_task(purge, name="portside-purge"))
            if self._run_retention is not None:
                # A task of its own, so a failing dead-letter purge never stops this one.
                runs = self._every(self._retention_interval, self.purge_runs)
                self._tasks.append(asyncio.create_task(runs, name="portside-purge-runs"))
            if self._outbox_retention is not None:
                outbox = self._every(self._retention_interval, self.purge_outbox)
                self._tasks.append(asyncio.create_task(outbox, name="portside-purge-outbox"))

    def _attempt_runner(self, history: HistoryPort, recorder: RunRecorder) -> AttemptRunner:
        """The attempt runner, traced or not: chosen here, once, never per attempt."""
        tracing = self._tracing
        if tracing == "auto":
            from portside.app.tracing import resolve_tracing

            tracing = resolve_tracing()
        args = (self.registry, self.infra, history, self.metrics, self._clock, recorder)
        if tracing is None:
            return AttemptRunner(*args)
        from portside.app.tracing.attempts import TracedAttemptRunner

        add_log_context(tracing.log_fields)
        event(_log, "worker.tracing", tracer="opentelemetry")
        return TracedAttemptRunner(*args, tracing=tracing)

    def _start_run_keeping(self, recorder: RunRecorder) -> None:
        """The background duties of run history: ``running`` rows for long attempts, vouching
        for them, and closing the rows of dead workers (see ``RunRecorder``)."""
        tick = max(recorder.running_row_after / 2, 0.05)

        async def write_rows() -> None:
            recorder.write_running_rows()

        self._tasks.append(
            asyncio.create_task(self._every(tick, write_rows), name="portside-running-rows")
        )
        if self._lost_after is None:
            return
        heartbeat = self._lost_after / 4
        self._tasks.append(
            asyncio.create_task(self._every(heartbeat, recorder.vouch), name="portside-vouch")
        )
        self._tasks.append(
            asyncio.create_task(
                self._every(self._lost_after / 2, self.close_lost_runs), name="portside-lost-runs"
            )
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop intake, wait up to ``grace`` seconds for in-flight jobs, then release them.

        Returns within ``grace + STOP_MARGIN`` seconds even if an adapter's close never
        finishes: what did not close in time is logged as ``worker.close_timeout`` (ERROR)
        and the number of jobs it still held is kept in ``unreleased``. Log lines still
        buffered (see ``JsonLinesHandler``) are written before it returns.
        """
        if not self._handles:
            return
        wait = self.grace if grace is None else grace
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait + STOP_MARGIN
        event(_log, "worker.stopping", queues=self.queues, grace=wait)
        await self._stop_background()
        handles, self._handles = self._handles, {}
        closes = {
            queue: asyncio.create_task(handle.close(wait), name=f"portside-close-{queue}")
            for queue, handle in handles.items()
        }
        budget = max(deadline - loop.time() - _CANCEL_WAIT, 0.0)
        _, pending = await asyncio.wait(closes.values(), timeout=budget)
        for queue, task in closes.items():
            if task in pending:
                active = handles[queue].status().active
                self.unreleased += active
                task.cancel()
                event(
                    _log,
                    "worker.close_timeout",
                    logging.ERROR,
                    queue=queue,
                    seconds=round(wait + STOP_MARGIN, 1),
                    unreleased=active,
                    stack=_where(task),
                )
            elif not task.cancelled() and task.exception() is not None:
                error = task.exception()
                event(_log, "worker.close_failed", logging.ERROR, queue=queue, error=str(error))
        if pending:
            # A close that swallows its cancellation is abandoned, not awaited forever.
            await asyncio.wait(pending, timeout=_CANCEL_WAIT)
        if self._attempts is not None:
            await self._attempts.close()
        if self._recorder is not None:
            await self._recorder.idle()
        statuses = [handle.status() for handle in handles.values()]
        event(
            _log,
            "worker.stopped",
            queues=self.queues,
            processed=sum(status.processed for status in statuses),
            failed=sum(status.failed for status in statuses),
            unreleased=self.unreleased,
        )
        flush_logs()

    async def _stop_background(self) -> None:
        self._halt.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_BACKGROUND_WAIT)
        for task in pending:
            event(
                _log,
                "worker.close_timeout",
                logging.ERROR,
                task=task.get_name(),
                seconds=_BACKGROUND_WAIT,
                stack=_where(task),
            )

    def status(self) -> list[WorkerStatus]:
        """Liveness and counters of every consumer."""
        return [handle.status() for handle in self._handles.values()]

    async def sample(self) -> None:
        """Sample every queue's counts into the depth gauges, the queue server's memory and
        the outbox's pending events."""
        for queue in self.queues:
            self.metrics.queue_sampled(queue, await self.infra.queue.counts(queue))
        self.metrics.server_sampled(await self.infra.queue.server_info())
        self.metrics.outbox_sampled(await self.infra.outbox.pending())

    async def purge_expired(self) -> int:
        """Delete dead letters past retention; return how many."""
        removed = await self.infra.require_history().purge_failures(
            self._retention, now=self._clock()
        )
        if removed:
            event(_log, "dead_letters.purged", removed=removed)
        return removed

    async def purge_runs(self) -> int:
        """Delete finished run-history rows past ``run_retention``; return how many."""
        if self._run_retention is None:
            return 0
        removed = await self.infra.require_history().purge_runs(
            self._run_retention, now=self._clock()
        )
        if removed:
            event(_log, "job_runs.purged", removed=removed)
        return removed

    async def purge_outbox(self) -> int:
        """Delete published outbox events past ``outbox_retention``; return how many (Q15)."""
        if self._outbox_retention is None:
            return 0
        removed = await self.infra.outbox.purge_published(self._outbox_retention.total_seconds())
        if removed:
            event(_log, "outbox.purged", removed=removed)
        return removed

    async def close_lost_runs(self) -> int:
        """Close as ``lost`` the running rows of workers that died; return how many (Q15)."""
        if self._lost_after is None or self._recorder is None:
            return 0
        closed = await self._recorder.close_lost(timedelta(seconds=self._lost_after))
        if closed:
            event(_log, "job_runs.lost", logging.WARNING, closed=closed)
        return closed

    async def _every(self, seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.current_task()
        while not self._halt.is_set():
            try:
                await action()
            except Exception as error:
                # A sampler or purge failure must never stop the worker; it is retried.
                event(_log, "worker.background_failed", logging.WARNING, error=str(error))
            # redis-py's asyncio client can finish a command after its task was cancelled and
            # return normally, so the CancelledError never arrives here: the halt flag and the
            # task's own pending-cancel count end the loop anyway.
            if self._halt.is_set() or (task is not None and task.cancelling()):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._halt.wait()

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
