"""InMemoryQueue: a deterministic QueuePort with a virtual clock and ``drain()``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from portside.adapters.memory.clock import VirtualClock
from portside.adapters.memory.control import QueueControl
from portside.adapters.memory.events import MemoryEventStream, to_event
from portside.adapters.memory.job_record import JobRecord
from portside.adapters.memory.queue_state import QueueState
from portside.adapters.memory.worker import MemoryWorker
from portside.ports import (
    Classifier,
    ConfigurationError,
    JobHandler,
    JobInfo,
    JobOptions,
    JobOutcome,
    JobRef,
    JobState,
    NewJob,
    QueueCounts,
    QueueEvent,
    QueuePort,
    RateLimit,
)
from portside.ports.inputs import (
    check_callable,
    check_classifier,
    check_concurrency,
    check_job,
    check_lookup_id,
    check_new_job,
    check_seconds,
    check_sequence,
    coerce_rate_limit,
)
from portside.ports.validation import check_queue_name

__all__ = ["InMemoryQueue"]


class InMemoryQueue(QueueControl):
    """A :class:`~portside.ports.QueuePort` in memory, for unit tests.

    Nothing happens on its own: delays, backoff, rate-limit windows and schedules follow the
    :class:`VirtualClock` (move it with :meth:`advance`), and jobs run when a started worker
    picks them up or when a test calls :meth:`drain`. Timeouts are real time on the event
    loop and also fire when the virtual clock passes an attempt's deadline.

    Args:
        clock: The clock to read; a fresh :class:`VirtualClock` by default.
        events_log_limit: How many recent events :attr:`events_log` keeps (None: all).
    """

    def __init__(
        self, clock: VirtualClock | None = None, *, events_log_limit: int | None = 100_000
    ) -> None:
        super().__init__(clock, events_log_limit)

    # -- enqueue -----------------------------------------------------------------------------

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        options: JobOptions | None = None,
    ) -> JobRef:
        """Add a job; the same ``options.job_id`` twice yields one job (Q1)."""
        state = self._open(queue)
        ref = self._add(state, *check_job(name, data, options))
        state.wake()
        return ref

    async def enqueue_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[JobRef]:
        """Add many jobs; every entry is checked before any is added."""
        state = self._open(queue)
        entries = check_sequence(jobs, "jobs")
        defaults = JobOptions()
        checked = [
            check_new_job(item, f"jobs[{index}]", defaults) for index, item in enumerate(entries)
        ]
        refs = [self._add(state, *entry) for entry in checked]
        state.wake()
        return refs

    def _add(
        self, state: QueueState, name: str, data: dict[str, Any], options: JobOptions
    ) -> JobRef:
        custom = options.job_id
        if custom is not None and custom in state.jobs:
            return state.jobs[custom].ref()
        now = self.clock.now()
        key = options.dedupe_key
        if key is not None:
            duplicate = self._deduplicated(state, key, name, now)
            if duplicate is not None:
                return duplicate
        if custom is None:
            state.next_id += 1
            custom = str(state.next_id)
        record = JobRecord(
            state.name, custom, name, data, options, now=now, order=state.next_order()
        )
        if options.delay > 0:
            record.state = "delayed"
            state.add(record)
            state.push_delayed(record, now + options.delay)
        else:
            state.add(record)
            state.push_ready(record)
        if key is not None:
            ttl = options.dedupe_ttl
            state.dedupe[key] = (custom, now + ttl if ttl is not None else math.inf)
        self._emit(state, "enqueued", record, 0)
        return JobRef(queue=state.name, id=custom, name=name)

    @staticmethod
    def _deduplicated(state: QueueState, key: str, name: str, now: float) -> JobRef | None:
        entry = state.dedupe.get(key)
        if entry is None:
            return None
        job_id, expires = entry
        existing = state.jobs.get(job_id)
        if expires == math.inf:
            live = existing is not None and existing.state not in ("completed", "failed")
        else:
            live = now < expires
        if not live:
            del state.dedupe[key]
            return None
        return (
            existing.ref()
            if existing is not None
            else JobRef(queue=state.name, id=job_id, name=name)
        )

    # -- workers -----------------------------------------------------------------------------

    def consume(
        self,
        queue: str,
        handler: JobHandler,
        *,
        concurrency: int = 1,
        rate_limit: RateLimit | None = None,
        timeout: float | None = None,
        classify: Classifier | None = None,
    ) -> MemoryWorker:
        """A worker for ``queue`` (not started: ``drain()`` uses it; ``start()`` runs it live).

        A job's ``options.timeout`` wins over the worker's ``timeout``.
        """
        state = self._open(queue)
        worker = MemoryWorker(
            self,
            state,
            check_callable(handler, "handler"),
            concurrency=check_concurrency(concurrency),
            rate_limit=coerce_rate_limit(rate_limit),
            timeout=None if timeout is None else check_seconds(timeout, "timeout", positive=True),
            classify=check_classifier(classify),
        )
        state.workers.append(worker)
        return worker

    # -- reading -----------------------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if unknown (or removed by retention)."""
        state = self._open(queue)
        record = state.jobs.get(check_lookup_id(job_id))
        return None if record is None else record.info(paused=state.paused)

    async def counts(self, queue: str) -> QueueCounts:
        """Jobs per state; waiting jobs of a paused queue count as ``paused``."""
        return QueueCounts(**self._open(queue).snapshot_counts())

    # -- events ------------------------------------------------------------------------------

    def events(self, queue: str) -> MemoryEventStream:
        """Events of ``queue`` emitted from now on (Q8)."""
        state = self._open(queue)
        stream = MemoryEventStream(
            lambda s: state.streams.remove(s) if s in state.streams else None
        )
        state.streams.append(stream)
        return stream

    # -- test controls -----------------------------------------------------------------------

    async def drain(self, queue: str | None = None) -> list[JobOutcome]:
        """Run every due job of ``queue`` (or of all queues) until none is waiting or active.

        Uses the workers made by :meth:`consume`, started or not, within their concurrency,
        pause and rate limit; jobs held by a started worker are awaited, never run twice.
        Delayed jobs stay delayed until :meth:`advance` makes them due.

        Returns:
            The outcome of every attempt that ended during the call, in the order they ended.

        Raises:
            ConfigurationError: ``queue`` has due jobs but no worker to run them.
        """
        if queue is None:
            self._check_open()
            targets = list(self._queues.values())
        else:
            targets = [self._open(queue)]
        outcomes: list[JobOutcome] = []
        collector = (None if queue is None else targets[0].name, outcomes)
        self._collectors.append(collector)
        try:
            await self._drain_until_idle(targets, named=queue is not None)
        finally:
            self._collectors.remove(collector)
        return outcomes

    async def _drain_until_idle(self, targets: list[QueueState], *, named: bool) -> None:
        while True:
            lanes = [
                self._drain_lane(worker)
                for state in targets
                for worker in list(state.workers)
                if self._can_take(worker)
                for _ in range(worker.concurrency - worker.active)
            ]
            if lanes:
                results = await asyncio.gather(*lanes, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        raise result
                continue
            if any(state.active for state in targets):
                waiter = asyncio.get_running_loop().create_future()
                for state in targets:
                    state.waiters.append(waiter)
                await waiter
                continue
            if (
                named
                and targets[0].has_ready()
                and not targets[0].paused
                and not targets[0].workers
            ):
                raise ConfigurationError(
                    f"queue {targets[0].name!r} has waiting jobs but no worker",
                    fix=f"call queue.consume({targets[0].name!r}, handler) before drain()",
                )
            return

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock: due delayed jobs become waiting, schedules fire."""
        self.clock.advance(seconds)

    # -- inspection --------------------------------------------------------------------------

    @property
    def queues(self) -> list[str]:
        """Names of the queues this fake has seen, sorted."""
        return sorted(self._queues)

    def jobs(self, queue: str | None = None, *, state: JobState | None = None) -> list[JobInfo]:
        """Snapshots of every stored job (of ``queue``, in ``state``), oldest first."""
        states = (
            [self._state(check_queue_name(queue))] if queue is not None else self._queues.values()
        )
        found = [r.info(paused=s.paused) for s in states for r in s.jobs.values()]
        return [info for info in found if state is None or info.state == state]

    @property
    def events_log(self) -> list[QueueEvent]:
        """Every recent event of every queue, oldest first (see ``events_log_limit``)."""
        return [to_event(row) for row in self._log]

    def reset(self) -> None:
        """Forget every job, schedule, pause and logged event; workers and streams stay."""
        for state in self._queues.values():
            for record in state.jobs.values():
                record.removed = True
            state.clear()
            state.wake()
        self._log.clear()

    async def close(self) -> None:
        """Close every worker (30 s grace each) and end every event stream."""
        if self._closed:
            return
        self._closed = True
        for state in self._queues.values():
            for worker in list(state.workers):
                await worker.close()
            for stream in list(state.streams):
                stream.end()
        self._unsubscribe()


def _conforms() -> QueuePort:
    return InMemoryQueue()
