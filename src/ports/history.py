"""The history port: one row per job attempt (run history) and the dead-letter store (A3, A4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from portside.ports.deprecation import deprecated_name, renamed_fields
from portside.ports.model import PortModel
from portside.ports.queue_types import FailureKind

__all__ = [
    "BUSINESS_KEYS",
    "DEFAULT_FAILURE_RETENTION",
    "DEFAULT_RUN_RETENTION",
    "RUN_MODES",
    "DeadLetter",
    "FinishedRun",
    "HistoryPort",
    "JobRun",
    "NewDeadLetter",
    "QueueRunStats",
    "RunBucket",
    "RunFinish",
    "RunMode",
    "RunStart",
    "RunStatus",
    "business_keys",
]

RunMode = Literal["scheduled", "manual", "backfill"]
RunStatus = Literal["running", "completed", "retrying", "failed", "lost"]
RUN_MODES: tuple[RunMode, ...] = ("scheduled", "manual", "backfill")
DEFAULT_FAILURE_RETENTION = timedelta(days=30)
DEFAULT_RUN_RETENTION = timedelta(days=30)
MAX_ERROR_MESSAGE = 4000
LOST_RUN_ERROR = "WorkerLost"
"""The ``error_class`` of an attempt closed as ``lost``."""
LOST_RUN_MESSAGE = (
    "no worker vouched for this attempt since its job's lock expired: its worker died or lost "
    "its connection; the queue runs the job again (stalled-job check)"
)
"""The ``error_message`` of an attempt closed as ``lost``."""

_STRICT = ConfigDict(extra="forbid", frozen=True)

BUSINESS_KEYS: tuple[str, ...] = ("organizationId", "integrationId", "date")
"""Top-level payload fields a run records as its business keys, to find its runs by them."""
MAX_KEY_VALUE = 200


def business_keys(data: Mapping[str, Any], names: Sequence[str] = BUSINESS_KEYS) -> dict[str, str]:
    """The business keys of a job's payload: each of ``names`` that holds a string or an
    integer at the top level, as text (longer values are cut to 200 characters)."""
    found: dict[str, str] = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            found[name] = str(value)[:MAX_KEY_VALUE]
    return found


class RunStart(PortModel):
    """An attempt that began: what ``record_start`` stores."""

    model_config = _STRICT

    job_id: str = Field(min_length=1)
    queue: str = Field(min_length=1)
    name: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    run_mode: RunMode
    started_at: AwareDatetime
    keys: dict[str, str] = Field(default_factory=dict)
    """Business keys of the job's payload (``business_keys``), to query runs by."""


class RunFinish(PortModel):
    """How an attempt ended: what ``record_finish`` stores.

    ``retrying`` means the attempt failed and the queue will run the job again. (``lost``, an
    attempt whose worker died, is set only by ``close_lost_runs``.)
    """

    model_config = _STRICT

    status: Literal["completed", "retrying", "failed"]
    finished_at: AwareDatetime
    failure_kind: FailureKind | None = None
    error_class: str | None = None
    error_message: str | None = Field(default=None, max_length=MAX_ERROR_MESSAGE)
    result: Any = None


class FinishedRun(RunStart, RunFinish):
    """An attempt that ended, stored in one write: what ``record_run`` stores (A3).

    The worker runtime writes most attempts this way, once, when they end; an attempt that
    runs longer gets a ``running`` row first (``record_start``), closed by ``record_finish``.
    """

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> FinishedRun:
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class JobRun(PortModel):
    """One attempt of one job (A3). ``finished_at`` is None while it runs.

    ``seen_at`` is when a live worker last vouched for a ``running`` attempt
    (``touch_runs``); an attempt nobody vouched for long enough is closed as ``lost``.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    job_id: str
    queue: str
    name: str
    attempt: int
    run_mode: RunMode
    status: RunStatus
    failure_kind: FailureKind | None = None
    error_class: str | None = None
    error_message: str | None = None
    result: Any = None
    started_at: datetime
    finished_at: datetime | None = None
    seen_at: datetime | None = None
    keys: dict[str, str] = Field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds the attempt took, or None while it runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class _AttemptsMadeWasAttempts(PortModel):
    """Dead letters called ``attempts_made`` ``attempts`` before 0.2; the old name still works."""

    if TYPE_CHECKING:
        attempts_made: int  # declared by each subclass, in its own field order

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        return renamed_fields(data, cls, {"attempts": "attempts_made"})

    @property
    def attempts(self) -> int:
        """Deprecated: ``attempts_made``."""
        deprecated_name(type(self).__name__, "attempts", "attempts_made")
        return self.attempts_made


class NewDeadLetter(_AttemptsMadeWasAttempts):
    """A job that failed for good: out of attempts or failed permanently (A4)."""

    model_config = _STRICT

    queue: str = Field(min_length=1)
    job_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    data: dict[str, Any]
    error_class: str
    error_message: str = Field(max_length=MAX_ERROR_MESSAGE)
    failure_kind: FailureKind
    attempts_made: int = Field(ge=1)
    failed_at: AwareDatetime


class DeadLetter(_AttemptsMadeWasAttempts):
    """A stored dead letter; ``retried_at``/``retry_job_id`` are set once it was retried."""

    model_config = ConfigDict(frozen=True)

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

    @property
    def error(self) -> str:
        """``ClassName: message``, as the queue reports a failure reason."""
        if not self.error_message:
            return self.error_class
        return f"{self.error_class}: {self.error_message}"


class QueueRunStats(PortModel):
    """Attempts of one queue that finished since a point in time (for health checks)."""

    model_config = ConfigDict(frozen=True)

    queue: str
    finished: int = 0
    completed: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0
    mean_duration: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        return renamed_fields(data, cls, {"attempts": "finished"})

    @property
    def attempts(self) -> int:
        """Deprecated: ``finished``."""
        deprecated_name("QueueRunStats", "attempts", "finished")
        return self.finished

    @property
    def failure_rate(self) -> float:
        """Share of finished attempts that failed, will be retried or were lost with their
        worker (0 when none finished)."""
        failures = self.failed + self.retrying + self.lost
        return failures / self.finished if self.finished else 0.0


class RunBucket(PortModel):
    """Attempts of one queue that finished within one time bucket (throughput charts)."""

    model_config = ConfigDict(frozen=True)

    queue: str
    start: datetime
    completed: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0

    @property
    def finished(self) -> int:
        """Every attempt that ended in the bucket."""
        return self.completed + self.retrying + self.failed + self.lost


@runtime_checkable
class HistoryPort(Protocol):
    """Run history and dead letters. Lists are newest first."""

    async def record_start(self, run: RunStart) -> JobRun:
        """Store an attempt that began (status ``running``) and return it with its id."""
        ...

    async def record_finish(self, run_id: str, finish: RunFinish) -> JobRun:
        """Close the attempt ``run_id``; raises ``ValidationError`` if it does not exist.

        An attempt already closed as ``lost`` is closed again with what really happened.
        """
        ...

    async def record_run(self, run: FinishedRun) -> None:
        """Store an attempt that ended, in one write (no ``running`` row before it)."""
        ...

    async def touch_runs(self, run_ids: Sequence[str], *, at: datetime) -> None:
        """Vouch that the ``running`` attempts ``run_ids`` are alive at ``at`` (``seen_at``).

        Ids that are unknown or no longer running are skipped.
        """
        ...

    async def close_lost_runs(self, stale_after: timedelta, *, now: datetime | None = None) -> int:
        """Close as ``lost`` the ``running`` attempts nobody vouched for since
        ``now - stale_after`` (their ``seen_at``, else their ``started_at``): their worker
        died. Returns how many; ``purge_runs`` deletes them later like other finished ones.
        """
        ...

    async def get_run(self, run_id: str) -> JobRun | None:
        """One attempt by id, or None."""
        ...

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
        """Attempts matching every given filter, newest first: ``limit`` of them after
        skipping ``offset``.

        ``keys`` matches runs whose business keys include every given pair;
        ``started_after`` is inclusive, ``started_before`` exclusive.
        """
        ...

    async def run_buckets(
        self, since: datetime, *, bucket: timedelta = timedelta(minutes=1), queue: str | None = None
    ) -> list[RunBucket]:
        """Attempts that finished at or after ``since``, counted per queue and per ``bucket``
        of time (aligned to the epoch), oldest bucket first; empty buckets are left out."""
        ...

    async def queue_stats(self, since: datetime) -> list[QueueRunStats]:
        """Per queue, the attempts that finished at or after ``since``."""
        ...

    async def add_failure(self, failure: NewDeadLetter) -> DeadLetter:
        """Store a dead letter and return it with its id."""
        ...

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
        """Dead letters matching every given filter, newest first; retried ones only with
        ``include_retried``. ``failed_after`` is inclusive, ``failed_before`` exclusive."""
        ...

    async def get_failure(self, failure_id: str) -> DeadLetter | None:
        """One dead letter by id, or None (also for ids that are not valid ids)."""
        ...

    async def mark_retried(
        self, failure_id: str, *, retry_job_id: str, retried_at: datetime
    ) -> DeadLetter | None:
        """Record that the dead letter was sent back to its queue; None if unknown."""
        ...

    async def purge_failures(
        self,
        older_than: timedelta = DEFAULT_FAILURE_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete dead letters that failed before ``now - older_than``; return how many."""
        ...

    async def purge_runs(
        self,
        older_than: timedelta = DEFAULT_RUN_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete finished attempts whose ``finished_at`` is before ``now - older_than``.

        Attempts still ``running`` are never deleted. Returns how many were deleted; a
        store may delete in several bounded batches rather than one statement.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
