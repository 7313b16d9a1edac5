"""The state of one named queue in the queue fake: its jobs, ready lists, delayed heap, counters."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from typing import Any

from portside.adapters.memory.queue.events import InMemoryEventStream
from portside.adapters.memory.queue.jobs import JobRecord
from portside.adapters.memory.queue.schedules import ScheduleState
from portside.ports import Retention

__all__ = ["Finish", "QueueState"]

_STATES = ("waiting", "delayed", "active", "completed", "failed", "waiting-children")

Finish = tuple[str, Any]
"""How an awaited job ended: ``("completed", result)``, ``("failed", record)`` or
``("removed", None)``."""


class QueueState:
    """Jobs of one queue. Ready jobs without priority are FIFO and go before prioritized ones,
    which run lowest number first (BullMQ's order); delayed jobs wait in a heap by due time.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.streams: list[InMemoryEventStream] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.finish_waiters: dict[str, list[asyncio.Future[Finish]]] = {}
        self.clear()

    def clear(self) -> None:
        """Forget every job, schedule and setting; event streams stay attached, and waits for
        a job's end learn that it was removed."""
        for job_id in list(self.finish_waiters):
            self.settle(job_id, ("removed", None))
        self.jobs: dict[str, JobRecord] = {}
        self.waiting: deque[JobRecord] = deque()
        self.prioritized: list[tuple[int, int, JobRecord]] = []
        self.delayed: list[tuple[float, int, JobRecord]] = []
        self.active: set[JobRecord] = set()
        self.timed: set[JobRecord] = set()
        self.finished: dict[str, deque[JobRecord]] = {"completed": deque(), "failed": deque()}
        self.counts: dict[str, int] = dict.fromkeys(_STATES, 0)
        self.paused = False
        self.queue_concurrency: int | None = None
        self.next_id = 0
        self.order = 0
        self.dedupe: dict[str, tuple[str, float]] = {}
        self.schedules: dict[str, ScheduleState] = {}
        self.window_start = -math.inf
        self.window_count = 0

    def next_order(self) -> int:
        """A counter that keeps FIFO order among equal priorities and due times."""
        self.order += 1
        return self.order

    def add(self, record: JobRecord) -> None:
        """Register a new record in its initial state (waiting or delayed)."""
        self.jobs[record.id] = record
        self.counts[record.state] += 1

    def move(self, record: JobRecord, state: str) -> None:
        """Change a record's state, keeping the counters right."""
        counts = self.counts
        counts[record.state] -= 1
        counts[state] += 1
        record.state = state

    def push_ready(
        self, record: JobRecord, *, front: bool = False, by_priority: bool = True
    ) -> None:
        """Make ``record`` waiting: priority 0 into the FIFO list, others into the priority heap.

        Args:
            front: Put it first in the FIFO list (it runs next).
            by_priority: False puts a prioritized job in the FIFO list too (as BullMQ does
                with a parent whose last child was removed).
        """
        if record.state != "waiting":
            self.move(record, "waiting")
        if record.priority == 0 or not by_priority:
            if front:
                self.waiting.appendleft(record)
            else:
                self.waiting.append(record)
        else:
            heapq.heappush(self.prioritized, (record.priority, record.order, record))

    def push_delayed(self, record: JobRecord, due_at: float) -> None:
        """Make ``record`` delayed until ``due_at``."""
        if record.state != "delayed":
            self.move(record, "delayed")
        record.due_at = due_at
        heapq.heappush(self.delayed, (due_at, record.order, record))

    def pop_ready(self) -> JobRecord | None:
        """The next ready job, removed from the ready lists (None if there is none)."""
        if self.waiting:
            return self.waiting.popleft()
        if self.prioritized:
            return heapq.heappop(self.prioritized)[2]
        return None

    def unlist(self, record: JobRecord) -> None:
        """Take a waiting ``record`` out of the ready lists (before removing or moving it)."""
        if record in self.waiting:
            self.waiting.remove(record)
            return
        kept = [entry for entry in self.prioritized if entry[2] is not record]
        if len(kept) != len(self.prioritized):
            heapq.heapify(kept)
            self.prioritized = kept

    def ordered(self, kind: str) -> list[JobRecord]:
        """The live jobs in state ``kind``, in BullMQ's ascending order for that state: next
        to run first (``waiting``), soonest due (``delayed``), earliest started (``active``),
        earliest finished (``completed``, ``failed``), oldest (``waiting-children``)."""
        if kind == "waiting":
            ranked = sorted(self.prioritized)
            return [*self.waiting, *(entry[2] for entry in ranked)]
        if kind == "delayed":
            entries = sorted(
                (entry[0], entry[1], entry[2])
                for entry in self.delayed
                if entry[2].state == "delayed"
                and entry[2].due_at == entry[0]
                and not entry[2].removed
            )
            return [entry[2] for entry in entries]
        if kind in ("completed", "failed"):
            return [r for r in self.finished[kind] if r.state == kind and not r.removed]
        found = [r for r in self.jobs.values() if r.state == kind]
        if kind == "active":
            found.sort(key=lambda r: (r.processed_at or 0.0, r.taken))
        else:
            found.sort(key=lambda r: (r.created_at, r.order))
        return found

    def settle(self, job_id: str, finish: Finish) -> None:
        """Tell the waits for ``job_id`` how it ended (``wait_until_finished``)."""
        futures = self.finish_waiters.pop(job_id, None)
        for future in futures or ():
            if not future.done():
                future.set_result(finish)

    def maxed(self) -> bool:
        """Whether the queue-wide cap is reached: as many jobs active as it allows (Q13)."""
        cap = self.queue_concurrency
        return cap is not None and len(self.active) >= cap

    def has_ready(self) -> bool:
        """Whether a job is waiting (paused or not)."""
        return bool(self.waiting or self.prioritized)

    def promote(self, now: float) -> int:
        """Move every delayed job due at ``now`` to the ready lists; return how many moved."""
        moved = 0
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            due_at, _, record = heapq.heappop(delayed)
            if record.state == "delayed" and record.due_at == due_at and not record.removed:
                self.push_ready(record)
                moved += 1
        return moved

    def next_due(self) -> float | None:
        """When the earliest delayed job is due."""
        while self.delayed:
            due_at, _, record = self.delayed[0]
            if record.state == "delayed" and record.due_at == due_at and not record.removed:
                return due_at
            heapq.heappop(self.delayed)
        return None

    def remove(self, record: JobRecord) -> None:
        """Delete a record for good (it must not be in the ready lists)."""
        if self.jobs.get(record.id) is record:
            del self.jobs[record.id]
            self.counts[record.state] -= 1
        record.removed = True
        self.release_dedupe(record)
        if self.finish_waiters:
            self.settle(record.id, ("removed", None))

    def release_dedupe(self, record: JobRecord) -> None:
        """Let a new job take ``record``'s dedupe key (BullMQ frees it when the job finishes)."""
        key = record.dedupe_key
        if key is not None:
            entry = self.dedupe.get(key)
            if entry is not None and entry[0] == record.id and entry[1] == math.inf:
                del self.dedupe[key]

    def trim(self, kind: str, keep: bool | int | Retention, now: float) -> None:
        """Apply a retention setting to the ``kind`` (completed or failed) jobs after a finish."""
        if keep is False:
            return
        order = self.finished[kind]
        limit: float
        if keep is True:
            limit, oldest = 0, -math.inf
        elif isinstance(keep, int):
            limit, oldest = keep, -math.inf
        else:
            limit = keep.count if keep.count is not None else math.inf
            oldest = now - keep.age if keep.age is not None else -math.inf
        while order and (self.counts[kind] > limit or _finished(order[0]) < oldest):
            record = order.popleft()
            if record.state == kind and not record.removed:
                self.remove(record)

    def wake(self) -> None:
        """Wake everything waiting for work or for a change in this queue."""
        if self.waiters:
            waiters, self.waiters = self.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def changed(self) -> asyncio.Future[None]:
        """A future resolved at the next :meth:`wake`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def snapshot_counts(self) -> dict[str, Any]:
        """Counts as QueueCounts fields; waiting jobs of a paused queue count as paused."""
        counts: dict[str, Any] = dict(self.counts)
        counts["waiting_children"] = counts.pop("waiting-children")
        counts["paused"] = 0
        if self.paused:
            counts["paused"], counts["waiting"] = counts["waiting"], 0
        return counts


def _finished(record: JobRecord) -> float:
    return record.finished_at if record.finished_at is not None else math.inf
