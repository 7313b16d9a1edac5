"""``BullMQQueue``: portside's QueuePort on Redis with BullMQ's data layout."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from portside.adapters.bullmq import control, flows, manage
from portside.adapters.bullmq.closing import close_within_bound
from portside.adapters.bullmq.events import BullMQEventStream, start_id
from portside.adapters.bullmq.jobs import BullMQJob, keep_jobs
from portside.adapters.bullmq.names import QueueName, check_prefix, map_queue
from portside.adapters.bullmq.options import ms, worker_keep
from portside.adapters.bullmq.producer import prepare, prepare_bulk, submit_many, submit_one
from portside.adapters.bullmq.schedules import Schedules
from portside.adapters.bullmq.server_info import server_info as read_server_info
from portside.adapters.bullmq.settings import BullMQSettings, check_redis_url, parse_settings
from portside.adapters.bullmq.transport.blocking import BlockingConnection
from portside.adapters.bullmq.transport.connector import RedisConnector
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS, translate_errors
from portside.adapters.bullmq.transport.scripts import check_bullmq_scripts
from portside.adapters.bullmq.waiting import FinishWatch
from portside.adapters.bullmq.worker.handle import BullMQWorker
from portside.adapters.bullmq.workers import list_workers
from portside.ports import (
    AbandonedHandler,
    Classifier,
    ConfigurationError,
    EventStream,
    FlowJob,
    FlowRef,
    FlowTree,
    JobHandler,
    JobInfo,
    JobLogs,
    JobOptions,
    JobOutcome,
    JobPage,
    JobRef,
    JobState,
    NewJob,
    QueueCounts,
    QueuePort,
    RateLimit,
    Retention,
    Schedule,
    ServerInfo,
    ValidationError,
    WorkerHandle,
    WorkerInfo,
    default_classify,
)
from portside.ports.inputs import (
    MAX_PAGE,
    check_callable,
    check_clean_state,
    check_concurrency,
    check_count,
    check_delay,
    check_flow,
    check_keep,
    check_lookup_id,
    check_queue_concurrency,
    check_seconds,
    check_states,
    coerce_rate_limit,
)
from portside.ports.queue_types import MAX_SECONDS
from portside.ports.validation import encode_payload

__all__ = ["BullMQQueue"]


class BullMQQueue:
    """QueuePort on Redis, wire-compatible with Node BullMQ 5.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        prefix: BullMQ key prefix (``bull`` like BullMQ). Namespaced queue names extend it:
            queue ``agents-run:orchestrator`` is BullMQ queue ``orchestrator`` under prefix
            ``<prefix>:agents-run``.
        **tuning: Knobs validated into ``BullMQSettings`` (lock_duration,
            stalled_interval, block_timeout, retries, close_grace, ...).

    Raises:
        ConfigurationError: ``redis_url`` or ``prefix`` is invalid, a tuning keyword is
            unknown or out of range (the error names it), or the installed ``bullmq``
            package is a release whose Lua scripts the adapter was not written for.

    Beyond the port: ``drain(queue)`` runs due jobs with the registered handlers until none is
    due, and ``advance(seconds)`` moves delayed jobs and rate-limit windows forward in time;
    both exist for tests.

    ``close()`` is bounded: it closes every worker with ``close_grace`` (stop fetching, let
    in-flight jobs finish for the grace, release the rest to waiting) and gives releasing,
    event streams and disconnecting ``close_timeout`` more seconds. When Redis does not
    answer in time (hung or stopped server, or handlers that ignore cancellation), it logs a
    warning naming what did not finish, aborts the sockets and returns without raising;
    jobs left locked are requeued by the stalled check of another worker once their lock
    expires. A second ``close()`` does nothing.
    """

    def __init__(self, redis_url: str, *, prefix: str = "bull", **tuning: Any) -> None:
        check_bullmq_scripts()
        self._prefix = check_prefix(prefix)
        self._connector = RedisConnector(
            check_redis_url(redis_url), parse_settings(tuning), prefix=self._prefix
        )
        self._client = self._connector.client()
        self._schedules = Schedules(self._client)
        self._queues: dict[str, QueueName] = {}
        self._workers: dict[str, list[BullMQWorker]] = {}
        self._streams: dict[BullMQEventStream, BlockingConnection] = {}
        self._positions: set[asyncio.Task[None]] = set()
        self._watches: dict[str, FinishWatch] = {}
        self._closed = False
        self._close_done = asyncio.Event()

    @property
    def prefix(self) -> str:
        """The adapter's key prefix."""
        return self._prefix

    @property
    def settings(self) -> BullMQSettings:
        """The effective settings (from the ``**tuning`` keywords and the defaults)."""
        return self._connector.settings

    @property
    def tuning(self) -> BullMQSettings:
        """Deprecated alias of ``settings``; the alias goes in 0.3."""
        warnings.warn(
            "BullMQQueue.tuning is deprecated, use BullMQQueue.settings; the alias goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._connector.settings

    def bullmq_name(self, queue: str) -> QueueName:
        """Where ``queue`` lives in BullMQ terms (prefix, name, keys)."""
        return self._queue(queue)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(
                "this BullMQQueue is closed", fix="create a new adapter after close()"
            )

    def _queue(self, queue: object) -> QueueName:
        self._check_open()
        if isinstance(queue, str):
            found = self._queues.get(queue)
            if found is not None:
                return found
        name = map_queue(queue, self._prefix)  # validates
        self._queues[name.portside] = name
        return name

    # -- producing -------------------------------------------------------------------------

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        options: JobOptions | None = None,
    ) -> JobRef:
        """Add a job; the same ``options.job_id`` twice yields one job (Q1)."""
        target = self._queue(queue)
        prepared = prepare(target, name, data, options)
        if self._positions:
            await self._settle()
        async with translate_errors(self._connector.safe_url, f"enqueue on {target.portside!r}"):
            return await submit_one(self._client, prepared)

    async def enqueue_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[JobRef]:
        """Add many jobs in one MULTI/EXEC round trip; all are validated first."""
        target = self._queue(queue)
        prepared = prepare_bulk(target, jobs)
        if self._positions:
            await self._settle()
        if not prepared:
            return []
        async with translate_errors(self._connector.safe_url, f"enqueue on {target.portside!r}"):
            return await submit_many(self._client, prepared)

    # -- consuming -------------------------------------------------------------------------

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
        """Create a (not yet started) worker running ``handler`` for each job of ``queue``;
        ``on_abandoned`` hears of jobs that stalled too often (see ``QueuePort.consume``)."""
        target = self._queue(queue)
        check_callable(handler, "handler")
        concurrency = check_concurrency(concurrency)
        rate_limit = coerce_rate_limit(rate_limit)
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", positive=True)
        if classify is not None:
            check_callable(classify, "classify")
        if on_abandoned is not None:
            check_callable(on_abandoned, "on_abandoned")
        keep_completed = keep_jobs(
            worker_keep(check_keep(remove_on_complete, "remove_on_complete"))
        )
        keep_failed = keep_jobs(worker_keep(check_keep(remove_on_fail, "remove_on_fail")))
        limiter = None
        if rate_limit is not None:
            limiter = {"max": rate_limit.max, "duration": max(1, ms(rate_limit.per))}

        async def on_repeat(job: BullMQJob) -> None:
            await self._schedules.next_iteration(target, job)

        worker = BullMQWorker(
            queue=target,
            connector=self._connector,
            handler=handler,
            concurrency=concurrency,
            limiter=limiter,
            timeout=float(timeout) if timeout is not None else None,
            classify=classify or default_classify,
            on_abandoned=on_abandoned,
            keep_completed=keep_completed,
            keep_failed=keep_failed,
            on_repeat=on_repeat,
            on_close=self._forget_worker,
            settle=self._settle,
        )
        self._workers.setdefault(target.portside, []).append(worker)
        return worker

    def _forget_worker(self, worker: BullMQWorker) -> None:
        workers = self._workers.get(worker.queue.portside, [])
        if worker in workers:
            workers.remove(worker)

    # -- inspection and control ------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The job's state, progress, result and failure, or None if unknown."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id, "job_id")
        async with translate_errors(self._connector.safe_url, "get_job"):
            return await control.get_job(self._client, target, job_id)

    async def counts(self, queue: str) -> QueueCounts:
        """Jobs per state (waiting jobs of a paused queue count as ``paused``)."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "counts"):
            return await control.counts(self._client, target)

    async def pause(self, queue: str) -> None:
        """Pause the queue for every worker, Node ones included."""
        target = self._queue(queue)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "pause"):
            await control.set_paused(self._client, target, True)

    async def resume(self, queue: str) -> None:
        """Resume a paused queue."""
        target = self._queue(queue)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "resume"):
            await control.set_paused(self._client, target, False)

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "is_paused"):
            return await control.is_paused(self._client, target)

    async def purge(self, queue: str, *, delayed: bool = True) -> int:
        """Remove waiting (and, by default, delayed) jobs: BullMQ ``Queue.drain``."""
        target = self._queue(queue)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "purge"):
            return await control.purge(self._client, target, delayed=delayed)

    async def obliterate(self, queue: str, *, force: bool = False) -> None:
        """Remove the queue and all its data; refuses with active jobs unless ``force``."""
        target = self._queue(queue)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "obliterate"):
            await control.obliterate(self._client, target, force=force)

    async def retry_failed(self, queue: str, *, job_id: str | None = None) -> int:
        """Move failed jobs (or one) back to waiting with fresh attempts; returns how many."""
        target = self._queue(queue)
        if job_id is not None:
            job_id = check_lookup_id(job_id, "job_id")
        await self._settle()
        async with translate_errors(self._connector.safe_url, "retry_failed"):
            return await control.retry_failed(self._client, target, job_id)

    async def set_queue_concurrency(self, queue: str, limit: int | None) -> None:
        """Run at most ``limit`` jobs of ``queue`` at once across every worker, Node ones
        included (BullMQ's global concurrency); None removes the cap (Q13)."""
        target = self._queue(queue)
        limit = check_queue_concurrency(limit)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "set_queue_concurrency"):
            await control.set_queue_concurrency(self._client, target, limit)

    async def queue_concurrency(self, queue: str) -> int | None:
        """The queue-wide cap (BullMQ's global concurrency), or None (Q13)."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "queue_concurrency"):
            return await control.queue_concurrency(self._client, target)

    async def server_info(self) -> ServerInfo:
        """The Redis server's memory policy and use (E2); a refused ``INFO`` or ``CONFIG``
        leaves values None and says so in ``unreadable``."""
        self._check_open()
        async with translate_errors(self._connector.safe_url, "server_info"):
            return await read_server_info(self._client)

    # -- flows, results and logs -----------------------------------------------------------

    async def add_flow(self, flow: FlowJob) -> FlowRef:
        """Add a tree of parent and child jobs in one MULTI/EXEC, laid out as Node BullMQ's
        FlowProducer lays it out."""
        self._queue("checked")  # refuses a closed adapter before checking the flow
        nodes = check_flow(flow)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "add_flow"):
            return await flows.add_flow(self._client, nodes, self._queue)

    async def get_flow(
        self, queue: str, job_id: str, *, depth: int = 10, max_children: int = 100
    ) -> FlowTree | None:
        """A job and its children, ``depth`` levels deep, or None if the job is unknown."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        depth = check_count(depth, "depth", minimum=1)
        max_children = check_count(max_children, "max_children", minimum=1)
        async with translate_errors(self._connector.safe_url, "get_flow"):
            return await flows.get_flow(self._client, target, job_id, depth, max_children)

    async def wait_until_finished(self, queue: str, job_id: str, timeout: float) -> Any:  # noqa: ASYNC109
        """The job's result once it completed (at once if it already has), from the queue's
        events stream.

        Raises:
            JobNotFoundError: no such job, or it was removed while waited for.
            JobFailedError: the job failed for good.
            WaitTimeoutError: ``timeout`` seconds passed first.
        """
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        limit = min(check_seconds(timeout, "timeout", positive=True), MAX_SECONDS)
        watch = self._watches.get(target.portside)
        if watch is None:
            pool = self._connector.pool(target.client_name(":events"))
            watch = FinishWatch(
                target, self._client, lambda: BlockingConnection(pool), self.settings
            )
            self._watches[target.portside] = watch
        await self._settle()
        async with translate_errors(self._connector.safe_url, "wait_until_finished"):
            return await watch.wait(job_id, limit)

    async def get_logs(
        self,
        queue: str,
        job_id: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        ascending: bool = True,
    ) -> JobLogs:
        """A job's log lines (BullMQ ``getJobLogs``), oldest first unless ``ascending`` is
        False."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        offset = check_count(offset, "offset")
        if limit is not None:
            limit = check_count(limit, "limit", minimum=1)
        async with translate_errors(self._connector.safe_url, "get_logs"):
            return await manage.get_logs(
                self._client, target, job_id, offset, limit, bool(ascending)
            )

    # -- managing single jobs --------------------------------------------------------------

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
        target = self._queue(queue)
        kinds = check_states(states)
        offset = check_count(offset, "offset")
        limit = check_count(limit, "limit", minimum=1, maximum=MAX_PAGE)
        async with translate_errors(self._connector.safe_url, "list_jobs"):
            return await manage.list_jobs(
                self._client, target, kinds, offset, limit, bool(ascending)
            )

    async def remove_job(self, queue: str, job_id: str, *, force: bool = False) -> None:
        """Remove a job and its children (BullMQ ``removeJob``); refuses an active job
        unless ``force``."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "remove_job"):
            await manage.remove_job(self._client, target, job_id, force=bool(force))

    async def promote_job(self, queue: str, job_id: str) -> None:
        """Make a delayed job waiting now (BullMQ ``promote``)."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "promote_job"):
            await manage.promote_job(self._client, target, job_id)

    async def change_delay(self, queue: str, job_id: str, delay: float) -> None:
        """Make a delayed job due ``delay`` seconds from now (BullMQ ``changeDelay``)."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        delay_ms = ms(check_delay(delay))
        await self._settle()
        async with translate_errors(self._connector.safe_url, "change_delay"):
            await manage.change_delay(self._client, target, job_id, delay_ms)

    async def update_data(
        self, queue: str, job_id: str, data: Mapping[str, Any] | BaseModel
    ) -> None:
        """Replace a job's payload (BullMQ ``updateData``); later attempts read it."""
        target = self._queue(queue)
        job_id = check_lookup_id(job_id)
        payload = encode_payload(data, "data")
        async with translate_errors(self._connector.safe_url, "update_data"):
            await manage.update_data(self._client, target, job_id, payload)

    async def clean(
        self,
        queue: str,
        grace: float,
        *,
        state: Literal["completed", "failed"] = "completed",
        limit: int | None = None,
    ) -> list[str]:
        """Remove ``state`` jobs finished over ``grace`` seconds ago, oldest first, at most
        ``limit`` (BullMQ ``clean``); returns their ids."""
        target = self._queue(queue)
        grace_ms = ms(check_seconds(grace, "grace"))
        kind = check_clean_state(state)
        if limit is not None:
            limit = check_count(limit, "limit", minimum=1)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "clean"):
            return await manage.clean(self._client, target, kind, grace_ms, limit)

    # -- schedules -------------------------------------------------------------------------

    async def upsert_schedule(self, queue: str, schedule: Schedule) -> None:
        """Create or update a BullMQ job scheduler; idempotent (Q11)."""
        target = self._queue(queue)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "upsert_schedule"):
            await self._schedules.upsert(target, schedule)

    async def remove_schedule(self, queue: str, scheduler_id: str) -> bool:
        """Remove a job scheduler; False if it did not exist."""
        target = self._queue(queue)
        scheduler_id = check_lookup_id(scheduler_id, "scheduler_id")
        await self._settle()
        async with translate_errors(self._connector.safe_url, "remove_schedule"):
            return await self._schedules.remove(target, scheduler_id)

    async def list_schedules(self, queue: str) -> list[Schedule]:
        """The job schedulers of a queue."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "list_schedules"):
            return await self._schedules.list(target)

    async def schedule_next_runs(self, queue: str) -> dict[str, float]:
        """When each job scheduler of ``queue`` runs next (the scores of its ``repeat`` set)."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "schedule_next_runs"):
            pairs: list[Any] = await self._client.zrange(
                target.key("repeat"), 0, -1, withscores=True
            )
        return {str(key): float(score) / 1000 for key, score in pairs}

    async def list_workers(self, queue: str) -> list[WorkerInfo]:
        """The workers connected to ``queue`` (BullMQ's connection names in ``CLIENT LIST``)."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "list_workers"):
            return await list_workers(self._client, target)

    # -- events ----------------------------------------------------------------------------

    def events(self, queue: str) -> EventStream:
        """Lifecycle events of ``queue`` emitted after this call returns (Q8)."""
        target = self._queue(queue)
        settings = self._connector.settings
        now_ms = int(time.time() * 1000)  # fallback position only (see fix_position)
        connection = BlockingConnection(self._connector.pool(target.client_name(":events")))
        stream = BullMQEventStream(
            target,
            connection,
            start_id(now_ms),
            block=settings.event_block,
            retry_backoff=settings.retry_backoff,
            max_backoff=settings.max_backoff,
            safe_url=self._connector.safe_url,
        )
        self._streams[stream] = connection
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return stream  # no loop: the clock-based position stays
        task = stream.fix_position(self._client)
        self._positions.add(task)
        task.add_done_callback(self._positions.discard)
        return stream

    async def _settle(self) -> None:
        """Let event streams opened before this command fix their position first."""
        if self._positions:
            await asyncio.gather(*list(self._positions), return_exceptions=True)

    # -- test helpers ----------------------------------------------------------------------

    async def drain(self, queue: str) -> list[JobOutcome]:
        """Run due jobs of ``queue`` with the registered handler(s) until nothing is due.

        Started workers keep running and are waited for; unstarted ones run just for this
        call. Returns the outcome of every attempt that ended meanwhile, in order.

        Raises:
            ConfigurationError: jobs are waiting but no handler was registered.
        """
        target = self._queue(queue)
        workers = list(self._workers.get(target.portside, ()))
        if not workers:
            counts = await self.counts(queue)
            if counts.waiting and not await self.is_paused(queue):
                raise ConfigurationError(
                    f"queue {target.portside!r} has {counts.waiting} waiting jobs but no handler",
                    fix="register one with consume(queue, handler) before drain()",
                    field="queue",
                )
            return []
        outcomes: list[JobOutcome] = []
        await self._settle()
        async with translate_errors(self._connector.safe_url, "drain"):
            await asyncio.gather(*(worker.drain(outcomes.append) for worker in workers))
        return outcomes

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for delayed jobs, retry backoffs, rate limits and dedupe TTLs
        of every queue this adapter has used (shifts their Redis timestamps; no sleeping)."""
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not (math.isfinite(seconds) and seconds >= 0)
        ):
            raise ValidationError(
                f"seconds must be a finite number >= 0, got {seconds!r}",
                fix="pass for example advance(5.0)",
                field="seconds",
            )
        shift = ms(seconds)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "advance"):
            targets = list(self._queues.values())
            await control.advance(self._client, targets, shift, self._connector.settings.max_events)
        for workers in list(self._workers.values()):
            for worker in list(workers):
                if worker.started:
                    await worker.slots.clock_moved()

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every worker, event stream and connection this adapter owns, within
        ``close_grace + close_timeout`` seconds (see the class docstring); never raises for
        an unreachable Redis. A call while another is closing waits for that one."""
        if self._closed:
            await self._close_done.wait()
            return
        self._closed = True
        try:
            await self._close_within_bound()
        finally:
            self._close_done.set()

    async def _close_within_bound(self) -> None:
        workers = [worker for group in self._workers.values() for worker in group]
        streams = dict(self._streams)
        watches = list(self._watches.values())
        self._workers.clear()
        self._streams.clear()
        self._watches.clear()
        await _close_watches(watches, self._connector.settings.close_timeout)
        for position in list(self._positions):
            position.cancel()
        await close_within_bound(
            workers=workers,
            streams=streams,
            positions=self._positions,
            client=self._client,
            settings=self._connector.settings,
            safe_url=self._connector.safe_url,
        )
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self._connector.close()

    async def __aenter__(self) -> BullMQQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _close_watches(watches: list[FinishWatch], bound: float) -> None:
    """End open waits and their readers, aborting the sockets of what hangs."""
    if not watches:
        return
    tasks = [asyncio.ensure_future(watch.close()) for watch in watches]
    _, pending = await asyncio.wait(tasks, timeout=bound)
    if pending:
        for watch in watches:
            watch.abort()
        await asyncio.wait(pending, timeout=1.0)


def _conforms(adapter: BullMQQueue, worker: BullMQWorker) -> tuple[QueuePort, WorkerHandle]:
    """mypy checks here that the adapter and its workers satisfy the ports."""
    return adapter, worker
