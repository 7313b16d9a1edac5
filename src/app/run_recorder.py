"""Run-history rows of a worker's attempts: one write per attempt (A3), a ``running`` row only
for attempts that take a while, vouching for those while they run, and closing the rows of
workers that died (Q15).

Most attempts take milliseconds: writing a ``running`` row when they start and updating it
when they end would double the history writes and put a Postgres round trip in front of
every handler. So an attempt is written once, when it ends (``record_run``, batched with the
other slots' writes). An attempt still running ``running_row_after`` seconds after it began
gets a ``running`` row (``write_running_rows``, called periodically by the runtime), which
``vouch`` keeps fresh and its end closes (``record_finish``). A worker that dies leaves those
rows ``running``; any worker's ``close_lost`` marks them ``lost`` once nobody has vouched for
them for longer than a job's lock can be held. A crash therefore loses at most the rows of
attempts that were in flight and younger than ``running_row_after``; their jobs run again
(stalled-job check), and that attempt gets its row.

The end-of-attempt write is part of finishing a job: it is retried (with reconnect backoff)
while the history store is unreachable, before the queue hears that the job finished, so a
job is never acknowledged without its row. Slots waiting for the store hold their jobs
(their locks keep being renewed) and take no new ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from portside.app.logs import LogFields, event
from portside.app.metrics import WorkerMetrics
from portside.ports import (
    BackendUnavailableError,
    FailureKind,
    FinishedRun,
    HistoryPort,
    Job,
    JobRun,
    RunFinish,
    RunMode,
    RunStart,
)

__all__ = ["RUNNING_ROW_AFTER", "Attempt", "RunRecorder"]

RUNNING_ROW_AFTER = 1.0
"""Seconds an attempt runs before it gets a ``running`` row of its own."""

_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0

_log = logging.getLogger("portside.worker")


@dataclass(eq=False, slots=True)
class Attempt:
    """One attempt in flight, as the recorder tracks it."""

    job_id: str
    queue: str
    name: str
    attempt: int
    run_mode: RunMode
    started_at: datetime
    began: float
    """``time.perf_counter()`` when it began."""
    fields: LogFields
    """Its log fields (job id, queue, attempt, run mode, business keys)."""
    keys: dict[str, str] = field(default_factory=dict)
    """Business keys of its payload, stored with its row."""
    row: asyncio.Task[JobRun | None] | None = field(default=None)
    """The write of its ``running`` row, once it ran long enough to get one."""

    def start(self) -> RunStart:
        """The attempt as a ``running`` row."""
        return RunStart(
            job_id=self.job_id,
            queue=self.queue,
            name=self.name,
            attempt=self.attempt,
            run_mode=self.run_mode,
            started_at=self.started_at,
            keys=self.keys,
        )


class RunRecorder:
    """Writes the run-history rows of one worker process's attempts (see the module docs).

    Args:
        history: Where rows go.
        metrics: Counts failed history writes.
        clock: Timestamps of the rows.
        running_row_after: Seconds an attempt runs before it gets a ``running`` row.
    """

    def __init__(
        self,
        history: HistoryPort,
        metrics: WorkerMetrics,
        clock: Callable[[], datetime],
        *,
        running_row_after: float = RUNNING_ROW_AFTER,
    ) -> None:
        self._history = history
        self._metrics = metrics
        self._clock = clock
        self.running_row_after = running_row_after
        self._in_flight: dict[Attempt, None] = {}

    def in_flight(self, queue: str | None = None) -> int:
        """Attempts running now (of ``queue``, or of every queue)."""
        if queue is None:
            return len(self._in_flight)
        return sum(1 for attempt in self._in_flight if attempt.queue == queue)

    def begin(
        self,
        job: Job,
        run_mode: RunMode,
        fields: LogFields,
        keys: dict[str, str] | None = None,
    ) -> Attempt:
        """Track an attempt that begins now; nothing is written yet."""
        attempt = Attempt(
            job.id,
            job.queue,
            job.name,
            job.attempt,
            run_mode,
            self._clock(),
            time.perf_counter(),
            fields,
            keys or {},
        )
        self._in_flight[attempt] = None
        return attempt

    async def finish(
        self,
        attempt: Attempt,
        status: Literal["completed", "retrying", "failed"],
        *,
        failure_kind: FailureKind | None = None,
        error_class: str | None = None,
        error_message: str | None = None,
        result: Any = None,
        retry: bool = True,
    ) -> bool:
        """Write how ``attempt`` ended (now): one ``record_run``, or ``record_finish`` of its
        ``running`` row. Retried while the store is unreachable (unless ``retry`` is False);
        False if it failed (logged and counted)."""
        self._in_flight.pop(attempt, None)
        finished_at = self._clock()
        run = None if attempt.row is None else await _settled(attempt.row)
        if run is None:
            finished = FinishedRun(
                job_id=attempt.job_id,
                queue=attempt.queue,
                name=attempt.name,
                attempt=attempt.attempt,
                run_mode=attempt.run_mode,
                started_at=attempt.started_at,
                keys=attempt.keys,
                status=status,
                finished_at=finished_at,
                failure_kind=failure_kind,
                error_class=error_class,
                error_message=error_message,
                result=result,
            )
            try:  # the common case, without the retry loop's frames
                await self._history.record_run(finished)
            except Exception as error:
                return await self.persist(
                    "record_run",
                    attempt.fields,
                    lambda: self._history.record_run(finished),
                    retry=retry,
                    failed=error,
                )
            return True
        run_id = run.id
        outcome = RunFinish(
            status=status,
            finished_at=finished_at,
            failure_kind=failure_kind,
            error_class=error_class,
            error_message=error_message,
            result=result,
        )
        return await self.persist(
            "record_finish",
            attempt.fields,
            lambda: self._history.record_finish(run_id, outcome),
            retry=retry,
        )

    async def persist(
        self,
        operation: str,
        fields: LogFields,
        write: Callable[[], Awaitable[object]],
        *,
        retry: bool = True,
        failed: Exception | None = None,
    ) -> bool:
        """Run ``write`` until it succeeds, retrying while the store is unreachable (unless
        ``retry`` is False). ``failed`` is the error of a first try the caller already made.

        Any other error is logged as ``history.write_failed`` and counted; it never changes
        the job's outcome.
        """
        delay = _RETRY_FIRST
        reported = False
        error = failed
        while True:
            if error is None:
                try:
                    await write()
                except Exception as caught:
                    error = caught
                else:
                    if reported:
                        event(_log, "history.write_recovered", base=fields, operation=operation)
                    return True
            if not isinstance(error, BackendUnavailableError):
                self._metrics.history_errors.labels(operation).inc()
                _log.error(
                    "history.write_failed",
                    exc_info=error,
                    extra={"portside": {"operation": operation, **fields}},
                )
                return False
            if not retry or not reported:
                reported = True
                self._metrics.history_errors.labels(operation).inc()
                event(
                    _log,
                    "history.write_failed",
                    logging.ERROR,
                    operation=operation,
                    error=str(error),
                    retrying=retry,
                    base=fields,
                )
            if not retry:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
            error = None

    def write_running_rows(self) -> int:
        """Give a ``running`` row to every attempt in flight for ``running_row_after``
        seconds or more that has none; returns how many rows were started."""
        ripe = time.perf_counter() - self.running_row_after
        started = 0
        for attempt in self._in_flight:
            if attempt.row is None and attempt.began <= ripe:
                attempt.row = asyncio.create_task(
                    self._running_row(attempt), name="portside-running-row"
                )
                started += 1
        return started

    async def _running_row(self, attempt: Attempt) -> JobRun | None:
        try:
            return await self._history.record_start(attempt.start())
        except Exception as error:
            # The attempt's end writes its row in one go instead.
            self._metrics.history_errors.labels("record_start").inc()
            event(
                _log,
                "history.write_failed",
                logging.WARNING,
                operation="record_start",
                error=str(error),
                base=attempt.fields,
            )
            return None

    async def vouch(self) -> int:
        """Tell the store that the attempts with ``running`` rows are alive; returns how many."""
        ids = []
        for attempt in self._in_flight:
            row = attempt.row
            if row is not None and row.done() and not row.cancelled():
                run = row.result()
                if run is not None:
                    ids.append(run.id)
        if ids:
            await self._history.touch_runs(ids, at=self._clock())
        return len(ids)

    async def close_lost(self, stale_after: timedelta) -> int:
        """Close as ``lost`` the ``running`` rows nobody vouched for in ``stale_after``."""
        return await self._history.close_lost_runs(stale_after, now=self._clock())

    async def idle(self) -> None:
        """Wait for the ``running`` rows being written (before the store closes)."""
        rows = [a.row for a in self._in_flight if a.row is not None and not a.row.done()]
        if rows:
            await asyncio.wait(rows)


async def _settled(row: asyncio.Task[JobRun | None] | None) -> JobRun | None:
    """The ``running`` row, once its write ended (None if there is none or it failed)."""
    if row is None:
        return None
    try:
        return await asyncio.shield(row)
    except Exception:
        return None
