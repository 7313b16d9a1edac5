"""Response bodies of the admin API (camelCase JSON): queues, jobs, runs, schedulers, outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from portside.app.admin import JobDetail, QueueSummary, SchedulerView
from portside.app.http.schemas import ApiModel
from portside.ports import (
    FailureKind,
    JobInfo,
    JobPage,
    JobRun,
    JobState,
    OutboxStream,
    RunMode,
    RunStatus,
)

__all__ = [
    "ActionDone",
    "JobDetailBody",
    "JobList",
    "JobSummary",
    "MinuteBody",
    "OutboxStreamBody",
    "OutboxStreamList",
    "Purged",
    "QueueBody",
    "QueueCountsBody",
    "QueueList",
    "RunBody",
    "RunList",
    "SchedulerBody",
    "SchedulerList",
    "WorkerBody",
]


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class QueueCountsBody(ApiModel):
    """Jobs per state."""

    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    paused: int
    waiting_children: int


class WorkerBody(ApiModel):
    """A worker connected to the queue."""

    name: str
    address: str | None
    age_seconds: float
    idle_seconds: float


class MinuteBody(ApiModel):
    """Attempts that ended in one minute."""

    start: datetime
    completed: int
    failed: int = Field(description="Failed for good, will be retried, or lost.")


class QueueBody(ApiModel):
    """One queue: counts, pause, workers and recent throughput (OPS1)."""

    name: str
    paused: bool
    counts: QueueCountsBody
    workers: list[WorkerBody]
    minutes: list[MinuteBody] = Field(description="Recent minutes, oldest first.")
    failure_rate: float = Field(description="Failed share of the recent minutes' attempts.")

    @classmethod
    def of(cls, summary: QueueSummary) -> QueueBody:
        return cls(
            name=summary.name,
            paused=summary.paused,
            counts=QueueCountsBody.model_validate(summary.counts.model_dump()),
            workers=[
                WorkerBody(
                    name=worker.name,
                    address=worker.address,
                    age_seconds=worker.age,
                    idle_seconds=worker.idle,
                )
                for worker in summary.workers
            ],
            minutes=[MinuteBody.model_validate(m.model_dump()) for m in summary.minutes],
            failure_rate=summary.failure_rate,
        )


class QueueList(ApiModel):
    """``GET /admin/queues``: by name."""

    items: list[QueueBody]


class Purged(ApiModel):
    """How many items an action removed."""

    removed: int


class ActionDone(ApiModel):
    """An action that changed something; ``detail`` says what."""

    detail: str


class JobSummary(ApiModel):
    """A job in a list."""

    job_id: str
    queue: str
    name: str
    state: JobState
    attempts_made: int
    max_attempts: int
    failed_reason: str | None
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, info: JobInfo) -> JobSummary:
        return cls(
            job_id=info.id,
            queue=info.queue,
            name=info.name,
            state=info.state,
            attempts_made=info.attempts_made,
            max_attempts=info.max_attempts,
            failed_reason=info.failed_reason,
            created_at=_moment(info.created_at),
            finished_at=_moment(info.finished_at),
        )


class JobList(ApiModel):
    """``GET /admin/queues/{queue}/jobs``: one page, newest first; ``total`` counts them all."""

    items: list[JobSummary]
    total: int

    @classmethod
    def of(cls, page: JobPage) -> JobList:
        return cls(items=[JobSummary.of(info) for info in page.jobs], total=page.total)


class RunBody(ApiModel):
    """One attempt of one job (run history)."""

    id: str
    job_id: str
    queue: str
    name: str
    attempt: int
    run_mode: RunMode
    status: RunStatus
    failure_kind: FailureKind | None
    error_class: str | None
    error_message: str | None
    result: Any = None
    keys: dict[str, str] = Field(description="Business keys of the job's payload.")
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None

    @classmethod
    def of(cls, run: JobRun) -> RunBody:
        return cls(**run.model_dump(exclude={"seen_at"}), duration_seconds=run.duration)


class RunList(ApiModel):
    """``GET /admin/runs``: newest first."""

    items: list[RunBody]


class JobDetailBody(ApiModel):
    """``GET /admin/queues/{queue}/jobs/{jobId}``: everything known about one job."""

    job_id: str
    queue: str
    name: str
    state: JobState
    data: dict[str, Any]
    options: dict[str, Any] | None
    progress: Any = None
    result: Any = None
    failed_reason: str | None
    failure_kind: FailureKind | None
    stacktrace: list[str]
    attempts_made: int
    max_attempts: int
    created_at: datetime | None
    processed_at: datetime | None
    finished_at: datetime | None
    runs: list[RunBody]
    logs: list[str]

    @classmethod
    def of(cls, detail: JobDetail) -> JobDetailBody:
        info = detail.job
        options = None
        if info.options is not None:
            options = info.options.model_dump(mode="json", exclude_defaults=True)
        return cls(
            job_id=info.id,
            queue=info.queue,
            name=info.name,
            state=info.state,
            data=info.data,
            options=options,
            progress=info.progress,
            result=info.result,
            failed_reason=info.failed_reason,
            failure_kind=info.failure_kind,
            stacktrace=info.stacktrace,
            attempts_made=info.attempts_made,
            max_attempts=info.max_attempts,
            created_at=_moment(info.created_at),
            processed_at=_moment(info.processed_at),
            finished_at=_moment(info.finished_at),
            runs=[RunBody.of(run) for run in detail.runs],
            logs=detail.logs,
        )


class SchedulerBody(ApiModel):
    """A job scheduler: pattern or interval, next run, last run."""

    queue: str
    scheduler_id: str
    name: str
    pattern: str | None
    every_seconds: float | None
    timezone: str | None
    next_run_at: datetime | None
    last_run: RunBody | None

    @classmethod
    def of(cls, view: SchedulerView) -> SchedulerBody:
        schedule = view.schedule
        return cls(
            queue=view.queue,
            scheduler_id=schedule.scheduler_id,
            name=schedule.name,
            pattern=schedule.pattern,
            every_seconds=schedule.every,
            timezone=schedule.timezone,
            next_run_at=view.next_run_at,
            last_run=None if view.last_run is None else RunBody.of(view.last_run),
        )


class SchedulerList(ApiModel):
    """``GET /admin/schedulers``: by queue, then next run."""

    items: list[SchedulerBody]


class OutboxStreamBody(ApiModel):
    """An outbox stream."""

    stream: str
    last_seq: int
    pending: int = Field(description="Committed events not yet published.")

    @classmethod
    def of(cls, stream: OutboxStream) -> OutboxStreamBody:
        return cls.model_validate(stream.model_dump())


class OutboxStreamList(ApiModel):
    """``GET /admin/outbox/streams``: by name."""

    items: list[OutboxStreamBody]
