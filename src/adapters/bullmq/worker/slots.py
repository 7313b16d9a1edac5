"""The slot loop: a worker's fixed slots, each finishing a job and fetching the next in one call.

Each of ``concurrency`` slots is a long-lived task that holds at most one job: it runs the
handler, then sends BullMQ's ``moveToFinished`` (or ``moveToDelayed``) with *fetch next* set,
so completing a job and taking the next is one script call. Commands from all slots share one
pipelined connection (``PipelinedConnection``), so a burst of completions costs a few writes
and reads. Slots that find the queue empty park; a single waiter blocks on BullMQ's marker key
(BZPOPMIN on its own connection) and wakes as many parked slots as there is work, doubling
each round. What a slot sends to Redis, and how a lost fetch reply is recovered, is in
``steps.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from redis.exceptions import NoScriptError

from portside.adapters.bullmq.jobs import BullMQJob
from portside.adapters.bullmq.settings import BullMQSettings
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS
from portside.adapters.bullmq.transport.pipelined import ConnectionClosedError
from portside.adapters.bullmq.worker.attempts import Ending, run_attempt
from portside.adapters.bullmq.worker.signal import WorkSignal
from portside.adapters.bullmq.worker.steps import SlotSteps
from portside.adapters.reconnect import reconnect_delay
from portside.ports import AbandonedHandler, Classifier, JobHandler

__all__ = ["SlotLoop"]

log = logging.getLogger("portside.adapters.bullmq")

_Parked = tuple[int, "asyncio.Future[BullMQJob | None]"]


class SlotLoop:
    """Slots, waiter and intake of one worker (see the module docstring).

    Args:
        steps: What the slots send to Redis, and the jobs they hold.
        signal: The blocking wait for work, shared with ``steps`` (which notes fetch hints).
        handler: Runs each job.
        concurrency: Number of slots.
        timeout: Default attempt timeout in seconds (a job's own timeout wins).
        classify: Classifies handler failures as transient or permanent.
        on_abandoned: Hears of jobs failed for good without an attempt (stalled too often).
        settings: The adapter's settings.
        on_repeat: Called with a job a job scheduler produced, before it runs.
    """

    def __init__(
        self,
        *,
        steps: SlotSteps,
        signal: WorkSignal,
        handler: JobHandler,
        concurrency: int,
        timeout: float | None,
        classify: Classifier,
        on_abandoned: AbandonedHandler | None,
        settings: BullMQSettings,
        on_repeat: Callable[[BullMQJob], Awaitable[None]],
    ) -> None:
        self.steps = steps
        self.queue = steps.queue
        self.handler = handler
        self.concurrency = concurrency
        self.timeout = timeout
        self.classify = classify
        self.on_abandoned = on_abandoned
        self.settings = settings
        self.on_repeat = on_repeat
        self.intake = False
        self.draining = False
        self._parked: deque[_Parked] = deque()
        self._busy = 0
        self._slots: list[asyncio.Task[None]] = []
        self._waiter: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._signal = signal
        self._fetching = False
        self._fetched = asyncio.Event()
        self._stopping = False
        self._refetch = False
        self._holding: list[str | None] = [None] * concurrency

    @property
    def running(self) -> bool:
        """Whether slot tasks exist."""
        return bool(self._slots)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, draining: bool = False) -> None:
        """Create the slot tasks and the waiter; intake opens.

        Args:
            draining: Fetch without blocking and signal idleness (``run_until_idle``).
        """
        self.intake = True
        self.draining = draining
        self._stopping = False
        self._idle.clear()
        self._slots = [
            asyncio.create_task(self._slot(slot), name=f"portside-slot-{self.queue}-{slot}")
            for slot in range(self.concurrency)
        ]
        self._start_waiter()

    def open_intake(self) -> None:
        """Resume fetching (after ``close_intake``)."""
        self.intake = True
        self._start_waiter()
        self._wake.set()

    async def close_intake(self) -> None:
        """Stop fetching; in-flight jobs go on and park when done."""
        self.intake = False
        await self._stop_waiter()

    async def stop(self, grace: float) -> None:
        """Stop fetching, let in-flight jobs finish for ``grace`` seconds, release the rest."""
        self.intake = False
        self._stopping = True
        await self._stop_waiter()
        while self._parked:
            _, future = self._parked.popleft()
            if not future.done():
                future.set_result(None)
        slots, self._slots = self._slots, []
        pending = {task for task in slots if not task.done()}
        try:
            if pending and grace > 0:
                _, pending = await asyncio.wait(pending, timeout=grace)
        finally:
            for task in pending:  # all of them if stop() itself is cancelled
                task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        await self.steps.release_unfinished()
        await self.steps.release_orphans()

    async def run_until_idle(self) -> None:
        """Start, run every due job, and stop again once nothing more is due (drain)."""
        self.start(draining=True)
        try:
            await self._idle.wait()
        finally:
            self.draining = False
            await self.stop(self.settings.close_grace)

    async def clock_moved(self) -> None:
        """Forget rate-limit and delay waits (``advance`` changed them in Redis) and look
        for work again."""
        self._signal.reset()
        if self.intake and self._slots and not self.draining:
            await self._stop_waiter()
            self._start_waiter()
            self._wake.set()

    async def quiesce(self) -> None:
        """Fetch until a full round finds nothing due and no slot holds a job (for drain).

        Returns at once when intake is closed (a paused worker runs nothing).
        """
        if not self.intake or not self._slots:
            return
        self.draining = True
        self._idle.clear()
        await self._stop_waiter()
        self._start_waiter()
        self._wake.set()
        try:
            await self._idle.wait()
        finally:
            self.draining = False
            if self.intake and self._slots:
                await self._stop_waiter()
                self._start_waiter()

    # -- slots -----------------------------------------------------------------------------

    async def _slot(self, slot: int) -> None:
        failures = 0
        while True:
            try:
                await self._slot_loop(slot)
                return
            except ConnectionClosedError:
                return
            except Exception:
                # A slot must never die silently: log, back off, and take jobs again. Its job
                # (if any) is forgotten, so its lock expires and the stalled check requeues it.
                log.exception("worker slot %d of %s failed; restarting it", slot, self.queue)
                held = self._holding[slot]
                if held is not None:
                    self.steps.active.pop(held, None)
                    self._holding[slot] = None
                await asyncio.sleep(reconnect_delay(failures, 0.1, self.settings.max_backoff))
                failures += 1

    async def _slot_loop(self, slot: int) -> None:
        steps = self.steps
        ending: Ending | None = None
        while True:
            job: BullMQJob | None = None
            if slot in steps.orphaned:
                await steps.recover([slot])
            if ending is not None:
                reply, tried = await steps.finish(slot, ending, self)
                ending = None
                self._holding[slot] = None
                job = steps.job(slot, reply)
                if job is None and not tried and self.intake:
                    job = steps.job(slot, await steps.call(steps.fetch_command(slot), slot))
            elif self.intake:
                job = steps.job(slot, await steps.call(steps.fetch_command(slot), slot))
            if job is None:
                job = await self._park(slot)
                if job is None:
                    if slot in steps.orphaned and not self._stopping:
                        continue  # woken to release what a lost fetch left locked
                    return
            self._busy += 1
            self._holding[slot] = job.id
            try:
                steps.active[job.id] = job.token
                if job.fields.get("rjk"):
                    await self.on_repeat(job)
                ending = await run_attempt(
                    job, self.handler, self.timeout, self.classify, self.on_abandoned
                )
            finally:
                self._busy -= 1

    async def _park(self, slot: int) -> BullMQJob | None:
        if self._stopping:
            return None
        future: asyncio.Future[BullMQJob | None] = asyncio.get_running_loop().create_future()
        self._parked.append((slot, future))
        self._wake.set()
        return await future

    # -- waiting for work ------------------------------------------------------------------

    def _start_waiter(self) -> None:
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.create_task(
                self._wait_loop(), name=f"portside-wait-{self.queue}"
            )

    async def _stop_waiter(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            # Never cancel mid-fetch: a job moved to active whose reply we drop would sit
            # locked until the stalled checker frees it.
            try:
                while self._fetching:
                    self._fetched.clear()
                    await self._fetched.wait()
            finally:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def _wait_loop(self) -> None:
        ramp = 1
        failures = 0
        while True:
            if not self._parked or not (self.intake or self.draining):
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._refetch:
                # A fetch was lost with its connection: its marker may be gone, so fetch
                # again as soon as the connection is back instead of blocking for the next one.
                self._refetch = False
                await self.steps.connection.wait_connected()
            elif not self.draining:
                try:
                    if not await self._signal.wait():
                        continue
                    failures = 0
                except CONNECTION_ERRORS as exc:
                    log.debug("blocking wait on %s failed: %s", self.queue, exc)
                    await asyncio.sleep(
                        reconnect_delay(
                            failures, self.settings.retry_backoff, self.settings.max_backoff
                        )
                    )
                    failures += 1
                    continue
            count = len(self._parked) if self.draining else min(ramp, len(self._parked))
            self._wake.clear()
            found = await self._fetch_for_parked(count)
            if self.draining and found == 0:
                if self._busy == 0 and not self._moving():
                    self._idle.set()
                await self._wake.wait()
            ramp = min(ramp * 2, self.concurrency) if found == count else 1

    def _moving(self) -> bool:
        """Whether some slot is between tasks (finishing or fetching), not parked."""
        return len(self._parked) + self._busy < len(self._slots)

    async def _fetch_for_parked(self, count: int) -> int:
        steps = self.steps
        batch = [self._parked.popleft() for _ in range(count)]
        futures = [steps.connection.call(steps.fetch_command(slot)) for slot, _ in batch]
        found = 0
        requeue: list[_Parked] = []
        self._fetching = True
        try:
            for (slot, parked), future in zip(batch, futures, strict=True):
                try:
                    job = steps.job(slot, await future)
                except NoScriptError:
                    await steps.connection.reload_scripts()
                    job = None
                except CONNECTION_ERRORS:
                    self._refetch = True
                    steps.orphaned.add(slot)
                    if not parked.done():
                        # The slot wakes with no job and releases what the fetch took.
                        parked.set_result(None)
                        continue
                    job = None
                if job is None:
                    requeue.append((slot, parked))
                elif parked.done():
                    await steps.release_jobs([(job.id, job.token)])
                else:
                    found += 1
                    parked.set_result(job)
        finally:
            self._parked.extendleft(reversed(requeue))
            self._fetching = False
            self._fetched.set()
        return found
