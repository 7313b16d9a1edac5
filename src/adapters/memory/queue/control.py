"""Queue control of the queue fake: counts, pause, purge, obliterate, retry and job schedulers."""

from __future__ import annotations

import heapq
from collections import deque

from portside.adapters.memory.queue.schedules import ScheduleState
from portside.adapters.memory.queue.state import QueueState
from portside.ports import JobInfo, QueueCounts, Schedule, ValidationError
from portside.ports.inputs import check_lookup_id, check_schedule

__all__ = [
    "counts",
    "get_job",
    "list_schedules",
    "obliterate",
    "purge",
    "queue_concurrency",
    "remove_schedule",
    "retry_failed",
    "set_paused",
    "set_queue_concurrency",
    "upsert_schedule",
]


def counts(state: QueueState) -> QueueCounts:
    """Jobs per state; waiting jobs of a paused queue count as ``paused``."""
    return QueueCounts(**state.snapshot_counts())


def get_job(state: QueueState, job_id: str) -> JobInfo | None:
    """The job's snapshot, or None if unknown (or removed by retention)."""
    record = state.jobs.get(check_lookup_id(job_id))
    return None if record is None else record.info(paused=state.paused)


def set_paused(state: QueueState, paused: bool) -> None:
    """Pause the queue for every worker, or resume it (waking workers)."""
    state.paused = paused
    if not paused:
        state.wake()


def set_queue_concurrency(state: QueueState, limit: int | None) -> None:
    """Set (or with None remove) the cap on the queue's active jobs across its workers (Q13);
    waiting workers look again, so a raised cap takes effect at once."""
    state.queue_concurrency = limit
    state.wake()


def queue_concurrency(state: QueueState) -> int | None:
    """The queue-wide cap, or None."""
    return state.queue_concurrency


def purge(state: QueueState, *, delayed: bool = True) -> int:
    """Remove waiting (and delayed) jobs, except schedulers' next jobs (as BullMQ does)."""
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


def obliterate(state: QueueState, *, force: bool = False) -> None:
    """Remove every job, schedule and setting of the queue.

    Raises:
        ValidationError: jobs are active and ``force`` is False.
    """
    if state.active and not force:
        raise ValidationError(
            f"queue {state.name!r} has {len(state.active)} active job(s)",
            fix="wait for them to finish (drain the queue or close its workers) or pass force=True",
            field="force",
        )
    for record in state.jobs.values():
        record.removed = True
    state.clear()
    state.wake()


def retry_failed(state: QueueState, *, job_id: str | None = None) -> int:
    """Move failed jobs (or the one ``job_id``) back to waiting with fresh attempts."""
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


# -- job schedulers (Q11) ----------------------------------------------------------------------


def upsert_schedule(state: QueueState, schedule: Schedule) -> ScheduleState | None:
    """Create or replace a job scheduler; an unchanged one is left alone.

    Returns:
        The stored scheduler, whose first job the caller adds, or None if it was unchanged.
    """
    built = ScheduleState.build(check_schedule(schedule))
    scheduler_id = built.schedule.scheduler_id
    old = state.schedules.get(scheduler_id)
    if old is not None and old.schedule == built.schedule:
        return None
    if old is not None:
        _drop_pending(state, old)
    state.schedules[scheduler_id] = built
    return built


def remove_schedule(state: QueueState, scheduler_id: str) -> bool:
    """Remove a scheduler and its upcoming job; False if there was none."""
    schedule = state.schedules.pop(check_lookup_id(scheduler_id, "scheduler_id"), None)
    if schedule is None:
        return False
    _drop_pending(state, schedule)
    return True


def list_schedules(state: QueueState) -> list[Schedule]:
    """The queue's schedulers, soonest first."""
    ordered = sorted(state.schedules.values(), key=lambda s: (s.next_at, s.schedule.scheduler_id))
    return [schedule.schedule for schedule in ordered]


def _drop_pending(state: QueueState, schedule: ScheduleState) -> None:
    record = state.jobs.get(schedule.job_id or "")
    if record is not None and record.state == "delayed":
        state.remove(record)
