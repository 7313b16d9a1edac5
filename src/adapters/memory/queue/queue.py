"""The queue fake: InMemoryQueue, a deterministic QueuePort with a virtual clock and drain()."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from portside.adapters.memory.clock import VirtualClock
from portside.adapters.memory.queue import control, flows, manage
from portside.adapters.memory.queue.events import InMemoryEventStream, to_event
from portside.adapters.memory.queue.jobs import JobRecord
from portside.adapters.memory.queue.json_values import copy_json
from portside.adapters.memory.queue.runner import JobRunner
from portside.adapters.memory.queue.state import Finish, QueueState
from portside.adapters.memory.queue.worker import InMemoryWorker
from portside.ports import (
    AbandonedHandler,
    Classifier,
    ConfigurationError,
    FlowJob,
    FlowRef,
    FlowTree,
    JobFailedError,
    JobHandler,
    JobInfo,
    JobLogs,
    JobNotFoundError,
    JobOptions,
    JobOutcome,
    JobPage,
    JobRef,
    JobState,
    NewJob,
    QueueCounts,
    QueueEvent,
    QueuePort,
    RateLimit,
    Retention,
    Schedule,
    ServerInfo,
    WaitTimeoutError,
    WorkerInfo,
)
from portside.ports.inputs import (
    MAX_PAGE,
    FlowNode,
    check_callable,
    check_classifier,
    check_clean_state,
    check_concurrency,
    check_count,
    check_delay,
    check_flow,
    check_job,
    check_keep,
    check_lookup_id,
    check_new_job,
    check_queue_concurrency,
    check_seconds,
    check_sequence,
    check_states,
    coerce_rate_limit,
)
from portside.ports.queue_types import MAX_SECONDS
from portside.ports.validation import check_queue_name, json_payload

__all__ = ["InMemoryQueue"]


class InMemoryQueue:
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
        self._runner = JobRunner(clock, events_log_limit)
        self.clock = self._runner.clock
        self._workers: dict[str, list[InMemoryWorker]] = {}
        self._worker_ids = itertools.count(1)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(
                "this InMemoryQueue is closed",
                fix="create a new InMemoryQueue (or a new Infra) instead of reusing a closed one",
            )

    def _open(self, queue: object) -> QueueState:
        self._check_open()
        return self._runner.state(check_queue_name(queue))

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
        self._runner.emit(state, "enqueued", record, 0)
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

    # -- flows -------------------------------------------------------------------------------

    async def add_flow(self, flow: FlowJob) -> FlowRef:
        """Add a tree of parent and child jobs at once (BullMQ's FlowProducer rules)."""
        self._check_open()
        nodes = check_flow(flow)
        for node in nodes:
            self._runner.state(node.queue)
        ref = flows.add_flow(nodes, self._runner.state, self.clock.now(), self._add_node)
        for node in nodes:
            self._runner.state(node.queue).wake()
        return ref

    def _add_node(self, state: QueueState, node: FlowNode, job_id: str, parent: bool) -> JobRecord:
        now = self.clock.now()
        record = JobRecord(
            state.name,
            job_id,
            node.name,
            flows.decode(node),
            node.options,
            now=now,
            order=state.next_order(),
        )
        if parent:
            record.state = "waiting-children"
            state.add(record)
        elif node.options.delay > 0:
            record.state = "delayed"
            state.add(record)
            state.push_delayed(record, now + node.options.delay)
        else:
            state.add(record)
            state.push_ready(record)
        self._runner.emit(state, "enqueued", record, 0)
        return record

    async def get_flow(
        self, queue: str, job_id: str, *, depth: int = 10, max_children: int = 100
    ) -> FlowTree | None:
        """A job and its children, ``depth`` levels deep, or None if the job is unknown."""
        state = self._open(queue)
        job_id = check_lookup_id(job_id)
        depth = check_count(depth, "depth", minimum=1)
        max_children = check_count(max_children, "max_children", minimum=1)
        record = state.jobs.get(job_id)
        if record is None:
            return None
        return flows.get_flow(record, depth, max_children, self._paused)

    def _paused(self, queue: str) -> bool:
        return self._runner.state(queue).paused

    # -- waiting for a job -------------------------------------------------------------------

    async def wait_until_finished(self, queue: str, job_id: str, timeout: float) -> Any:  # noqa: ASYNC109
        """The job's result once it completed (at once if it already has).

        Raises:
            JobNotFoundError: no such job, or it was removed while waited for.
            JobFailedError: the job failed for good.
            WaitTimeoutError: ``timeout`` seconds (real time) passed first.
        """
        state = self._open(queue)
        job_id = check_lookup_id(job_id)
        limit = check_seconds(timeout, "timeout", positive=True)
        record = state.jobs.get(job_id)
        if record is None:
            raise JobNotFoundError(state.name, job_id)
        if record.state == "completed":
            return copy_json(record.result)
        if record.state == "failed":
            raise _failed(record)
        future: asyncio.Future[Finish] = asyncio.get_running_loop().create_future()
        state.finish_waiters.setdefault(job_id, []).append(future)
        try:
            async with asyncio.timeout(min(limit, MAX_SECONDS)):
                kind, value = await future
        except TimeoutError:
            shown = record.info(paused=state.paused).state
            raise WaitTimeoutError(state.name, job_id, limit, shown) from None
        finally:
            waiting = state.finish_waiters.get(job_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del state.finish_waiters[job_id]
        if kind == "completed":
            return value
        if kind == "failed":
            raise _failed(value)
        if kind == "closed":
            raise ConfigurationError(
                f"the InMemoryQueue closed while waiting for job {job_id!r} of queue "
                f"{state.name!r}",
                fix="wait before closing the queue",
            )
        raise JobNotFoundError(
            state.name, job_id, message=f"job {job_id!r} of queue {state.name!r} was removed"
        )

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
        state = self._open(queue)
        job_id = check_lookup_id(job_id)
        offset = check_count(offset, "offset")
        if limit is not None:
            limit = check_count(limit, "limit", minimum=1)
        return manage.get_logs(state, job_id, offset, limit, bool(ascending))

    # -- job management ----------------------------------------------------------------------

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
        state = self._open(queue)
        kinds = check_states(states)
        offset = check_count(offset, "offset")
        limit = check_count(limit, "limit", minimum=1, maximum=MAX_PAGE)
        return manage.list_jobs(state, kinds, offset, limit, bool(ascending))

    async def remove_job(self, queue: str, job_id: str, *, force: bool = False) -> None:
        """Remove a job and its children; refuses an active job unless ``force``."""
        state = self._open(queue)
        manage.remove_job(state, check_lookup_id(job_id), self._runner.state, force=force)

    async def promote_job(self, queue: str, job_id: str) -> None:
        """Make a delayed job waiting now."""
        manage.promote_job(self._open(queue), check_lookup_id(job_id))

    async def change_delay(self, queue: str, job_id: str, delay: float) -> None:
        """Make a delayed job due ``delay`` seconds from now (on the virtual clock)."""
        state = self._open(queue)
        job_id = check_lookup_id(job_id)
        seconds = check_delay(delay)
        manage.change_delay(state, job_id, seconds, self.clock.now())

    async def update_data(
        self, queue: str, job_id: str, data: Mapping[str, Any] | BaseModel
    ) -> None:
        """Replace a job's payload; attempts that start later read the new one."""
        state = self._open(queue)
        job_id = check_lookup_id(job_id)
        manage.update_data(state, job_id, json_payload(data, "data"))

    async def clean(
        self,
        queue: str,
        grace: float,
        *,
        state: Literal["completed", "failed"] = "completed",
        limit: int | None = None,
    ) -> list[str]:
        """Remove ``state`` jobs finished over ``grace`` seconds ago (virtual clock), oldest
        first, at most ``limit``; returns their ids."""
        target = self._open(queue)
        seconds = check_seconds(grace, "grace")
        kind = check_clean_state(state)
        if limit is not None:
            limit = check_count(limit, "limit", minimum=1)
        older_than = self.clock.now() - seconds
        return manage.clean(target, kind, older_than, limit, self._runner.state)

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
        on_abandoned: AbandonedHandler | None = None,
        remove_on_complete: bool | int | Retention = False,
        remove_on_fail: bool | int | Retention = False,
    ) -> InMemoryWorker:
        """A worker for ``queue`` (not started: ``drain()`` uses it; ``start()`` runs it live).

        A job's ``options.timeout`` wins over the worker's ``timeout``. Jobs of the fake never
        stall (no process holds them), so ``on_abandoned`` is checked and kept on the worker,
        but never called.
        """
        state = self._open(queue)
        workers = self._workers.setdefault(state.name, [])
        worker = InMemoryWorker(
            state,
            check_callable(handler, "handler"),
            concurrency=check_concurrency(concurrency),
            rate_limit=coerce_rate_limit(rate_limit),
            timeout=None if timeout is None else check_seconds(timeout, "timeout", positive=True),
            classify=check_classifier(classify),
            on_abandoned=None
            if on_abandoned is None
            else check_callable(on_abandoned, "on_abandoned"),
            keep_complete=check_keep(remove_on_complete, "remove_on_complete"),
            keep_fail=check_keep(remove_on_fail, "remove_on_fail"),
            run_slot=self._runner.run_slot,
            detach=lambda w: workers.remove(w) if w in workers else None,
        )
        worker.name = f"memory-{next(self._worker_ids)}"
        worker.connected_at = self.clock.now()
        workers.append(worker)
        return worker

    async def list_workers(self, queue: str) -> list[WorkerInfo]:
        """The started, unclosed workers of ``queue``, oldest first."""
        state = self._open(queue)
        now = self.clock.now()
        return [
            WorkerInfo(
                name=worker.name,
                age=max(0.0, now - worker.connected_at),
                idle=max(0.0, now - (worker.last_fetch_at or worker.connected_at)),
            )
            for worker in self._workers.get(state.name, ())
            if worker.started and not worker.closing
        ]

    # -- reading -----------------------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if unknown (or removed by retention)."""
        return control.get_job(self._open(queue), job_id)

    async def counts(self, queue: str) -> QueueCounts:
        """Jobs per state; waiting jobs of a paused queue count as ``paused``."""
        return control.counts(self._open(queue))

    # -- control -----------------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        """Pause the queue for every worker."""
        control.set_paused(self._open(queue), True)

    async def resume(self, queue: str) -> None:
        """Resume a paused queue."""
        control.set_paused(self._open(queue), False)

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        return self._open(queue).paused

    async def purge(self, queue: str, *, delayed: bool = True) -> int:
        """Remove waiting (and delayed) jobs, except schedulers' next jobs (as BullMQ does)."""
        return control.purge(self._open(queue), delayed=delayed)

    async def obliterate(self, queue: str, *, force: bool = False) -> None:
        """Remove every job, schedule and setting of the queue.

        Raises:
            ValidationError: jobs are active and ``force`` is False.
        """
        control.obliterate(self._open(queue), force=force)

    async def retry_failed(self, queue: str, *, job_id: str | None = None) -> int:
        """Move failed jobs (or the one ``job_id``) back to waiting with fresh attempts."""
        return control.retry_failed(self._open(queue), job_id=job_id)

    async def set_queue_concurrency(self, queue: str, limit: int | None) -> None:
        """Run at most ``limit`` jobs of ``queue`` at once across all its workers; None
        removes the cap (Q13)."""
        state = self._open(queue)
        control.set_queue_concurrency(state, check_queue_concurrency(limit))

    async def queue_concurrency(self, queue: str) -> int | None:
        """The queue-wide cap, or None (Q13)."""
        return control.queue_concurrency(self._open(queue))

    async def server_info(self) -> ServerInfo:
        """The fake holds jobs in this process's memory and never evicts one (E2)."""
        self._check_open()
        return ServerInfo(backend="in-memory", maxmemory_policy="noeviction", maxmemory=0)

    # -- schedules ---------------------------------------------------------------------------

    async def upsert_schedule(self, queue: str, schedule: Schedule) -> None:
        """Create or replace a job scheduler; an unchanged one is left alone (Q11)."""
        state = self._open(queue)
        stored = control.upsert_schedule(state, schedule)
        if stored is not None:
            self._runner.add_iteration(state, stored, stored.first_at(self.clock.now()))

    async def remove_schedule(self, queue: str, scheduler_id: str) -> bool:
        """Remove a scheduler and its upcoming job; False if there was none."""
        return control.remove_schedule(self._open(queue), scheduler_id)

    async def list_schedules(self, queue: str) -> list[Schedule]:
        """The queue's schedulers, soonest first."""
        return control.list_schedules(self._open(queue))

    async def schedule_next_runs(self, queue: str) -> dict[str, float]:
        """When each scheduler of ``queue`` runs next (virtual clock), by scheduler id."""
        state = self._open(queue)
        return {key: stored.next_at for key, stored in state.schedules.items()}

    # -- events ------------------------------------------------------------------------------

    def events(self, queue: str) -> InMemoryEventStream:
        """Events of ``queue`` emitted from now on (Q8)."""
        state = self._open(queue)
        stream = InMemoryEventStream(
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
            targets = list(self._runner.queues.values())
        else:
            targets = [self._open(queue)]
        with self._runner.outcomes.collecting(
            None if queue is None else targets[0].name
        ) as outcomes:
            await self._drain_until_idle(targets, named=queue is not None)
        return outcomes

    async def _drain_until_idle(self, targets: list[QueueState], *, named: bool) -> None:
        runner, workers = self._runner, self._workers
        while True:
            slots = [
                runner.drain_slot(worker)
                for state in targets
                for worker in list(workers.get(state.name, ()))
                if runner.can_take(worker)
                for _ in range(worker.concurrency - worker.active)
            ]
            if slots:
                results = await asyncio.gather(*slots, return_exceptions=True)
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
            first = targets[0]
            if named and first.has_ready() and not first.paused and not workers.get(first.name):
                raise ConfigurationError(
                    f"queue {first.name!r} has waiting jobs but no worker",
                    fix=f"call queue.consume({first.name!r}, handler) before drain()",
                )
            return

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock: due delayed jobs become waiting, schedules fire."""
        self.clock.advance(seconds)

    # -- inspection --------------------------------------------------------------------------

    @property
    def queues(self) -> list[str]:
        """Names of the queues this fake has seen, sorted."""
        return sorted(self._runner.queues)

    def jobs(self, queue: str | None = None, *, state: JobState | None = None) -> list[JobInfo]:
        """Snapshots of every stored job (of ``queue``, in ``state``), oldest first."""
        states = (
            [self._runner.state(check_queue_name(queue))]
            if queue is not None
            else self._runner.queues.values()
        )
        found = [r.info(paused=s.paused) for s in states for r in s.jobs.values()]
        return [info for info in found if state is None or info.state == state]

    @property
    def events_log(self) -> list[QueueEvent]:
        """Every recent event of every queue, oldest first (see ``events_log_limit``)."""
        return [to_event(row) for row in self._runner.log]

    def reset(self) -> None:
        """Forget every job, schedule, pause and logged event; workers and streams stay."""
        for state in self._runner.queues.values():
            for record in state.jobs.values():
                record.removed = True
            state.clear()
            state.wake()
        self._runner.log.clear()

    async def close(self) -> None:
        """Close every worker (30 s grace each) and end every event stream."""
        if self._closed:
            return
        self._closed = True
        for state in self._runner.queues.values():
            for worker in list(self._workers.get(state.name, ())):
                await worker.close()
            for stream in list(state.streams):
                stream.end()
            for job_id in list(state.finish_waiters):
                state.settle(job_id, ("closed", None))
        self._runner.close()


def _failed(record: JobRecord) -> JobFailedError:
    return JobFailedError(
        record.queue, record.id, record.failed_reason or "failed", record.failure_kind
    )


def _conforms() -> QueuePort:
    return InMemoryQueue()
