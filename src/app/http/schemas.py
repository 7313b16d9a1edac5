"""Response bodies of the HTTP API (camelCase JSON), as they appear in the OpenAPI schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from portside.app.failures import RetryOutcome
from portside.app.runmode import split_run_mode
from portside.ports import DeadLetter, FailureKind, JobInfo, JobRef, JobState

__all__ = [
    "AlertRule",
    "ApiModel",
    "EnqueuedJob",
    "FailedJob",
    "FailedJobList",
    "HealthAlert",
    "HealthReport",
    "JobStatus",
    "Liveness",
    "ProbeCheck",
    "QueueHealth",
    "QueueServerHealth",
    "Readiness",
    "RetriedJob",
    "ServerWarningBody",
]

AlertRule = Literal["depth", "latency", "failure_rate", "no_workers"]


class ApiModel(BaseModel):
    """Base of every response body: camelCase in JSON, snake_case in Python, frozen."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class EnqueuedJob(ApiModel):
    """``POST /jobs/{name}``: the job was accepted; poll ``statusUrl``."""

    job_id: str
    queue: str
    name: str
    status_url: str

    @classmethod
    def of(cls, ref: JobRef) -> EnqueuedJob:
        return cls(job_id=ref.id, queue=ref.queue, name=ref.name, status_url=f"/jobs/{ref.id}")


class JobStatus(ApiModel):
    """``GET /jobs/{id}``: a job's state, progress, attempts and outcome (A6, Q7)."""

    job_id: str
    queue: str
    name: str
    state: JobState
    progress: Any = Field(default=0, description="What the handler last reported (0 if none).")
    attempts_made: int
    max_attempts: int
    data: dict[str, Any]
    result: Any = Field(default=None, description="The handler's return value once completed.")
    failed_reason: str | None = None
    failure_kind: FailureKind | None = None
    created_at: datetime | None
    processed_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, info: JobInfo) -> JobStatus:
        payload, _ = split_run_mode(info.data)
        return cls(
            job_id=info.id,
            queue=info.queue,
            name=info.name,
            state=info.state,
            progress=info.progress,
            attempts_made=info.attempts_made,
            max_attempts=info.max_attempts,
            data=payload,
            result=info.result,
            failed_reason=info.failed_reason,
            failure_kind=info.failure_kind,
            created_at=_moment(info.created_at),
            processed_at=_moment(info.processed_at),
            finished_at=_moment(info.finished_at),
        )


class HealthAlert(ApiModel):
    """A rule that fires for a queue."""

    rule: AlertRule
    value: float
    threshold: float
    message: str


class QueueHealth(ApiModel):
    """One queue's health (A6): depth, waiting age, latency, failure rate, workers, alerts."""

    queue: str
    status: Literal["ok", "alert"]
    depth: int = Field(description="Jobs not yet started: waiting + paused + delayed.")
    waiting: int
    active: int
    delayed: int
    failed: int = Field(description="Failed jobs the queue still holds.")
    paused: bool
    oldest_waiting_seconds: float | None = Field(
        description="Age of the oldest waiting job; null when none waits or it is unknown."
    )
    latency_seconds: float | None = Field(
        description="Mean attempt duration in the recent window (null: no attempt finished)."
    )
    baseline_latency_seconds: float | None = Field(
        description="Configured baseline, else the mean over the baseline window."
    )
    failure_rate: float = Field(description="Failed or retried share of recent attempts.")
    recent_attempts: int
    workers: int | None = Field(description="Workers consuming the queue; null when unknown.")
    alerts: list[HealthAlert]


class ServerWarningBody(ApiModel):
    """Something about the queue server that can lose or refuse jobs (E2)."""

    rule: Literal["eviction", "memory"]
    message: str
    fix: str


class QueueServerHealth(ApiModel):
    """The server holding the queues (E2): its eviction policy and memory against its limit."""

    backend: str = Field(description="What serves the queues, e.g. 'redis 7.2.4'.")
    status: Literal["ok", "warning", "unknown"] = Field(
        description="warning: a rule below fires; unknown: the server would not say."
    )
    maxmemory_policy: str | None = Field(description="Anything but 'noeviction' can lose jobs.")
    used_memory_bytes: int | None
    maxmemory_bytes: int | None = Field(description="The memory limit; 0 means none.")
    memory_used_ratio: float | None = Field(
        description="usedMemoryBytes / maxmemoryBytes; null without a limit."
    )
    warnings: list[ServerWarningBody]
    unreadable: str | None = Field(
        default=None, description="Why some values are null (INFO or CONFIG refused)."
    )


class HealthReport(ApiModel):
    """``GET /health/queues``."""

    status: Literal["ok", "alert"]
    checked_at: datetime
    window_seconds: float
    queues: list[QueueHealth]
    queue_server: QueueServerHealth | None = Field(
        default=None, description="The Redis holding the queues (E2)."
    )


class Liveness(ApiModel):
    """``GET /livez``: the process answers."""

    status: Literal["alive"] = "alive"


class ProbeCheck(ApiModel):
    """One readiness check."""

    status: Literal["ok", "failed", "skipped"]
    detail: str


class Readiness(ApiModel):
    """``GET /readyz``: ``ready`` when no check failed (the same body with 503 otherwise).

    Checks: ``queue_server`` (the queue's Redis answers), ``postgres`` (reachable, portside's
    migrations applied), ``workers`` (this process's consumers fetching; skipped in an API
    process without workers).
    """

    status: Literal["ready", "unready"]
    checks: dict[str, ProbeCheck]


class FailedJob(ApiModel):
    """A dead letter: a job that failed for good (A4)."""

    id: str
    queue: str
    job_id: str
    name: str
    data: dict[str, Any]
    error_class: str
    error_message: str
    failure_kind: FailureKind
    attempts_made: int
    failed_at: datetime
    retried_at: datetime | None = None
    retry_job_id: str | None = None

    @classmethod
    def of(cls, letter: DeadLetter) -> FailedJob:
        return cls.model_validate(letter.model_dump())


class FailedJobList(ApiModel):
    """``GET /admin/failed-jobs``: newest first."""

    items: list[FailedJob]


class RetriedJob(ApiModel):
    """``POST /admin/failed-jobs/{id}/retry``: where the job went.

    ``requeued``: the failed job itself went back to waiting; ``re-enqueued``: the queue no
    longer had it, so a copy was queued under ``jobId``.
    """

    failure: FailedJob
    job_id: str
    queue: str
    how: Literal["requeued", "re-enqueued"]

    @classmethod
    def of(cls, outcome: RetryOutcome) -> RetriedJob:
        return cls(
            failure=FailedJob.of(outcome.failure),
            job_id=outcome.job.id,
            queue=outcome.job.queue,
            how=outcome.how,
        )
