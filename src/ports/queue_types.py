"""Value types of the queue port. Durations are seconds (float); timestamps are epoch seconds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    field_validator,
    model_validator,
)

from portside.ports.cron import check_cron_pattern, resolve_timezone
from portside.ports.errors import ConfigurationError
from portside.ports.model import PortModel
from portside.ports.validation import check_job_id, json_payload

__all__ = [
    "ATTEMPTS_ENV",
    "Backoff",
    "FailureKind",
    "JobInfo",
    "JobLogs",
    "JobOptions",
    "JobOutcome",
    "JobPage",
    "JobParent",
    "JobRef",
    "JobState",
    "NewJob",
    "QueueCounts",
    "QueueEvent",
    "QueueEventKind",
    "RateLimit",
    "Retention",
    "Schedule",
    "ServerInfo",
    "WorkerInfo",
    "WorkerStatus",
    "default_attempts",
    "default_options",
]

ATTEMPTS_ENV = "PORTSIDE_DEFAULT_ATTEMPTS"
MAX_SECONDS = float(2**31)  # ~68 years: every duration must fit BullMQ's integer milliseconds
MAX_KEEP = 2**31 - 1
MAX_STACKTRACES = 10  # tracebacks a job keeps, newest last (BullMQ keeps what the worker writes)
MAX_PRIORITY = 2_097_151  # 2**21 - 1, the largest priority Node BullMQ 5 accepts

JobState = Literal[
    "waiting", "delayed", "active", "completed", "failed", "paused", "waiting-children", "unknown"
]
"""``waiting-children``: a flow's parent job waiting for its children (BullMQ's state name)."""
FailureKind = Literal["transient", "permanent"]
QueueEventKind = Literal[
    "enqueued", "active", "progress", "completed", "retrying", "failed", "stalled"
]
_STRICT = ConfigDict(extra="forbid", frozen=True)


def default_attempts() -> int:
    """The attempts used when a job sets none: ``$PORTSIDE_DEFAULT_ATTEMPTS`` or 3 (Q3)."""
    return _attempts(os.environ.get(ATTEMPTS_ENV))


def _attempts(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return 3
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(
            f"{ATTEMPTS_ENV}={raw!r} is not a positive integer",
            fix=f"set {ATTEMPTS_ENV} to 1 or more, or unset it for the default of 3",
            field=ATTEMPTS_ENV,
        )
    return value


class Backoff(PortModel):
    """How long to wait before retry number n.

    ``fixed``: always ``delay``. ``exponential``: ``delay * 2**(n-1)`` (BullMQ's formula).
    ``schedule``: the explicit list ``delays`` (1 s, 5 s, 30 s), repeating the last entry.
    """

    model_config = _STRICT

    kind: Literal["fixed", "exponential", "schedule"]
    delay: float = Field(default=0.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    delays: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _check_shape(self) -> Backoff:
        if self.kind == "schedule":
            if not self.delays:
                raise ValueError("a schedule backoff needs at least one delay, e.g. (1, 5, 30)")
            if not all(0 <= d <= MAX_SECONDS for d in self.delays):
                raise ValueError(
                    f"schedule delays must be finite seconds from 0 to {MAX_SECONDS:.0f}"
                )
        elif self.delays:
            raise ValueError(f"'delays' only applies to kind='schedule', not {self.kind!r}")
        return self

    @classmethod
    def fixed(cls, delay: float) -> Backoff:
        return cls(kind="fixed", delay=delay)

    @classmethod
    def exponential(cls, delay: float) -> Backoff:
        return cls(kind="exponential", delay=delay)

    @classmethod
    def schedule(cls, *delays: float) -> Backoff:
        return cls(kind="schedule", delays=tuple(delays))

    def delay_for(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        n = max(retry, 1)
        if self.kind == "fixed":
            return self.delay
        if self.kind == "exponential":
            return float(self.delay * 2 ** (n - 1))
        return self.delays[min(n, len(self.delays)) - 1]


class Retention(PortModel):
    """Keep at most ``count`` finished jobs and none older than ``age`` seconds."""

    model_config = _STRICT

    count: int | None = Field(default=None, ge=0, le=MAX_KEEP)
    age: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)


MAX_TRACE_CONTEXT = 8192
"""Longest ``JobOptions.trace_context`` accepted, in characters."""


class JobOptions(PortModel):
    """Per-job options; unknown options are rejected."""

    model_config = _STRICT

    job_id: str | None = None
    delay: float = Field(default=0.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY)
    attempts: int = Field(default_factory=default_attempts, ge=1, le=1000)
    backoff: Backoff | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    remove_on_complete: bool | int | Retention = False
    remove_on_fail: bool | int | Retention = False
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)
    dedupe_ttl: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    keep_logs: int | None = Field(default=None, ge=1, le=MAX_KEEP)
    """Log lines kept per job, the newest (BullMQ ``keepLogs``); None keeps every line."""
    trace_context: str | None = Field(default=None, max_length=MAX_TRACE_CONTEXT)
    """Trace propagation metadata carried with the job (OBS1): where Node BullMQ's telemetry
    keeps it (``telemetry.metadata``, stored as ``tm`` in the job's opts), a JSON object of
    propagation headers such as ``traceparent``. Set by portside's tracing; rarely by hand."""

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        return None if value is None else check_job_id(value, "job_id")

    @field_validator("remove_on_complete", "remove_on_fail")
    @classmethod
    def _retention(cls, value: bool | int | Retention) -> bool | int | Retention:
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_KEEP:
            raise ValueError(f"keep-count must be from 0 to {MAX_KEEP}")
        return value


_DEFAULT_OPTIONS: dict[str | None, JobOptions] = {}


def default_options() -> JobOptions:
    """``JobOptions()``: one shared (frozen) instance per ``$PORTSIDE_DEFAULT_ATTEMPTS`` value.

    Reads the variable on every call, like ``JobOptions()``, but builds the model only the
    first time a value is seen.
    """
    raw = os.environ.get(ATTEMPTS_ENV)
    found = _DEFAULT_OPTIONS.get(raw)
    if found is None:
        if len(_DEFAULT_OPTIONS) >= 64:
            _DEFAULT_OPTIONS.clear()
        found = _DEFAULT_OPTIONS.setdefault(raw, JobOptions(attempts=_attempts(raw)))
    return found


class NewJob(PortModel):
    """One job of a bulk enqueue; ``data`` is checked as a payload when it is enqueued."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    data: SkipValidation[Mapping[str, Any] | BaseModel]
    options: JobOptions | None = None

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> Any:
        # Only the shape here (the payload rules run at enqueue): kept as given, not copied
        # key by key, which made building a NewJob cost more than checking its payload.
        if isinstance(value, Mapping):
            for key in value:
                if not isinstance(key, str):
                    raise ValueError(f"has the non-string key {key!r}; use string keys")
            return value
        if isinstance(value, BaseModel):
            return value
        raise ValueError(
            f"must be a dict or a pydantic model (a JSON object), got {type(value).__name__}"
        )


class RateLimit(PortModel):
    """At most ``max`` jobs started per ``per`` seconds, across all workers of the queue."""

    model_config = _STRICT

    max: int = Field(ge=1, le=MAX_KEEP)
    per: float = Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)


class Schedule(PortModel):
    """A repeatable job: a cron ``pattern`` or an interval ``every`` (seconds), not both.

    ``pattern`` follows :func:`portside.ports.cron.check_cron_pattern` (5 fields, or 6 with
    seconds first) and is read on the wall clock of ``timezone`` (an IANA name; UTC if None).
    """

    model_config = _STRICT

    scheduler_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)
    pattern: str | None = None
    every: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    timezone: str | None = None
    options: JobOptions | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        # Checked here so every adapter refuses the same patterns, before any I/O.
        return None if value is None else check_cron_pattern(value, "pattern")

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> dict[str, Any]:
        # The same rules as a job payload: every run of the schedule enqueues this data.
        return json_payload(value, "data")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            resolve_timezone(value, "timezone")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if (self.pattern is None) == (self.every is None):
            raise ValueError("give exactly one of 'pattern' (cron) or 'every' (seconds)")
        return self


class JobRef(PortModel):
    """What enqueue returns: enough to find the job again."""

    model_config = ConfigDict(frozen=True)

    queue: str
    id: str
    name: str


class JobParent(PortModel):
    """The parent a job of a flow belongs to (Q7)."""

    model_config = ConfigDict(frozen=True)

    queue: str
    id: str


class JobInfo(PortModel):
    """A snapshot of one job (Q7). ``parent`` is set for a child job of a flow."""

    model_config = ConfigDict(frozen=True)

    queue: str
    id: str
    name: str
    data: dict[str, Any]
    state: JobState
    attempts_made: int = 0
    max_attempts: int = 1
    progress: Any = 0
    result: Any = None
    failed_reason: str | None = None
    failure_kind: FailureKind | None = None
    priority: int = 0
    delay: float = 0.0
    created_at: float
    processed_at: float | None = None
    finished_at: float | None = None
    parent: JobParent | None = None
    options: JobOptions | None = None
    """The options the job was added with (None when the stored ones are unreadable)."""
    stacktrace: list[str] = Field(default_factory=list)
    """Tracebacks of its failed attempts, oldest first (the newest few are kept)."""


class JobPage(PortModel):
    """One page of ``list_jobs``: the jobs, and how many the listed states hold in all (Q9)."""

    model_config = ConfigDict(frozen=True)

    jobs: list[JobInfo]
    total: int


class JobLogs(PortModel):
    """Log lines of one job (``get_logs``) and how many it keeps in all (Q7)."""

    model_config = ConfigDict(frozen=True)

    lines: list[str]
    count: int


class QueueCounts(PortModel):
    """Jobs per state (Q7, Q9). ``waiting_children`` counts flow parents waiting for children."""

    model_config = ConfigDict(frozen=True)

    waiting: int = 0
    active: int = 0
    delayed: int = 0
    completed: int = 0
    failed: int = 0
    paused: int = 0
    waiting_children: int = 0

    @property
    def depth(self) -> int:
        """Jobs not yet started: waiting, paused and delayed."""
        return self.waiting + self.paused + self.delayed


class QueueEvent(PortModel):
    """A lifecycle event (Q8). ``attempt`` is 1 for the first try."""

    model_config = ConfigDict(frozen=True)

    kind: QueueEventKind
    queue: str
    job_id: str
    name: str | None = None
    attempt: int = 0
    timestamp: float
    progress: Any = None
    result: Any = None
    error: str | None = None
    failure_kind: FailureKind | None = None


class JobOutcome(PortModel):
    """What one attempt ended in; returned by ``drain()`` helpers.

    ``status`` is ``retrying`` when the attempt failed but the job will run again.
    """

    model_config = ConfigDict(frozen=True)

    queue: str
    job_id: str
    name: str
    attempt: int
    status: Literal["completed", "retrying", "failed"]
    result: Any = None
    error: str | None = None
    failure_kind: FailureKind | None = None


class WorkerStatus(PortModel):
    """Liveness of a worker handle: a worker that stopped fetching is visible here."""

    model_config = ConfigDict(frozen=True)

    queue: str
    running: bool
    paused: bool
    concurrency: int
    active: int
    processed: int
    failed: int
    last_fetch_at: float | None = None


class WorkerInfo(PortModel):
    """A worker connected to a queue, as the queue's server sees it (Node BullMQ's
    ``getWorkers``): its connection name, address, and how long it has been connected and
    idle, in seconds."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str | None = None
    age: float = 0.0
    idle: float = 0.0


class ServerInfo(PortModel):
    """What the server behind a queue port says about its memory (E2).

    A queue's Redis must not evict keys: an evicted job hash or lock loses a job. Values the
    server would not give (a managed Redis may refuse ``INFO`` or ``CONFIG``) are None, and
    ``unreadable`` says why.
    """

    model_config = ConfigDict(frozen=True)

    backend: str
    """What serves the queue, e.g. ``redis 7.2.4``, ``valkey 8.1.1`` or ``in-memory``."""
    maxmemory_policy: str | None = None
    """What happens when memory is full: ``noeviction`` refuses writes, anything else evicts."""
    used_memory: int | None = None
    """Bytes in use."""
    maxmemory: int | None = None
    """The memory limit in bytes; 0 means no limit."""
    unreadable: str | None = None
    """Why a value is None, e.g. ``INFO refused: NOPERM ...``."""
