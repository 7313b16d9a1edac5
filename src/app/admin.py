"""``AdminService``: what an operator reads and does, for the admin API, the CLI and the console
(OPS1-OPS3). One home for each operation; the front ends only translate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from portside.app.errors import UnknownQueueError
from portside.app.failures import RetryOutcome, purge_failures, retry_failure
from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import (
    DeadLetter,
    FailureKind,
    HistoryPort,
    JobInfo,
    JobNotFoundError,
    JobPage,
    JobRun,
    JobState,
    OutboxStream,
    QueueCounts,
    RunBucket,
    RunMode,
    RunStatus,
    Schedule,
    WorkerInfo,
)

__all__ = [
    "LIST_STATES",
    "RECENT_MINUTES",
    "AdminService",
    "FailureQuery",
    "JobDetail",
    "MinuteCounts",
    "QueueSummary",
    "RunQuery",
    "SchedulerView",
]

RECENT_MINUTES = 15
"""Minutes of throughput a queue summary shows."""
MAX_PAGE = 500
LIST_STATES: tuple[JobState, ...] = (
    "waiting",
    "active",
    "delayed",
    "completed",
    "failed",
    "paused",
    "waiting-children",
)

_QUERY = ConfigDict(extra="forbid", frozen=True, strict=True)


class RunQuery(BaseModel):
    """Filters of a run-history query (every given filter must match)."""

    model_config = _QUERY

    queue: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    job_id: str | None = Field(default=None, min_length=1, max_length=256)
    status: RunStatus | None = None
    run_mode: RunMode | None = None
    keys: dict[str, str] = Field(default_factory=dict, max_length=10)
    started_after: AwareDatetime | None = None
    started_before: AwareDatetime | None = None
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class FailureQuery(BaseModel):
    """Filters of a dead-letter query (every given filter must match)."""

    model_config = _QUERY

    queue: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    failure_kind: FailureKind | None = None
    failed_after: AwareDatetime | None = None
    failed_before: AwareDatetime | None = None
    include_retried: bool = False
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class MinuteCounts(BaseModel):
    """Attempts of a queue that ended in one minute."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    completed: int = 0
    failed: int = 0


class QueueSummary(BaseModel):
    """One queue at a glance: counts, pause, workers, and the recent minutes' throughput."""

    model_config = ConfigDict(frozen=True)

    name: str
    counts: QueueCounts
    paused: bool
    workers: list[WorkerInfo]
    minutes: list[MinuteCounts]
    """The last ``RECENT_MINUTES`` minutes, oldest first (empty without run history)."""

    @property
    def completed_recently(self) -> int:
        """Attempts that completed in the recent minutes."""
        return sum(minute.completed for minute in self.minutes)

    @property
    def failed_recently(self) -> int:
        """Attempts that failed (for good, for a retry, or lost) in the recent minutes."""
        return sum(minute.failed for minute in self.minutes)

    @property
    def failure_rate(self) -> float:
        """Share of the recent attempts that failed (0 when none ended)."""
        ended = self.completed_recently + self.failed_recently
        return self.failed_recently / ended if ended else 0.0


class JobDetail(BaseModel):
    """A job with its run-history rows (newest first) and its log lines."""

    model_config = ConfigDict(frozen=True)

    job: JobInfo
    runs: list[JobRun]
    logs: list[str]


class SchedulerView(BaseModel):
    """A job scheduler with its next run and its last run's outcome."""

    model_config = ConfigDict(frozen=True)

    queue: str
    schedule: Schedule
    next_run_at: datetime | None = None
    last_run: JobRun | None = None


def _minutes(buckets: Sequence[RunBucket], now: datetime, count: int) -> list[MinuteCounts]:
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=count - 1)
    by_start = {bucket.start.astimezone(UTC): bucket for bucket in buckets}
    minutes = []
    for index in range(count):
        start = first + timedelta(minutes=index)
        bucket = by_start.get(start)
        if bucket is None:
            minutes.append(MinuteCounts(start=start))
        else:
            failed = bucket.failed + bucket.retrying + bucket.lost
            minutes.append(MinuteCounts(start=start, completed=bucket.completed, failed=failed))
    return minutes


def _now() -> datetime:
    return datetime.now(UTC)


class AdminService:
    """Operator reads and actions on one ``Infra``, for the queues of a registry.

    Args:
        infra: The adapters; run history and dead letters need ``infra.history``.
        registry: Every job the operator may see (its queues are the console's queues).
        clock: Now as an aware datetime (tests pass the fakes' virtual clock).
    """

    def __init__(
        self,
        infra: Infra,
        registry: Registry,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.infra = infra
        self.registry = registry
        self.queue_names: tuple[str, ...] = tuple(registry.queues())
        self._clock = clock

    # -- queues -----------------------------------------------------------------------------

    def check_queue(self, queue: str) -> str:
        """``queue`` if the registry uses it; else ``UnknownQueueError`` naming the known ones."""
        if queue not in self.queue_names:
            raise UnknownQueueError(queue, self.queue_names)
        return queue

    async def queues(self, minutes: int = RECENT_MINUTES) -> list[QueueSummary]:
        """Every queue of the registry, by name."""
        buckets = await self._buckets(None, minutes)
        return list(
            await asyncio.gather(
                *(self._summary(name, buckets, minutes) for name in sorted(self.queue_names))
            )
        )

    async def queue(self, queue: str, minutes: int = RECENT_MINUTES) -> QueueSummary:
        """One queue."""
        self.check_queue(queue)
        return await self._summary(queue, await self._buckets(queue, minutes), minutes)

    async def _buckets(self, queue: str | None, minutes: int) -> list[RunBucket]:
        history = self.infra.history
        if history is None:
            return []
        since = self._clock().replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
        return await history.run_buckets(since, queue=queue)

    async def _summary(
        self, queue: str, buckets: Sequence[RunBucket], minutes: int
    ) -> QueueSummary:
        port = self.infra.queue
        counts, paused, workers = await asyncio.gather(
            port.counts(queue), port.is_paused(queue), port.list_workers(queue)
        )
        own = [bucket for bucket in buckets if bucket.queue == queue]
        recent = _minutes(own, self._clock(), minutes) if self.infra.history is not None else []
        return QueueSummary(
            name=queue, counts=counts, paused=paused, workers=workers, minutes=recent
        )

    async def pause(self, queue: str) -> None:
        """Pause ``queue`` for every worker."""
        await self.infra.queue.pause(self.check_queue(queue))

    async def resume(self, queue: str) -> None:
        """Resume ``queue``."""
        await self.infra.queue.resume(self.check_queue(queue))

    async def purge(self, queue: str) -> int:
        """Remove the waiting and delayed jobs of ``queue``; returns how many."""
        return await self.infra.queue.purge(self.check_queue(queue))

    # -- jobs -------------------------------------------------------------------------------

    async def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 50
    ) -> JobPage:
        """One page of the jobs of ``queue`` in ``state``, newest first."""
        return await self.infra.queue.list_jobs(
            self.check_queue(queue), state, offset=offset, limit=limit
        )

    async def job(self, queue: str, job_id: str) -> JobDetail | None:
        """The job with its run-history rows and log lines, or None if the queue has none."""
        port = self.infra.queue
        info = await port.get_job(self.check_queue(queue), job_id)
        if info is None:
            return None
        history = self.infra.history
        runs = [] if history is None else await history.list_runs(job_id=job_id, queue=queue)
        try:
            logs = (await port.get_logs(queue, job_id, limit=200)).lines
        except JobNotFoundError:
            logs = []
        return JobDetail(job=info, runs=runs, logs=logs)

    async def retry_job(self, queue: str, job_id: str) -> bool:
        """Move the failed job back to waiting with fresh attempts; False if it is not failed."""
        return bool(await self.infra.queue.retry_failed(self.check_queue(queue), job_id=job_id))

    async def delete_job(self, queue: str, job_id: str) -> None:
        """Remove the job (refused while it is active)."""
        await self.infra.queue.remove_job(self.check_queue(queue), job_id)

    async def promote_job(self, queue: str, job_id: str) -> None:
        """Make a delayed job waiting now."""
        await self.infra.queue.promote_job(self.check_queue(queue), job_id)

    # -- history ----------------------------------------------------------------------------

    def _history(self) -> HistoryPort:
        return self.infra.require_history()

    async def runs(self, query: RunQuery) -> list[JobRun]:
        """Run-history rows matching ``query``, newest first."""
        return await self._history().list_runs(
            job_id=query.job_id,
            queue=query.queue,
            name=query.name,
            status=query.status,
            run_mode=query.run_mode,
            keys=query.keys or None,
            started_after=query.started_after,
            started_before=query.started_before,
            offset=query.offset,
            limit=query.limit,
        )

    async def failures(self, query: FailureQuery) -> list[DeadLetter]:
        """Dead letters matching ``query``, newest first."""
        return await self._history().list_failures(
            queue=query.queue,
            name=query.name,
            failure_kind=query.failure_kind,
            failed_after=query.failed_after,
            failed_before=query.failed_before,
            include_retried=query.include_retried,
            offset=query.offset,
            limit=query.limit,
        )

    async def failure(self, failure_id: str) -> DeadLetter | None:
        """One dead letter, or None."""
        return await self._history().get_failure(failure_id)

    async def retry_failure(self, failure_id: str) -> RetryOutcome:
        """Send a dead letter back to its queue (see ``portside.app.failures``)."""
        return await retry_failure(self.registry, self.infra, failure_id, clock=self._clock)

    async def purge_failures(self, older_than: timedelta) -> int:
        """Delete dead letters older than ``older_than``; returns how many."""
        return await purge_failures(self.infra, older_than, clock=self._clock)

    # -- schedulers and outbox --------------------------------------------------------------

    async def schedulers(self) -> list[SchedulerView]:
        """Every job scheduler of every queue, by queue then next run."""
        views: list[SchedulerView] = []
        for queue in sorted(self.queue_names):
            schedules, next_runs = await asyncio.gather(
                self.infra.queue.list_schedules(queue),
                self.infra.queue.schedule_next_runs(queue),
            )
            for schedule in schedules:
                at = next_runs.get(schedule.scheduler_id)
                views.append(
                    SchedulerView(
                        queue=queue,
                        schedule=schedule,
                        next_run_at=None if at is None else datetime.fromtimestamp(at, UTC),
                        last_run=await self._last_scheduled_run(queue, schedule.name),
                    )
                )
        return views

    async def _last_scheduled_run(self, queue: str, name: str) -> JobRun | None:
        history = self.infra.history
        if history is None:
            return None
        runs = await history.list_runs(queue=queue, name=name, run_mode="scheduled", limit=1)
        return runs[0] if runs else None

    async def outbox_streams(self) -> list[OutboxStream]:
        """Every outbox stream with its last seq and pending count."""
        return await self.infra.outbox.streams()
