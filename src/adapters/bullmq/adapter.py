"""``BullMQQueue``: portside's QueuePort on Redis with BullMQ's data layout."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from portside.adapters.bullmq import control
from portside.adapters.bullmq.config import Tuning, check_redis_url, parse_tuning
from portside.adapters.bullmq.connections import Connector, abort_pool
from portside.adapters.bullmq.errors import translate_errors
from portside.adapters.bullmq.events import BullMQEventStream, start_id
from portside.adapters.bullmq.inputs import (
    check_callable,
    check_concurrency,
    check_id,
    check_seconds,
    coerce_rate_limit,
)
from portside.adapters.bullmq.jobs import BullJob
from portside.adapters.bullmq.link import BlockingConnection
from portside.adapters.bullmq.names import QueueName, check_prefix, map_queue
from portside.adapters.bullmq.options import ms
from portside.adapters.bullmq.producer import prepare, prepare_bulk, submit_many, submit_one
from portside.adapters.bullmq.schedules import Schedules
from portside.adapters.bullmq.scripts import run_script, script
from portside.adapters.bullmq.worker import BullMQWorker
from portside.ports import (
    Classifier,
    ConfigurationError,
    EventStream,
    JobHandler,
    JobInfo,
    JobOptions,
    JobOutcome,
    JobRef,
    NewJob,
    QueueCounts,
    QueuePort,
    RateLimit,
    Schedule,
    ValidationError,
    WorkerHandle,
    default_classify,
)

__all__ = ["BullMQQueue"]

log = logging.getLogger("portside.adapters.bullmq")

_CANCEL_WAIT = 1.0
"""How long ``close()`` waits for its own tasks to end once they were cancelled."""


def _refuse_obliterate(target: QueueName, active: int | None) -> ValidationError:
    count = f"{active} active job(s)" if active else "active jobs"
    return ValidationError(
        f"queue {target.portside!r} has {count}",
        fix="wait for them to finish (drain the queue or close its workers) or pass force=True",
        field="force",
    )


class BullMQQueue:
    """QueuePort on Redis, wire-compatible with Node BullMQ 5.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        prefix: BullMQ key prefix (``bull`` like BullMQ). Namespaced queue names extend it:
            queue ``agents-run:orchestrator`` is BullMQ queue ``orchestrator`` under prefix
            ``<prefix>:agents-run``.
        **tuning: See ``portside.adapters.bullmq.config.Tuning`` (lock_duration,
            stalled_interval, block_timeout, retries, close_grace, ...).

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
        self._connector = Connector(check_redis_url(redis_url), parse_tuning(tuning))
        self._prefix = check_prefix(prefix)
        self._client = self._connector.client()
        self._schedules = Schedules(self._client)
        self._queues: dict[str, QueueName] = {}
        self._workers: dict[str, list[BullMQWorker]] = {}
        self._streams: dict[BullMQEventStream, BlockingConnection] = {}
        self._positions: set[asyncio.Task[None]] = set()
        self._closed = False
        self._close_done = asyncio.Event()

    @property
    def prefix(self) -> str:
        """The adapter's key prefix."""
        return self._prefix

    @property
    def tuning(self) -> Tuning:
        """The effective tuning."""
        return self._connector.tuning

    def bullmq_name(self, queue: str) -> QueueName:
        """Where ``queue`` lives in BullMQ terms (prefix, name, keys)."""
        return self._queue(queue)

    def _queue(self, queue: object) -> QueueName:
        if self._closed:
            raise ConfigurationError(
                "this BullMQQueue is closed", fix="create a new adapter after close()"
            )
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
    ) -> WorkerHandle:
        """Create a (not yet started) worker running ``handler`` for each job of ``queue``."""
        target = self._queue(queue)
        check_callable(handler, "handler")
        concurrency = check_concurrency(concurrency)
        rate_limit = coerce_rate_limit(rate_limit)
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", positive=True)
        if classify is not None:
            check_callable(classify, "classify")
        limiter = None
        if rate_limit is not None:
            limiter = {"max": rate_limit.max, "duration": max(1, ms(rate_limit.per))}

        async def on_repeat(job: BullJob) -> None:
            await self._schedules.next_iteration(target, job)

        worker = BullMQWorker(
            queue=target,
            connector=self._connector,
            handler=handler,
            concurrency=concurrency,
            limiter=limiter,
            timeout=float(timeout) if timeout is not None else None,
            classify=classify or default_classify,
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
        job_id = check_id(job_id, "job_id")
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
        lua = script("obliterate")
        await self._settle()
        async with translate_errors(self._connector.safe_url, "obliterate"):
            active = await self._client.llen(target.key("active"))
            if active and not force:
                raise _refuse_obliterate(target, active)
            await control.set_paused(self._client, target, True)
            while True:
                cursor = await run_script(
                    self._client,
                    lua,
                    (target.key("meta"), target.base),
                    (1000, "force" if force else ""),
                )
                if cursor == -2:
                    raise _refuse_obliterate(target, None)
                if cursor in (0, None):
                    break
            await self._client.delete(target.key("limiter"))

    async def retry_failed(self, queue: str, *, job_id: str | None = None) -> int:
        """Move failed jobs (or one) back to waiting with fresh attempts; returns how many."""
        target = self._queue(queue)
        if job_id is not None:
            job_id = check_id(job_id, "job_id")
        await self._settle()
        async with translate_errors(self._connector.safe_url, "retry_failed"):
            return await control.retry_failed(self._client, target, job_id)

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
        scheduler_id = check_id(scheduler_id, "scheduler_id")
        await self._settle()
        async with translate_errors(self._connector.safe_url, "remove_schedule"):
            return await self._schedules.remove(target, scheduler_id)

    async def list_schedules(self, queue: str) -> list[Schedule]:
        """The job schedulers of a queue."""
        target = self._queue(queue)
        async with translate_errors(self._connector.safe_url, "list_schedules"):
            return await self._schedules.list(target)

    # -- events ----------------------------------------------------------------------------

    def events(self, queue: str) -> EventStream:
        """Lifecycle events of ``queue`` emitted after this call returns (Q8)."""
        target = self._queue(queue)
        tuning = self._connector.tuning
        now_ms = int(time.time() * 1000)  # fallback position only (see fix_position)
        connection = BlockingConnection(self._connector.pool(target.client_name(":events")))
        stream = BullMQEventStream(
            target,
            connection,
            start_id(now_ms),
            block=tuning.event_block,
            retry_backoff=tuning.retry_backoff,
            max_backoff=tuning.max_backoff,
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
        lua = script("advance")
        shift = ms(seconds)
        await self._settle()
        async with translate_errors(self._connector.safe_url, "advance"):
            for target in list(self._queues.values()):
                k = target.key
                keys = tuple(
                    k(x)
                    for x in (
                        "delayed",
                        "wait",
                        "prioritized",
                        "pc",
                        "marker",
                        "meta",
                        "events",
                        "limiter",
                    )
                )
                now = int(time.time() * 1000)
                args = (target.base, shift, now, self._connector.tuning.max_events)
                await run_script(self._client, lua, keys, args)
        for workers in list(self._workers.values()):
            for worker in list(workers):
                if worker.started:
                    await worker.engine.clock_moved()

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
        tuning = self._connector.tuning
        loop = asyncio.get_running_loop()
        deadline = loop.time() + tuning.close_grace + tuning.close_timeout
        workers = [worker for group in self._workers.values() for worker in group]
        streams = dict(self._streams)
        self._workers.clear()
        self._streams.clear()
        for position in list(self._positions):
            position.cancel()
        parts: dict[asyncio.Task[None], str] = {}
        client: dict[asyncio.Task[None], str] = {}

        def abort_all() -> None:
            for worker in workers:
                worker.abort()
            for connection in streams.values():
                connection.abort()

        try:
            for worker in workers:
                task = asyncio.create_task(worker.close(tuning.close_grace))
                parts[task] = f"worker of {worker.queue.portside!r}"
            for stream in streams:
                parts[asyncio.create_task(stream.aclose())] = "event stream"
            pending = await self._await_parts(parts, deadline - loop.time())
            if pending:
                abort_all()
                await self._cancel_parts(pending, parts)
            client[asyncio.create_task(self._client.aclose())] = "Redis client"
            pending = await self._await_parts(client, max(deadline - loop.time(), _CANCEL_WAIT))
            if pending:
                abort_pool(self._client.connection_pool)
                await self._cancel_parts(pending, client)
            if self._positions:
                await asyncio.wait(list(self._positions), timeout=_CANCEL_WAIT)
        except BaseException:
            # close() itself was cancelled (an outer timeout): leave nothing running.
            abort_all()
            abort_pool(self._client.connection_pool)
            for task in (*parts, *client):
                task.cancel()
            raise

    async def _await_parts(
        self, parts: dict[asyncio.Task[None], str], timeout: float
    ) -> set[asyncio.Task[None]]:
        """Wait up to ``timeout`` for ``parts``; log what failed or did not finish."""
        if not parts:
            return set()
        done, pending = await asyncio.wait(parts, timeout=max(timeout, 0.0))
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("closing the %s failed: %r", parts[task], task.exception())
        if pending:
            tuning = self._connector.tuning
            log.warning(
                "BullMQQueue.close(): %s did not finish within close_grace + close_timeout "
                "(%gs + %gs) on %s; aborting their connections (jobs left locked are requeued "
                "by the stalled check of another worker)",
                ", ".join(sorted(parts[task] for task in pending)),
                tuning.close_grace,
                tuning.close_timeout,
                self._connector.safe_url,
            )
        return pending

    @staticmethod
    async def _cancel_parts(
        pending: set[asyncio.Task[None]], parts: dict[asyncio.Task[None], str]
    ) -> None:
        """Cancel what is left once the sockets are aborted, and wait briefly for it."""
        for task in pending:
            task.cancel()
        ended, left = await asyncio.wait(pending, timeout=_CANCEL_WAIT)
        for task in ended:
            if not task.cancelled():
                task.exception()  # retrieved: the sockets were aborted under it
        if left:
            log.warning(
                "BullMQQueue.close(): %s still running after cancellation (a handler that "
                "ignores cancellation?)",
                ", ".join(sorted(parts[task] for task in left)),
            )

    async def __aenter__(self) -> BullMQQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _conforms(adapter: BullMQQueue, worker: BullMQWorker) -> tuple[QueuePort, WorkerHandle]:
    """mypy checks here that the adapter and its workers satisfy the ports."""
    return adapter, worker
