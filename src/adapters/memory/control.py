"""Queue control of the in-memory fake: pause, purge, obliterate, retry and job schedulers."""

from __future__ import annotations

import heapq
from collections import deque

from portside.adapters.memory.clock import VirtualClock
from portside.adapters.memory.engine import QueueEngine
from portside.adapters.memory.queue_state import QueueState
from portside.adapters.memory.schedules import ScheduleState
from portside.ports import ConfigurationError, Schedule, ValidationError
from portside.ports.inputs import check_lookup_id, check_schedule
from portside.ports.validation import check_queue_name

__all__ = ["QueueControl"]


class QueueControl(QueueEngine):
    """The management half of ``InMemoryQueue`` (Q9, Q11), on top of the engine."""

    def __init__(self, clock: VirtualClock | None, events_log_limit: int | None) -> None:
        super().__init__(clock, events_log_limit)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(
                "this InMemoryQueue is closed",
                fix="create a new InMemoryQueue (or a new Infra) instead of reusing a closed one",
            )

    def _open(self, queue: object) -> QueueState:
        self._check_open()
        return self._state(check_queue_name(queue))

    # -- control -----------------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        """Pause the queue for every worker."""
        self._open(queue).paused = True

    async def resume(self, queue: str) -> None:
        """Resume a paused queue."""
        state = self._open(queue)
        state.paused = False
        state.wake()

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        return self._open(queue).paused

    async def purge(self, queue: str, *, delayed: bool = True) -> int:
        """Remove waiting (and delayed) jobs, except schedulers' next jobs (as BullMQ does)."""
        state = self._open(queue)
        removed = 0
        ready = [*state.waiting, *(entry[2] for entry in state.prioritized)]
        kept = [record for record in ready if record.scheduler_id is not None]
        for record in ready:
            if record.scheduler_id is None:
                state.remove(record)
                removed += 1
        state.waiting = deque(record for record in kept if record.priority == 0)
        state.prioritized = [(r.priority, r.order, r) for r in kept if r.priority != 0]
        heapq.heapify(state.prioritized)
        if delayed:
            remaining = []
            for entry in state.delayed:
                record = entry[2]
                if record.state != "delayed" or record.removed or record.due_at != entry[0]:
                    continue
                if record.scheduler_id is None:
                    state.remove(record)
                    removed += 1
                else:
                    remaining.append(entry)
            heapq.heapify(remaining)
            state.delayed = remaining
        return removed

    async def obliterate(self, queue: str, *, force: bool = False) -> None:
        """Remove every job, schedule and setting of the queue.

        Raises:
            ValidationError: jobs are active and ``force`` is False.
        """
        state = self._open(queue)
        if state.active and not force:
            raise ValidationError(
                f"queue {state.name!r} has {len(state.active)} active job(s)",
                fix="wait for them to finish (drain the queue or close its workers) or pass "
                "force=True",
                field="force",
            )
        for record in state.jobs.values():
            record.removed = True
        state.clear()
        state.wake()

    async def retry_failed(self, queue: str, *, job_id: str | None = None) -> int:
        """Move failed jobs (or the one ``job_id``) back to waiting with fresh attempts."""
        state = self._open(queue)
        if job_id is None:
            chosen = [r for r in state.finished["failed"] if r.state == "failed" and not r.removed]
        else:
            record = state.jobs.get(check_lookup_id(job_id))
            chosen = [record] if record is not None and record.state == "failed" else []
        for record in dict.fromkeys(chosen):
            record.attempts_made = record.stalls = 0
            record.failed_reason = record.failure_kind = None
            record.processed_at = record.finished_at = None
            state.push_ready(record)
        state.finished["failed"] = deque(r for r in state.finished["failed"] if r.state == "failed")
        state.wake()
        return len(dict.fromkeys(chosen))

    # -- schedules ---------------------------------------------------------------------------

    async def upsert_schedule(self, queue: str, schedule: Schedule) -> None:
        """Create or replace a job scheduler; an unchanged one is left alone (Q11)."""
        state = self._open(queue)
        built = ScheduleState.build(check_schedule(schedule))
        scheduler_id = built.schedule.scheduler_id
        old = state.schedules.get(scheduler_id)
        if old is not None and old.schedule == built.schedule:
            return
        if old is not None:
            self._drop_pending(state, old)
        state.schedules[scheduler_id] = built
        self._add_iteration(state, built, built.first_at(self.clock.now()))

    async def remove_schedule(self, queue: str, scheduler_id: str) -> bool:
        """Remove a scheduler and its upcoming job; False if there was none."""
        state = self._open(queue)
        schedule = state.schedules.pop(check_lookup_id(scheduler_id, "scheduler_id"), None)
        if schedule is None:
            return False
        self._drop_pending(state, schedule)
        return True

    @staticmethod
    def _drop_pending(state: QueueState, schedule: ScheduleState) -> None:
        record = state.jobs.get(schedule.job_id or "")
        if record is not None and record.state == "delayed":
            state.remove(record)

    async def list_schedules(self, queue: str) -> list[Schedule]:
        """The queue's schedulers, soonest first."""
        state = self._open(queue)
        ordered = sorted(
            state.schedules.values(), key=lambda s: (s.next_at, s.schedule.scheduler_id)
        )
        return [schedule.schedule for schedule in ordered]
