"""The queue port: named queues of typed jobs, workers, control and events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from portside.ports.classification import Classifier
from portside.ports.flows import FlowJob, FlowRef, FlowTree
from portside.ports.queue_types import (
    JobInfo,
    JobLogs,
    JobOptions,
    JobPage,
    JobRef,
    JobState,
    NewJob,
    QueueCounts,
    QueueEvent,
    RateLimit,
    Retention,
    Schedule,
    ServerInfo,
    WorkerInfo,
    WorkerStatus,
)

__all__ = [
    "AbandonedHandler",
    "EventStream",
    "Job",
    "JobHandler",
    "QueuePort",
    "TracedJob",
    "WorkerHandle",
]


@runtime_checkable
class Job(Protocol):
    """The job a handler receives."""

    @property
    def id(self) -> str:
        """The job id (caller-chosen or generated)."""
        ...

    @property
    def name(self) -> str:
        """The job name given at enqueue."""
        ...

    @property
    def queue(self) -> str:
        """The portside queue name (e.g. ``agents-run:orchestrator``)."""
        ...

    @property
    def data(self) -> dict[str, Any]:
        """The JSON payload."""
        ...

    @property
    def attempt(self) -> int:
        """This attempt's number, 1 for the first try."""
        ...

    @property
    def max_attempts(self) -> int:
        """Attempts allowed in total."""
        ...

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Store progress readable through ``get_job`` and emit a ``progress`` event."""
        ...

    async def log(self, line: str) -> None:
        """Append a line to the job's logs (``get_logs``; BullMQ job logs), keeping the
        newest ``options.keep_logs`` lines."""
        ...

    async def children_values(self) -> dict[str, Any]:
        """The results of this job's completed children, by ``"<queue>:<job id>"``."""
        ...


JobHandler = Callable[[Job], Awaitable[Any]]

AbandonedHandler = Callable[[Job, BaseException], Awaitable[None]]
"""Told of a job the queue failed for good without running its handler, and why."""


@runtime_checkable
class TracedJob(Protocol):
    """A job that carries trace context (OBS1). Optional for adapters: a job without it
    starts a new trace in the worker."""

    @property
    def trace_context(self) -> str | None:
        """The job's ``JobOptions.trace_context`` as stored (BullMQ's ``tm``), or None."""
        ...


@runtime_checkable
class EventStream(Protocol):
    """Queue events from the moment the stream was created; close it with ``aclose``."""

    def __aiter__(self) -> AsyncIterator[QueueEvent]: ...

    async def __anext__(self) -> QueueEvent: ...

    async def aclose(self) -> None:
        """Stop receiving events and release the stream's resources."""
        ...


@runtime_checkable
class WorkerHandle(Protocol):
    """A consumer of one queue. Also an async context manager (start on enter, close on exit)."""

    async def start(self) -> None:
        """Begin fetching and running jobs; returns once the worker is fetching."""
        ...

    async def close(self, grace: float = 30.0) -> None:
        """Stop fetching, wait up to ``grace`` seconds for in-flight jobs, release the rest."""
        ...

    async def pause(self) -> None:
        """Stop fetching new jobs in this worker only; in-flight jobs finish."""
        ...

    async def resume(self) -> None:
        """Fetch again after ``pause``."""
        ...

    def status(self) -> WorkerStatus:
        """Liveness and counters of this worker."""
        ...

    async def __aenter__(self) -> WorkerHandle: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class QueuePort(Protocol):
    """Jobs on named queues. One instance serves many queues and owns its connections."""

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        options: JobOptions | None = None,
    ) -> JobRef:
        """Add a job; the same ``options.job_id`` twice yields one job (Q1)."""
        ...

    async def enqueue_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[JobRef]:
        """Add many jobs in one round trip; all are validated before any is added."""
        ...

    def consume(
        self,
        queue: str,
        handler: JobHandler,
        *,
        concurrency: int = 1,
        rate_limit: RateLimit | None = None,
        timeout: float | None = None,
        classify: Classifier | None = None,
        on_abandoned: AbandonedHandler | None = None,
        remove_on_complete: bool | int | Retention = False,
        remove_on_fail: bool | int | Retention = False,
    ) -> WorkerHandle:
        """Create a (not yet started) worker running ``handler`` for each job of ``queue``.

        ``remove_on_complete`` / ``remove_on_fail`` are the retention of finished jobs that
        set none of their own (a job's own setting wins), as BullMQ's worker options are.

        ``on_abandoned`` is awaited for each job the queue fails for good without calling
        ``handler`` (it stalled more often than allowed: ``JobStalledError``), so nothing fails
        unseen (Q16); an error it raises is logged and changes nothing.
        """
        ...

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The job's state, progress, result and failure, or None if unknown."""
        ...

    async def counts(self, queue: str) -> QueueCounts:
        """Jobs per state."""
        ...

    async def pause(self, queue: str) -> None:
        """Pause the queue for every worker; jobs wait until ``resume``."""
        ...

    async def resume(self, queue: str) -> None:
        """Resume a paused queue."""
        ...

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        ...

    async def purge(self, queue: str, *, delayed: bool = True) -> int:
        """Remove waiting (and, by default, delayed) jobs; BullMQ calls this ``drain``."""
        ...

    async def obliterate(self, queue: str, *, force: bool = False) -> None:
        """Remove the queue and all its data; refuses with active jobs unless ``force``."""
        ...

    async def retry_failed(self, queue: str, *, job_id: str | None = None) -> int:
        """Move failed jobs (or one) back to waiting with fresh attempts; returns how many."""
        ...

    async def add_flow(self, flow: FlowJob) -> FlowRef:
        """Add a tree of parent and child jobs at once; a parent runs after its children."""
        ...

    async def get_flow(
        self, queue: str, job_id: str, *, depth: int = 10, max_children: int = 100
    ) -> FlowTree | None:
        """A job and its children, ``depth`` levels deep, or None if the job is unknown."""
        ...

    async def wait_until_finished(self, queue: str, job_id: str, timeout: float) -> Any:  # noqa: ASYNC109
        """The job's result once it completed; raises ``JobFailedError`` if it failed for
        good, ``WaitTimeoutError`` after ``timeout`` seconds."""
        ...

    async def get_logs(
        self,
        queue: str,
        job_id: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        ascending: bool = True,
    ) -> JobLogs:
        """A job's log lines, oldest first unless ``ascending`` is False."""
        ...

    async def list_jobs(
        self,
        queue: str,
        states: JobState | Sequence[JobState],
        *,
        offset: int = 0,
        limit: int = 100,
        ascending: bool = False,
    ) -> JobPage:
        """One page of the jobs in ``states``, state by state, newest first by default."""
        ...

    async def remove_job(self, queue: str, job_id: str, *, force: bool = False) -> None:
        """Remove a job and its children; refuses an active job unless ``force``."""
        ...

    async def promote_job(self, queue: str, job_id: str) -> None:
        """Make a delayed job waiting now."""
        ...

    async def change_delay(self, queue: str, job_id: str, delay: float) -> None:
        """Make a delayed job due ``delay`` seconds from now."""
        ...

    async def update_data(
        self, queue: str, job_id: str, data: Mapping[str, Any] | BaseModel
    ) -> None:
        """Replace a job's payload; attempts that start later read the new one."""
        ...

    async def clean(
        self,
        queue: str,
        grace: float,
        *,
        state: Literal["completed", "failed"] = "completed",
        limit: int | None = None,
    ) -> list[str]:
        """Remove ``state`` jobs (completed or failed) finished over ``grace`` seconds ago,
        oldest first, at most ``limit``; returns their ids."""
        ...

    async def upsert_schedule(self, queue: str, schedule: Schedule) -> None:
        """Create or update a repeatable job (BullMQ job scheduler); idempotent (Q11)."""
        ...

    async def remove_schedule(self, queue: str, scheduler_id: str) -> bool:
        """Remove a job scheduler; False if it did not exist."""
        ...

    async def list_schedules(self, queue: str) -> list[Schedule]:
        """The job schedulers of a queue."""
        ...

    async def schedule_next_runs(self, queue: str) -> dict[str, float]:
        """When each job scheduler of ``queue`` runs next (epoch seconds), by scheduler id."""
        ...

    async def list_workers(self, queue: str) -> list[WorkerInfo]:
        """The workers connected to ``queue`` now, one per worker (OPS1)."""
        ...

    async def set_queue_concurrency(self, queue: str, limit: int | None) -> None:
        """Run at most ``limit`` jobs of ``queue`` at once across every worker, process and
        host, beside each worker's own ``concurrency``; None removes the cap (Q13)."""
        ...

    async def queue_concurrency(self, queue: str) -> int | None:
        """The queue-wide cap set with ``set_queue_concurrency``, or None (Q13)."""
        ...

    async def server_info(self) -> ServerInfo:
        """The memory policy and use of the server holding the queues (E2)."""
        ...

    def events(self, queue: str) -> EventStream:
        """Lifecycle events of ``queue`` emitted after this call returns (Q8)."""
        ...

    async def close(self) -> None:
        """Close every worker and connection this instance owns."""
        ...
