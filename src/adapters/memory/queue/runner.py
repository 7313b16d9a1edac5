"""The queue fake's job runner: takes due jobs of every queue, runs attempts, applies retries."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections import deque
from typing import Any, Protocol

from portside.adapters.memory.clock import VirtualClock
from portside.adapters.memory.queue import flows
from portside.adapters.memory.queue.events import EventRow, to_event
from portside.adapters.memory.queue.jobs import InMemoryJob, JobRecord
from portside.adapters.memory.queue.json_values import copy_json, json_value
from portside.adapters.memory.queue.outcomes import OutcomeCollectors
from portside.adapters.memory.queue.schedules import ScheduleState, job_id_for
from portside.adapters.memory.queue.state import QueueState
from portside.ports import (
    AbandonedHandler,
    Classifier,
    FailureKind,
    JobHandler,
    JobStalledError,
    JobTimeoutError,
    PermanentError,
    QueueEventKind,
    RateLimit,
    Retention,
    ValidationError,
    default_classify,
    describe_error,
    retry_after,
)
from portside.ports.queue_types import MAX_STACKTRACES

__all__ = ["MAX_STALLS", "Consumer", "JobRunner"]

MAX_STALLS = 1
"""BullMQ's default ``maxStalledCount``: a job that stalls a second time fails."""


class Consumer(Protocol):
    """What the runner reads and updates on a worker: its queue, handler, limits, counters."""

    state: QueueState
    handler: JobHandler
    concurrency: int
    rate_limit: RateLimit | None
    timeout: float | None
    classify: Classifier | None
    paused: bool
    closing: bool
    on_abandoned: AbandonedHandler | None
    keep_complete: bool | int | Retention
    keep_fail: bool | int | Retention
    active: int
    processed: int
    failed: int
    last_fetch_at: float | None


class JobRunner:
    """The queue fake's stand-in for Redis and workers: every queue's state, and the runs.

    It keeps each named queue's :class:`QueueState`, emits events (into the log and live
    streams) and outcomes (into ``drain()``'s lists), and runs attempts for consumers:
    taking due jobs within their limits, timeouts, retries with backoff, stalls and the
    next iteration of job schedulers. It follows the clock: when time moves, due jobs become
    ready and attempts past their virtual deadline time out.

    Args:
        clock: The clock to read; a fresh :class:`VirtualClock` by default.
        events_log_limit: How many recent events :attr:`log` keeps (None: all).
    """

    def __init__(self, clock: VirtualClock | None, events_log_limit: int | None) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        self.queues: dict[str, QueueState] = {}
        self.log: deque[EventRow] = deque(maxlen=events_log_limit)
        self.outcomes = OutcomeCollectors()
        self._takes = 0
        self._unsubscribe = self.clock.on_advance(self._on_time)

    def state(self, name: str) -> QueueState:
        """The state of queue ``name`` (created empty on first use)."""
        state = self.queues.get(name)
        if state is None:
            state = self.queues[name] = QueueState(name)
        return state

    def close(self) -> None:
        """Stop following the clock."""
        self._unsubscribe()

    def emit(
        self,
        state: QueueState,
        kind: QueueEventKind,
        record: JobRecord,
        attempt: int,
        *,
        progress: Any = None,
        result: Any = None,
        error: str | None = None,
        failure: FailureKind | None = None,
    ) -> None:
        """Log an event of ``record`` and push it to the queue's live streams."""
        row: EventRow = (
            kind,
            state.name,
            record.id,
            record.name,
            attempt,
            self.clock.now(),
            progress,
            result,
            error,
            failure,
        )
        self.log.append(row)
        if state.streams:
            event = to_event(row)
            for stream in state.streams:
                stream.push(event)

    def _on_time(self, now: float) -> None:
        """The clock moved: promote due jobs, expire virtual timeouts, wake waiting workers."""
        for state in self.queues.values():
            state.promote(now)
            for record in list(state.timed):
                if record.deadline <= now and record.timer is not None:
                    # No running loop, or the attempt is already ending: nothing to interrupt.
                    with contextlib.suppress(RuntimeError):
                        record.timer.reschedule(asyncio.get_running_loop().time())
            state.wake()

    # -- scheduled iterations ----------------------------------------------------------------

    def add_iteration(self, state: QueueState, schedule: ScheduleState, at: float) -> None:
        """Add the scheduler's job due at ``at`` (once: its id is made from the time)."""
        job_id = job_id_for(schedule.schedule.scheduler_id, at)
        schedule.next_at, schedule.job_id = at, job_id
        if job_id in state.jobs:
            return
        now = self.clock.now()
        record = JobRecord(
            state.name,
            job_id,
            schedule.schedule.name,
            schedule.data,
            schedule.options,
            now=now,
            order=state.next_order(),
            scheduler_id=schedule.schedule.scheduler_id,
        )
        record.delay = max(at - now, 0.0)
        if at > now:
            record.state = "delayed"
            state.add(record)
            state.push_delayed(record, at)
        else:
            state.add(record)
            state.push_ready(record)
        self.emit(state, "enqueued", record, 0)
        state.wake()

    def _next_iteration(self, state: QueueState, record: JobRecord) -> None:
        schedule = state.schedules.get(record.scheduler_id or "")
        if schedule is not None and schedule.job_id == record.id:
            upcoming = schedule.following(schedule.next_at, self.clock.now())
            self.add_iteration(state, schedule, upcoming)

    # -- taking and running ------------------------------------------------------------------

    def can_take(self, worker: Consumer) -> bool:
        """Whether ``worker`` could start a job now (without consuming the rate limit)."""
        state = worker.state
        if state.paused or worker.paused or worker.closing or worker.active >= worker.concurrency:
            return False
        if state.maxed() or not state.has_ready():
            return False
        limit = worker.rate_limit
        return (
            limit is None
            or self.clock.now() >= state.window_start + limit.per
            or state.window_count < limit.max
        )

    def _take(self, worker: Consumer, task: asyncio.Task[Any] | None) -> JobRecord | None:
        state = worker.state
        if state.paused or worker.paused or worker.closing or worker.active >= worker.concurrency:
            return None
        if state.maxed() or not (state.waiting or state.prioritized):
            return None
        now = self.clock.now()
        limit = worker.rate_limit
        if limit is not None:
            if now >= state.window_start + limit.per:
                state.window_start, state.window_count = now, 0
            if state.window_count >= limit.max:
                return None
            state.window_count += 1
        record = state.pop_ready()
        assert record is not None
        state.move(record, "active")
        state.active.add(record)
        record.processed_at = now
        self._takes += 1
        record.taken = self._takes
        record.task = task
        record.worker = worker
        worker.active += 1
        worker.last_fetch_at = now
        self.emit(state, "active", record, record.attempts_made + 1)
        if record.scheduler_id is not None:
            self._next_iteration(state, record)
        return record

    async def _run(self, worker: Consumer, record: JobRecord) -> None:
        attempt = record.attempts_made + 1
        job = InMemoryJob(record, attempt, self._progress)
        if record.stalled_out is not None:
            await self._abandon(worker, record, job, attempt, record.stalled_out)
            return
        timeout = record.timeout if record.timeout is not None else worker.timeout
        try:
            if record.deferred is not None:
                # A child failed it (``fail_parent``): it fails without running, as in BullMQ.
                self._failed(worker, record, attempt, PermanentError(record.deferred), "permanent")
                return
            if timeout is None:
                result = await worker.handler(job)
            else:
                result = await self._run_timed(worker, record, job, timeout)
        except Exception as exc:
            self._failed(worker, record, attempt, exc)
        except BaseException:
            self._stalled(record, attempt)
            raise
        else:
            self._completed(worker, record, attempt, result)
        finally:
            worker.active -= 1
            state = worker.state
            state.active.discard(record)
            record.task = None
            record.worker = None
            if state.waiters:
                state.wake()

    async def _run_timed(
        self, worker: Consumer, record: JobRecord, job: InMemoryJob, limit: float
    ) -> Any:
        state = worker.state
        scope = asyncio.timeout(limit)
        record.deadline = self.clock.now() + limit
        record.timer = scope
        state.timed.add(record)
        try:
            async with scope:
                return await worker.handler(job)
        except TimeoutError:
            if scope.expired():
                raise JobTimeoutError(
                    f"job {record.id!r} of queue {record.queue!r} ran longer than its "
                    f"{limit:g} s timeout",
                    fix="make the handler finish sooner or raise options.timeout / "
                    "consume(timeout=...)",
                ) from None
            raise
        finally:
            state.timed.discard(record)
            record.timer = None

    def _completed(self, worker: Consumer, record: JobRecord, attempt: int, result: Any) -> None:
        if record.removed:
            return
        if result is not None:
            try:
                result = json_value(result, "result")
            except ValidationError as exc:
                self._failed(worker, record, attempt, exc, "permanent")
                return
        state = worker.state
        now = self.clock.now()
        record.attempts_made = attempt
        record.result = result
        record.finished_at = now
        state.move(record, "completed")
        state.finished["completed"].append(record)
        if record.dedupe_key is not None:
            state.release_dedupe(record)
        worker.processed += 1
        if record.links is not None:
            flows.child_completed(record, result, now, self.state)
        self.emit(state, "completed", record, attempt, result=result)
        self.outcomes.add(record, attempt, "completed", result=result)
        if state.finish_waiters:
            state.settle(record.id, ("completed", copy_json(result)))
        keep = record.keep_complete if record.keep_complete is not False else worker.keep_complete
        if keep is not False:
            state.trim("completed", keep, now)

    def _classify(self, worker: Consumer, error: BaseException) -> tuple[FailureKind, str]:
        reason = describe_error(error)
        if type(error) is JobTimeoutError:
            return "transient", reason
        classify = worker.classify or default_classify
        try:
            kind = classify(error)
        except Exception as bug:
            return "transient", f"{reason} (classify raised {describe_error(bug)})"
        return ("permanent" if kind == "permanent" else "transient"), reason

    def _failed(
        self,
        worker: Consumer,
        record: JobRecord,
        attempt: int,
        error: BaseException,
        kind: FailureKind | None = None,
    ) -> None:
        if record.removed:
            return
        state = worker.state
        now = self.clock.now()
        decided, reason = self._classify(worker, error)
        kind = kind or decided
        record.attempts_made = attempt
        record.failed_reason = reason
        record.failure_kind = kind
        trace = "".join(traceback.format_exception(error))
        record.stacktrace = [*record.stacktrace, trace][-MAX_STACKTRACES:]
        worker.processed += 1
        worker.failed += 1
        if kind == "permanent" or attempt >= record.max_attempts:
            self._finish_failed(worker, record, attempt, reason, kind, now)
            return
        self.emit(state, "retrying", record, attempt, error=reason, failure=kind)
        self.outcomes.add(record, attempt, "retrying", error=reason, failure=kind)
        asked = retry_after(error)  # Q17: the failure's own wait replaces the backoff
        if asked is not None:
            delay = asked
        else:
            delay = record.backoff.delay_for(attempt) if record.backoff is not None else 0.0
        if delay > 0:
            state.push_delayed(record, now + delay)
        else:
            state.push_ready(record)

    def _finish_failed(
        self,
        worker: Consumer,
        record: JobRecord,
        attempt: int,
        reason: str,
        kind: FailureKind,
        now: float,
    ) -> None:
        state = worker.state
        record.finished_at = now
        record.deferred = None
        state.move(record, "failed")
        state.finished["failed"].append(record)
        state.release_dedupe(record)
        if record.links is not None:
            flows.child_failed(record, reason, now, self.state)
        self.emit(state, "failed", record, attempt, error=reason, failure=kind)
        self.outcomes.add(record, attempt, "failed", error=reason, failure=kind)
        if state.finish_waiters:
            state.settle(record.id, ("failed", record))
        keep = record.keep_fail if record.keep_fail is not False else worker.keep_fail
        if keep is not False:
            state.trim("failed", keep, now)

    def _stalled(self, record: JobRecord, attempt: int) -> None:
        """An attempt was interrupted (worker closed or cancelled): like a real stalled job."""
        if record.removed or record.state != "active":
            return
        state = self.state(record.queue)
        record.stalls += 1
        self.emit(state, "stalled", record, attempt)
        if record.stalls > MAX_STALLS:
            # As BullMQ does: the next worker to take it fails it without an attempt.
            record.stalled_out = "job stalled more than allowable limit"
        state.push_ready(record, front=True)

    async def _abandon(
        self, worker: Consumer, record: JobRecord, job: InMemoryJob, attempt: int, reason: str
    ) -> None:
        """Fail a job that stalled too often without running it; tell ``on_abandoned``."""
        try:
            if worker.on_abandoned is not None:
                with contextlib.suppress(Exception):  # it changes nothing, as on BullMQ
                    await worker.on_abandoned(job, JobStalledError(reason))
        finally:
            worker.active -= 1
            state = worker.state
            state.active.discard(record)
            record.task = None
            record.worker = None
        record.failed_reason, record.failure_kind = reason, "transient"
        self._finish_failed(worker, record, attempt, reason, "transient", self.clock.now())
        if state.waiters:
            state.wake()

    def _progress(self, record: JobRecord, attempt: int, progress: object) -> None:
        if isinstance(progress, bool) or not isinstance(progress, (int, float, dict)):
            raise ValidationError(
                f"progress must be a number or a dict, got {type(progress).__name__}",
                fix="report a percentage such as 50 or a dict such as {'done': 3, 'total': 10}",
                field="progress",
            )
        value = json_value(progress, "progress")
        if record.removed or record.state != "active" or record.attempts_made + 1 != attempt:
            return  # the attempt already ended (timed out or cancelled); a late report is dropped
        record.progress = value
        self.emit(self.state(record.queue), "progress", record, attempt, progress=value)

    # -- slots -------------------------------------------------------------------------------

    async def run_slot(self, worker: Consumer) -> None:
        """One of a started worker's ``concurrency`` slots: take, run, repeat; wait when idle."""
        state = worker.state
        task = asyncio.current_task()
        while not worker.closing:
            record = self._take(worker, task)
            if record is None:
                await state.changed()
                continue
            await self._run(worker, record)
            await asyncio.sleep(0)  # yield between jobs, as a real worker's I/O would

    async def drain_slot(self, worker: Consumer) -> None:
        """One of ``worker``'s free slots during ``drain()``: take and run until none is due."""
        task = asyncio.current_task()
        while True:
            record = self._take(worker, task)
            if record is None:
                return
            await self._run(worker, record)
