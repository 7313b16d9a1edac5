"""Jobs of the queue fake: the stored record and the view a handler receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portside.adapters.memory.queue.json_values import copy_json
from portside.ports import (
    Backoff,
    ChildFailure,
    FailureKind,
    Job,
    JobInfo,
    JobOptions,
    JobParent,
    JobRef,
    Retention,
)
from portside.ports.inputs import check_log_line

__all__ = ["FlowLinks", "InMemoryJob", "JobRecord"]

Keep = bool | int | Retention


@dataclass(slots=True, eq=False)
class FlowLinks:
    """A flow job's links, as BullMQ keeps them: its parent and, for a parent, its children.

    Children are keyed ``"<queue>:<job id>"``: ``pending`` are those it still waits for,
    ``processed`` the results of those that completed, ``ignored`` the reasons of failures
    ignored (``ignore``), ``unsuccessful`` when failures failed it (``fail_parent``).
    ``known`` finds every child ever linked.
    """

    parent: JobRecord | None = None
    on_failure: ChildFailure = "wait"
    pending: dict[str, JobRecord] = field(default_factory=dict)
    processed: dict[str, object] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    unsuccessful: dict[str, float] = field(default_factory=dict)
    known: dict[str, JobRecord] = field(default_factory=dict)


class JobRecord:
    """Mutable state of one job; ``state`` is the internal state (never ``paused``)."""

    __slots__ = (
        "attempts_made",
        "backoff",
        "created_at",
        "data",
        "deadline",
        "dedupe_key",
        "deferred",
        "delay",
        "due_at",
        "failed_reason",
        "failure_kind",
        "finished_at",
        "id",
        "keep_complete",
        "keep_fail",
        "keep_logs",
        "links",
        "logs",
        "max_attempts",
        "name",
        "options",
        "order",
        "priority",
        "processed_at",
        "progress",
        "queue",
        "removed",
        "result",
        "scheduler_id",
        "stacktrace",
        "stalled_out",
        "stalls",
        "state",
        "taken",
        "task",
        "timeout",
        "timer",
        "trace_context",
        "worker",
    )

    def __init__(
        self,
        queue: str,
        job_id: str,
        name: str,
        data: dict[str, Any],
        options: JobOptions,
        *,
        now: float,
        order: int,
        scheduler_id: str | None = None,
    ) -> None:
        self.queue = queue
        self.id = job_id
        self.name = name
        self.data = data
        self.priority = options.priority
        self.max_attempts = options.attempts
        self.backoff: Backoff | None = options.backoff
        self.timeout: float | None = options.timeout
        self.keep_complete: Keep = options.remove_on_complete
        self.keep_fail: Keep = options.remove_on_fail
        self.dedupe_key: str | None = options.dedupe_key
        self.keep_logs: int | None = options.keep_logs
        self.trace_context: str | None = options.trace_context
        self.delay = options.delay
        self.options = options
        self.stacktrace: list[str] = []
        self.scheduler_id = scheduler_id
        self.created_at = now
        self.order = order
        self.state = "waiting"
        self.attempts_made = 0
        self.stalls = 0
        self.stalled_out: str | None = None
        """Why the job fails at its next fetch without an attempt (BullMQ's ``defa``)."""
        self.progress: Any = 0
        self.result: Any = None
        self.failed_reason: str | None = None
        self.failure_kind: FailureKind | None = None
        self.processed_at: float | None = None
        self.finished_at: float | None = None
        self.due_at = now
        self.deadline = 0.0
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.Timeout | None = None
        self.removed = False
        self.worker: object = None  # whose close() cancels the attempt holding this job
        self.taken = 0  # when a worker took it last (the runner's counter of takes)
        self.links: FlowLinks | None = None  # only for jobs of a flow
        self.logs: list[str] | None = None
        self.deferred: str | None = None  # a failure decided before it runs (a failed child)

    @property
    def key(self) -> str:
        """How a parent names this job among its children: ``"<queue>:<job id>"``."""
        return f"{self.queue}:{self.id}"

    def ref(self) -> JobRef:
        """The reference enqueue returns."""
        return JobRef(queue=self.queue, id=self.id, name=self.name)

    def info(self, *, paused: bool) -> JobInfo:
        """A snapshot; a waiting job of a paused queue reads as ``paused``."""
        state = "paused" if paused and self.state == "waiting" else self.state
        return JobInfo(
            queue=self.queue,
            id=self.id,
            name=self.name,
            data=copy_json(self.data),
            state=state,
            attempts_made=self.attempts_made,
            max_attempts=self.max_attempts,
            progress=copy_json(self.progress),
            result=copy_json(self.result),
            failed_reason=self.failed_reason,
            failure_kind=self.failure_kind,
            priority=self.priority,
            delay=self.delay,
            created_at=self.created_at,
            processed_at=self.processed_at,
            finished_at=self.finished_at,
            parent=self._parent(),
            options=self.options,
            stacktrace=list(self.stacktrace),
        )

    def _parent(self) -> JobParent | None:
        links = self.links
        if links is None or links.parent is None:
            return None
        return JobParent(queue=links.parent.queue, id=links.parent.id)

    def add_log(self, line: str) -> int:
        """Append a log line, keeping the newest ``keep_logs``; returns how many are kept."""
        logs = self.logs
        if logs is None:
            logs = self.logs = []
        logs.append(line)
        keep = self.keep_logs
        if keep is not None and len(logs) > keep:
            del logs[: len(logs) - keep]
        return len(logs)


ProgressSink = Callable[[JobRecord, int, object], None]


class InMemoryJob:
    """The :class:`~portside.ports.Job` a handler receives for one attempt."""

    __slots__ = ("_attempt", "_data", "_record", "_sink")

    def __init__(self, record: JobRecord, attempt: int, sink: ProgressSink) -> None:
        self._record = record
        self._attempt = attempt
        self._sink = sink
        self._data: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        """The job id."""
        return self._record.id

    @property
    def name(self) -> str:
        """The job name."""
        return self._record.name

    @property
    def queue(self) -> str:
        """The queue name."""
        return self._record.queue

    @property
    def data(self) -> dict[str, Any]:
        """This attempt's own copy of the payload, as a real adapter decodes it afresh."""
        if self._data is None:
            self._data = copy_json(self._record.data)
        return self._data

    @property
    def attempt(self) -> int:
        """1 for the first try."""
        return self._attempt

    @property
    def max_attempts(self) -> int:
        """Attempts allowed in total."""
        return self._record.max_attempts

    @property
    def trace_context(self) -> str | None:
        """The trace context the job was enqueued with (``JobOptions.trace_context``)."""
        return self._record.trace_context

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Store progress (readable through ``get_job``) and emit a ``progress`` event."""
        self._sink(self._record, self._attempt, progress)

    async def log(self, line: str) -> None:
        """Append a line to the job's logs (dropped once the job is removed)."""
        line = check_log_line(line)
        if not self._record.removed:
            self._record.add_log(line)

    async def children_values(self) -> dict[str, Any]:
        """The results of this job's completed children, by ``"<queue>:<job id>"``."""
        links = self._record.links
        if links is None:
            return {}
        return {key: copy_json(value) for key, value in links.processed.items()}

    def __repr__(self) -> str:
        return f"InMemoryJob(queue={self.queue!r}, id={self.id!r}, attempt={self._attempt})"


def _conforms(job: InMemoryJob) -> Job:
    return job
