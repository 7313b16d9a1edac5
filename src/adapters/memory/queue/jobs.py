"""Jobs of the queue fake: the stored record and the view a handler receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from portside.adapters.memory.queue.json_values import copy_json
from portside.ports import Backoff, FailureKind, Job, JobInfo, JobOptions, JobRef, Retention

__all__ = ["InMemoryJob", "JobRecord"]

Keep = bool | int | Retention


class JobRecord:
    """Mutable state of one job; ``state`` is the internal state (never ``paused``)."""

    __slots__ = (
        "attempts_made",
        "backoff",
        "created_at",
        "data",
        "deadline",
        "dedupe_key",
        "delay",
        "due_at",
        "failed_reason",
        "failure_kind",
        "finished_at",
        "id",
        "keep_complete",
        "keep_fail",
        "max_attempts",
        "name",
        "order",
        "priority",
        "processed_at",
        "progress",
        "queue",
        "removed",
        "result",
        "scheduler_id",
        "stalled_out",
        "stalls",
        "state",
        "task",
        "timeout",
        "timer",
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
        self.delay = options.delay
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
        )


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

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Store progress (readable through ``get_job``) and emit a ``progress`` event."""
        self._sink(self._record, self._attempt, progress)

    def __repr__(self) -> str:
        return f"InMemoryJob(queue={self.queue!r}, id={self.id!r}, attempt={self._attempt})"


def _conforms(job: InMemoryJob) -> Job:
    return job
