"""Job management in the queue fake: list, remove, promote, change delay, update data, clean.

Each follows the BullMQ script of the same name (``getRanges``, ``removeJob``, ``promote``,
``changeDelay``, ``updateData``, ``cleanJobsInSet``, ``getJobLogs``), checked by the same
contract suite as the BullMQ adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portside.adapters.memory.queue.flows import StateOf, drop_from_parent, links
from portside.adapters.memory.queue.jobs import JobRecord
from portside.adapters.memory.queue.state import QueueState
from portside.ports import JobLogs, JobNotFoundError, JobPage, JobState, JobStateError

__all__ = [
    "change_delay",
    "clean",
    "find",
    "get_logs",
    "list_jobs",
    "promote_job",
    "remove_job",
    "update_data",
]


def find(state: QueueState, job_id: str) -> JobRecord:
    """The live record of ``job_id``, or ``JobNotFoundError``."""
    record = state.jobs.get(job_id)
    if record is None or record.removed:
        raise JobNotFoundError(state.name, job_id)
    return record


def _listed(state: QueueState, kind: JobState) -> list[JobRecord]:
    if kind == "waiting":
        return [] if state.paused else state.ordered("waiting")
    if kind == "paused":
        return state.ordered("waiting") if state.paused else []
    return state.ordered(kind)


def list_jobs(
    state: QueueState, states: Sequence[JobState], offset: int, limit: int, ascending: bool
) -> JobPage:
    """A page of the jobs in ``states``, state by state, each in BullMQ's order."""
    found: list[JobRecord] = []
    for kind in states:
        listed = _listed(state, kind)
        found.extend(listed if ascending else reversed(listed))
    page = found[offset : offset + limit]
    return JobPage(jobs=[r.info(paused=state.paused) for r in page], total=len(found))


def _active_below(record: JobRecord) -> JobRecord | None:
    """An active job among the children ``record`` still waits for, at any depth."""
    found = record.links
    for child in found.pending.values() if found is not None else ():
        if child.state == "active" and not child.removed:
            return child
        deeper = _active_below(child)
        if deeper is not None:
            return deeper
    return None


def remove_job(state: QueueState, job_id: str, state_of: StateOf, *, force: bool) -> None:
    """BullMQ's ``removeJob`` with its children: refused while the job (unless ``force``)
    or one of the children it waits for is active, or while it is a scheduler's next run.
    """
    record = find(state, job_id)
    schedule = state.schedules.get(record.scheduler_id or "")
    if schedule is not None and schedule.job_id == record.id:
        raise JobStateError(
            state.name,
            job_id,
            record.state,
            f"job {job_id!r} of queue {state.name!r} is the next run of job scheduler "
            f"{record.scheduler_id!r}",
            fix=f"remove the schedule instead: remove_schedule({state.name!r}, "
            f"{record.scheduler_id!r})",
            field="job_id",
        )
    if record.state == "active" and not force:
        raise JobStateError(
            state.name,
            job_id,
            "active",
            f"job {job_id!r} of queue {state.name!r} is active",
            fix="wait until it finished (wait_until_finished), or pass force=True to remove "
            "it anyway (its worker's result is then dropped)",
            field="force",
        )
    busy = _active_below(record)
    if busy is not None:
        raise JobStateError(
            state.name,
            job_id,
            record.state,
            f"job {job_id!r} of queue {state.name!r} waits for child {busy.id!r} of queue "
            f"{busy.queue!r}, which is active",
            fix="wait until the child finished, or remove the child first",
            field="job_id",
        )
    drop_from_parent(record, state_of, hard=False)
    _remove_with_children(record, state_of)


def _remove_with_children(record: JobRecord, state_of: StateOf) -> None:
    found = record.links
    if found is not None:
        keys = {*found.processed, *found.ignored, *found.unsuccessful, *found.pending}
        for key in sorted(keys):
            child = found.known.get(key)
            if child is not None and not child.removed:
                links(record).pending.pop(key, None)
                _remove_with_children(child, state_of)
    _delete(state_of(record.queue), record)


def _delete(state: QueueState, record: JobRecord) -> None:
    """Remove one record from wherever it is, freeing its dedupe key (BullMQ's removal)."""
    if record.state == "waiting":
        state.unlist(record)
    if record.state == "active":
        state.active.discard(record)
    key = record.dedupe_key
    if key is not None and state.dedupe.get(key, ("",))[0] == record.id:
        del state.dedupe[key]
    state.remove(record)
    state.wake()


def promote_job(state: QueueState, job_id: str) -> None:
    """BullMQ's ``promote``: a delayed job waits from now on, behind those already waiting."""
    record = find(state, job_id)
    if record.state != "delayed":
        raise _not_delayed(state, record, "promote")
    record.delay = 0.0
    state.push_ready(record)
    state.wake()


def change_delay(state: QueueState, job_id: str, delay: float, now: float) -> None:
    """BullMQ's ``changeDelay``: a delayed job becomes due ``delay`` seconds from now."""
    record = find(state, job_id)
    if record.state != "delayed":
        raise _not_delayed(state, record, "change the delay of")
    record.delay = delay
    state.push_delayed(record, now + delay)


def _not_delayed(state: QueueState, record: JobRecord, action: str) -> JobStateError:
    shown = "paused" if state.paused and record.state == "waiting" else record.state
    return JobStateError(
        state.name,
        record.id,
        shown,
        f"cannot {action} job {record.id!r} of queue {state.name!r}: it is {shown}, not delayed",
        fix="only a delayed job can be promoted or have its delay changed",
        field="job_id",
    )


def update_data(state: QueueState, job_id: str, data: dict[str, Any]) -> None:
    """BullMQ's ``updateData``: attempts that start later read ``data``."""
    find(state, job_id).data = data


def clean(
    state: QueueState, kind: str, older_than: float, limit: int | None, state_of: StateOf
) -> list[str]:
    """BullMQ's ``cleanJobsInSet`` for finished jobs: remove those finished at or before
    ``older_than``, oldest first, at most ``limit``; their children stay."""
    removed: list[str] = []
    for record in state.ordered(kind):
        if limit is not None and len(removed) >= limit:
            break
        finished = record.finished_at
        if finished is None or finished > older_than:
            continue
        drop_from_parent(record, state_of, hard=True)
        _delete(state, record)
        removed.append(record.id)
    return removed


def get_logs(
    state: QueueState, job_id: str, offset: int, limit: int | None, ascending: bool
) -> JobLogs:
    """A job's log lines (BullMQ ``getJobLogs``)."""
    logs = find(state, job_id).logs or []
    ordered = logs if ascending else logs[::-1]
    end = None if limit is None else offset + limit
    return JobLogs(lines=list(ordered[offset:end]), count=len(logs))
