"""In-memory run history and dead-letter store (HistoryPort) with inspectable state."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count

from portside.ports import (
    DEFAULT_FAILURE_RETENTION,
    DeadLetter,
    FailureKind,
    FinishedRun,
    HistoryPort,
    JobRun,
    NewDeadLetter,
    QueueRunStats,
    RunBucket,
    RunFinish,
    RunMode,
    RunStart,
    RunStatus,
    ValidationError,
)
from portside.ports.history import DEFAULT_RUN_RETENTION, LOST_RUN_ERROR, LOST_RUN_MESSAGE

__all__ = ["InMemoryHistory"]


class InMemoryHistory:
    """A ``HistoryPort`` kept in dicts; ``runs`` and ``failures`` are in insertion order.

    Args:
        now: The clock ``purge_failures`` and ``purge_runs`` use when it is given no ``now``.
    """

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._ids = count(1)
        self.runs: dict[str, JobRun] = {}
        self.failures: dict[str, DeadLetter] = {}
        self.closed = False

    def reset(self) -> None:
        """Forget every run and dead letter."""
        self.runs.clear()
        self.failures.clear()

    async def record_start(self, run: RunStart) -> JobRun:
        """Store an attempt that began (status ``running``)."""
        stored = JobRun(id=str(next(self._ids)), status="running", **run.model_dump())
        self.runs[stored.id] = stored
        return stored

    async def record_finish(self, run_id: str, finish: RunFinish) -> JobRun:
        """Close the attempt ``run_id``."""
        run = self.runs.get(run_id)
        if run is None:
            raise ValidationError(
                f"no run with id {run_id!r}",
                fix="pass the id record_start() returned",
                field="run_id",
            )
        stored = run.model_copy(update=finish.model_dump())
        self.runs[run_id] = stored
        return stored

    async def record_run(self, run: FinishedRun) -> None:
        """Store an attempt that ended, in one write."""
        stored = JobRun(id=str(next(self._ids)), **run.model_dump())
        self.runs[stored.id] = stored

    async def touch_runs(self, run_ids: Sequence[str], *, at: datetime) -> None:
        """Vouch that the running attempts ``run_ids`` are alive at ``at``."""
        for run_id in run_ids:
            run = self.runs.get(run_id)
            if run is not None and run.status == "running":
                self.runs[run_id] = run.model_copy(update={"seen_at": at})

    async def close_lost_runs(self, stale_after: timedelta, *, now: datetime | None = None) -> int:
        """Close as ``lost`` the running attempts nobody vouched for since
        ``now - stale_after``."""
        moment = now or self._now()
        cutoff = moment - stale_after
        lost = [
            run
            for run in self.runs.values()
            if run.status == "running" and (run.seen_at or run.started_at) < cutoff
        ]
        for run in lost:
            self.runs[run.id] = run.model_copy(
                update={
                    "status": "lost",
                    "finished_at": max(moment, run.started_at),
                    "failure_kind": "transient",
                    "error_class": LOST_RUN_ERROR,
                    "error_message": LOST_RUN_MESSAGE,
                }
            )
        return len(lost)

    async def get_run(self, run_id: str) -> JobRun | None:
        """One attempt by id, or None."""
        return self.runs.get(run_id)

    async def list_runs(
        self,
        *,
        job_id: str | None = None,
        queue: str | None = None,
        name: str | None = None,
        status: RunStatus | None = None,
        run_mode: RunMode | None = None,
        keys: Mapping[str, str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[JobRun]:
        """Attempts matching every given filter, newest first."""
        wanted = {
            "job_id": job_id,
            "queue": queue,
            "name": name,
            "status": status,
            "run_mode": run_mode,
        }
        given = {field: value for field, value in wanted.items() if value is not None}
        pairs = dict(keys or {}).items()
        found = [
            run
            for run in self.runs.values()
            if all(getattr(run, field) == value for field, value in given.items())
            and pairs <= run.keys.items()
            and (started_after is None or run.started_at >= started_after)
            and (started_before is None or run.started_at < started_before)
        ]
        found.sort(key=lambda run: (run.started_at, int(run.id)), reverse=True)
        first = max(offset, 0)
        return found[first : first + max(limit, 0)]

    async def run_buckets(
        self, since: datetime, *, bucket: timedelta = timedelta(minutes=1), queue: str | None = None
    ) -> list[RunBucket]:
        """Finished attempts per queue and per ``bucket`` of time, oldest bucket first."""
        width = bucket.total_seconds()
        counts: dict[tuple[datetime, str], dict[str, int]] = {}
        for run in self.runs.values():
            if run.finished_at is None or run.finished_at < since:
                continue
            if queue is not None and run.queue != queue:
                continue
            seconds = run.finished_at.timestamp() // width * width
            start = datetime.fromtimestamp(seconds, UTC)
            tally = counts.setdefault((start, run.queue), {})
            tally[run.status] = tally.get(run.status, 0) + 1
        return [
            RunBucket(queue=name, start=start, **tally)
            for (start, name), tally in sorted(counts.items())
        ]

    async def queue_stats(self, since: datetime) -> list[QueueRunStats]:
        """Per queue, the attempts that finished at or after ``since``."""
        per_queue: dict[str, list[JobRun]] = {}
        for run in self.runs.values():
            if run.finished_at is not None and run.finished_at >= since:
                per_queue.setdefault(run.queue, []).append(run)
        stats = []
        for queue, runs in sorted(per_queue.items()):
            durations = [run.duration for run in runs if run.duration is not None]
            stats.append(
                QueueRunStats(
                    queue=queue,
                    finished=len(runs),
                    completed=sum(run.status == "completed" for run in runs),
                    retrying=sum(run.status == "retrying" for run in runs),
                    lost=sum(run.status == "lost" for run in runs),
                    failed=sum(run.status == "failed" for run in runs),
                    mean_duration=sum(durations) / len(durations) if durations else None,
                )
            )
        return stats

    async def add_failure(self, failure: NewDeadLetter) -> DeadLetter:
        """Store a dead letter."""
        stored = DeadLetter(id=f"dl-{next(self._ids)}", **failure.model_dump())
        self.failures[stored.id] = stored
        return stored

    async def list_failures(
        self,
        *,
        queue: str | None = None,
        name: str | None = None,
        failure_kind: FailureKind | None = None,
        failed_after: datetime | None = None,
        failed_before: datetime | None = None,
        include_retried: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Dead letters matching every given filter, newest first."""
        found = [
            failure
            for failure in reversed(self.failures.values())
            if (queue is None or failure.queue == queue)
            and (name is None or failure.name == name)
            and (failure_kind is None or failure.failure_kind == failure_kind)
            and (failed_after is None or failure.failed_at >= failed_after)
            and (failed_before is None or failure.failed_at < failed_before)
            and (include_retried or failure.retried_at is None)
        ]
        found.sort(key=lambda failure: failure.failed_at, reverse=True)
        first = max(offset, 0)
        return found[first : first + max(limit, 0)]

    async def get_failure(self, failure_id: str) -> DeadLetter | None:
        """One dead letter by id, or None."""
        return self.failures.get(failure_id)

    async def mark_retried(
        self, failure_id: str, *, retry_job_id: str, retried_at: datetime
    ) -> DeadLetter | None:
        """Record that the dead letter was sent back to its queue."""
        failure = self.failures.get(failure_id)
        if failure is None:
            return None
        stored = failure.model_copy(update={"retried_at": retried_at, "retry_job_id": retry_job_id})
        self.failures[failure_id] = stored
        return stored

    async def purge_failures(
        self,
        older_than: timedelta = DEFAULT_FAILURE_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete dead letters that failed before ``now - older_than``."""
        cutoff = (now or self._now()) - older_than
        doomed = [key for key, failure in self.failures.items() if failure.failed_at < cutoff]
        for key in doomed:
            del self.failures[key]
        return len(doomed)

    async def purge_runs(
        self,
        older_than: timedelta = DEFAULT_RUN_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete finished attempts that ended before ``now - older_than``."""
        cutoff = (now or self._now()) - older_than
        doomed = [
            key
            for key, run in self.runs.items()
            if run.status != "running" and run.finished_at is not None and run.finished_at < cutoff
        ]
        for key in doomed:
            del self.runs[key]
        return len(doomed)

    async def close(self) -> None:
        """Nothing to release; remembered for tests."""
        self.closed = True


_check: HistoryPort = InMemoryHistory()
