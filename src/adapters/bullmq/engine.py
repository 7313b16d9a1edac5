"""The consume loop: fixed slots, finish-and-fetch in one script, pipelined on one connection.

Each of ``concurrency`` slots is a long-lived task that holds at most one job: it runs the
handler, then sends BullMQ's ``moveToFinished`` (or ``moveToDelayed``) with *fetch next* set,
so completing a job and taking the next is one script call. Commands from all slots share one
pipelined connection (``Link``), so a burst of completions costs a few writes and reads.
Slots that find the queue empty park; a single waiter blocks on BullMQ's marker key (BZPOPMIN
on its own connection) and wakes as many parked slots as there is work, doubling each round.

A fetch whose reply is lost with its connection may still have run: the job then sits in
BullMQ's active list locked with the slot's token, unknown to the worker. Such a slot is
*orphaned*; before it fetches again it looks for jobs locked with its token that it does
not hold (portside's ``lockedBy``) and puts them back to waiting, as ``close`` does with
unfinished jobs. Only the slot itself does this, between fetches, so none of its own fetches
is in flight and a job it is about to receive is never released under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from portside.adapters.bullmq.attempts import Ending, run_attempt
from portside.adapters.bullmq.commands import QueueCommands
from portside.adapters.bullmq.config import Tuning
from portside.adapters.bullmq.errors import CONNECTION_ERRORS, REDIS_ERRORS
from portside.adapters.bullmq.jobs import BullJob
from portside.adapters.bullmq.link import BlockingConnection, Link, LinkClosedError
from portside.adapters.bullmq.recording import record_commands
from portside.adapters.bullmq.signal import WorkSignal
from portside.adapters.reconnect import reconnect_delay
from portside.ports import Classifier, JobHandler, JobOutcome, ValidationError

__all__ = ["Engine"]

log = logging.getLogger("portside.adapters.bullmq")

_Parked = tuple[int, "asyncio.Future[BullJob | None]"]
OutcomeSink = Callable[[JobOutcome], None]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Engine:
    """Slots, waiter and bookkeeping of one worker (see the module docstring)."""

    def __init__(
        self,
        *,
        commands: QueueCommands,
        link: Link,
        blocking: BlockingConnection,
        handler: JobHandler,
        concurrency: int,
        limiter: dict[str, int] | None,
        timeout: float | None,
        classify: Classifier,
        tuning: Tuning,
        worker_id: str,
        on_repeat: Callable[[BullJob], Awaitable[None]],
    ) -> None:
        self.commands = commands
        self.queue = commands.queue.portside
        self.link = link
        self.blocking = blocking
        self.handler = handler
        self.concurrency = concurrency
        self.timeout = timeout
        self.classify = classify
        self.tuning = tuning
        self.on_repeat = on_repeat
        self.limiter = limiter
        self.tokens = [f"{worker_id}:{slot}" for slot in range(concurrency)]
        self._fetch_opts = [commands.fetch_opts(token, limiter) for token in self.tokens]
        self.active: dict[str, str] = {}
        self.processed = 0
        self.failed = 0
        self.last_fetch_at: float | None = None
        self.sinks: list[OutcomeSink] = []
        self.intake = False
        self.draining = False
        self._parked: deque[_Parked] = deque()
        self._busy = 0
        self._slots: list[asyncio.Task[None]] = []
        self._waiter: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._signal = WorkSignal(blocking, commands.marker, tuning.block_timeout)
        self._fetching = False
        self._fetched = asyncio.Event()
        self._stopping = False
        self._refetch = False
        self._holding: list[str | None] = [None] * concurrency
        self._orphaned: set[int] = set()

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
        await self._release_unfinished()
        await self._release_orphans()

    async def _release_unfinished(self) -> None:
        await self._release_jobs(list(self.active.items()))

    async def _release_jobs(self, jobs: list[tuple[str, str]]) -> None:
        """Put held jobs back to waiting (best effort, one bounded try each)."""
        if not jobs:
            return
        futures = [self.link.call(self.commands.release(job_id, token)) for job_id, token in jobs]
        for (job_id, _), future in zip(jobs, futures, strict=True):
            try:
                async with asyncio.timeout(self.tuning.command_timeout):
                    await future
                log.info("released unfinished job %s of %s back to waiting", job_id, self.queue)
            except REDIS_ERRORS as exc:
                log.warning("could not release job %s of %s: %s", job_id, self.queue, exc)
            self.active.pop(job_id, None)

    async def _release_orphans(self) -> None:
        """On stop: one bounded try to free what orphaned slots may have left locked."""
        if not self._orphaned:
            return
        slots = sorted(self._orphaned)
        try:
            async with asyncio.timeout(self.tuning.command_timeout):
                await self._recover(slots, retry=False)
        except REDIS_ERRORS as exc:
            log.warning(
                "could not look for jobs of %s fetched with a lost reply: %s (the stalled "
                "check requeues them once their lock expires)",
                self.queue,
                exc,
            )

    async def run_until_idle(self) -> None:
        """Start, run every due job, and stop again once nothing more is due (drain)."""
        self.start(draining=True)
        try:
            await self._idle.wait()
        finally:
            self.draining = False
            await self.stop(self.tuning.close_grace)

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
            except LinkClosedError:
                return
            except Exception:
                # A slot must never die silently: log, back off, and take jobs again. Its job
                # (if any) is forgotten, so its lock expires and the stalled check requeues it.
                log.exception("worker slot %d of %s failed; restarting it", slot, self.queue)
                held = self._holding[slot]
                if held is not None:
                    self.active.pop(held, None)
                    self._holding[slot] = None
                await asyncio.sleep(reconnect_delay(failures, 0.1, self.tuning.max_backoff))
                failures += 1

    async def _slot_loop(self, slot: int) -> None:
        ending: Ending | None = None
        while True:
            job: BullJob | None = None
            if slot in self._orphaned:
                await self._recover([slot])
            if ending is not None:
                reply, tried = await self._finish(slot, ending)
                ending = None
                self._holding[slot] = None
                job = self._job(slot, reply)
                if job is None and not tried and self.intake:
                    job = self._job(slot, await self._call(self._fetch(slot), slot))
            elif self.intake:
                job = self._job(slot, await self._call(self._fetch(slot), slot))
            if job is None:
                job = await self._park(slot)
                if job is None:
                    if slot in self._orphaned and not self._stopping:
                        continue  # woken to release what a lost fetch left locked
                    return
            self._busy += 1
            self._holding[slot] = job.id
            try:
                self.active[job.id] = job.token
                if job.fields.get("rjk"):
                    await self.on_repeat(job)
                ending = await run_attempt(job, self.handler, self.timeout, self.classify)
            finally:
                self._busy -= 1

    def _fetch(self, slot: int) -> tuple[Any, ...]:
        return self.commands.move_to_active(_now_ms(), self._fetch_opts[slot])

    def _job(self, slot: int, reply: Any) -> BullJob | None:
        if type(reply) is not list or not reply:
            return None
        self.last_fetch_at = time.time()
        raw = reply[0]
        if type(raw) is list and raw:
            fields = dict(zip(raw[::2], raw[1::2], strict=True))
            return BullJob(str(reply[1]), fields, self.queue, self.tokens[slot], self.progress)
        self._signal.note(reply)
        return None

    async def _call(self, command: tuple[Any, ...], fetching_for: int | None = None) -> Any:
        """Send one command, riding out connection loss (resend after reconnect).

        Args:
            fetching_for: The slot whose fetch this is: a lost reply orphans that slot, which
                then recovers before the fetch is sent again.
        """
        attempt = 0
        while True:
            try:
                return await self.link.call(command)
            except NoScriptError:
                await self.link.reload_scripts()
            except LinkClosedError:
                raise
            except CONNECTION_ERRORS as exc:
                log.debug("command to %s failed (%s); retrying after reconnect", self.queue, exc)
                if fetching_for is not None:
                    self._orphaned.add(fetching_for)
                await asyncio.sleep(reconnect_delay(attempt, self.tuning.retry_backoff, 0.5))
                await self.link.wait_connected()
                if fetching_for is not None:
                    await self._recover([fetching_for])
                attempt += 1
            except asyncio.CancelledError:
                if fetching_for is not None:
                    self._orphaned.add(fetching_for)  # the reply may still come, unheard
                raise

    async def _recover(self, slots: list[int], *, retry: bool = True) -> None:
        """Release the jobs locked with these slots' tokens that the worker does not hold.

        Only safe while none of these slots has a fetch in flight (see the module docstring).
        """
        tokens = {self.tokens[slot]: slot for slot in slots}
        command = self.commands.locked_by(list(tokens))
        found = await (self._call(command) if retry else self.link.call(command))
        for job_id, token in zip(found[::2], found[1::2], strict=True):
            if self.active.get(job_id) == token:
                continue
            release = self.commands.release(job_id, token)
            reply = await (self._call(release) if retry else self.link.call(release))
            if type(reply) is int and reply < 0:
                continue  # its lock expired meanwhile: the stalled check has it
            log.warning(
                "job %s of %s was fetched by slot %d but the reply was lost with the Redis "
                "connection; released it back to waiting (no attempt used)",
                job_id,
                self.queue,
                tokens[token],
            )
        self._orphaned.difference_update(slots)

    async def _park(self, slot: int) -> BullJob | None:
        if self._stopping:
            return None
        future: asyncio.Future[BullJob | None] = asyncio.get_running_loop().create_future()
        self._parked.append((slot, future))
        self._wake.set()
        return await future

    # -- finishing -------------------------------------------------------------------------

    def _finish_commands(self, slot: int, ending: Ending) -> tuple[list[tuple[Any, ...]], bool]:
        return record_commands(
            self.commands,
            ending,
            fetch_opts=self._fetch_opts[slot] if self.intake else None,
            limiter=self.limiter,
            max_events=self.tuning.max_events,
        )

    async def _finish(self, slot: int, ending: Ending) -> tuple[Any, bool]:
        """Record the attempt; returns (next-job reply or None, whether fetching was tried)."""
        job = ending.job
        commands, tried = self._finish_commands(slot, ending)
        resent = False
        while True:
            futures = [self.link.call(command) for command in commands]
            try:
                for future in futures[:-1]:
                    with contextlib.suppress(ResponseError):
                        await future
                reply = await futures[-1]
                break
            except NoScriptError:
                await self.link.reload_scripts()
            except LinkClosedError:
                raise
            except asyncio.CancelledError:
                if tried:
                    self._orphaned.add(slot)
                raise
            except ResponseError:
                # The job stays locked in Redis; forgetting it lets the lock expire so the
                # stalled check hands it to a worker again.
                self.active.pop(job.id, None)
                log.exception("BullMQ rejected the end of job %s of %s", job.id, self.queue)
                return None, False
            except CONNECTION_ERRORS as exc:
                log.debug("finishing job %s failed (%s); resending after reconnect", job.id, exc)
                await self.link.wait_connected()
                if tried:
                    # The job being finished is still in ``active``, so it is not released.
                    self._orphaned.add(slot)
                    await self._recover([slot])
                resent = True
                commands, tried = self._finish_commands(slot, ending)
        if type(reply) is int and reply < 0:
            self.active.pop(job.id, None)
            # After a resend these codes mean the first send recorded it (and, with -1,
            # removed it on completion).
            if not resent or reply not in (-1, -2, -3, -6):
                log.warning(
                    "job %s of %s could not be recorded as %s (BullMQ code %s): its lock was "
                    "lost, so another worker owns it now",
                    job.id,
                    self.queue,
                    ending.status,
                    reply,
                )
                return None, False
            reply = None
            tried = False
        self.active.pop(job.id, None)
        self._record(ending)
        return reply, tried

    def _record(self, ending: Ending) -> None:
        self.processed += 1
        if ending.status != "completed":
            self.failed += 1
        if not self.sinks:
            return
        job = ending.job
        outcome = JobOutcome(
            queue=self.queue,
            job_id=job.id,
            name=job.name,
            attempt=job.attempt,
            status=ending.status,
            result=ending.result,
            error=ending.error,
            failure_kind=ending.failure_kind,
        )
        for sink in self.sinks:
            sink(outcome)

    # -- progress --------------------------------------------------------------------------

    async def progress(self, job_id: str, progress: Any) -> None:
        """Store a job's progress (used by ``BullJob.update_progress``).

        Raises:
            ValidationError: ``progress`` is not a number or a JSON object.
        """
        if isinstance(progress, bool) or not isinstance(progress, int | float | dict):
            raise ValidationError(
                f"progress must be a number or a dict, got {type(progress).__name__}",
                fix="report a percentage such as 50 or a dict such as {'done': 3, 'total': 10}",
                field="progress",
            )
        try:
            command = self.commands.update_progress(job_id, progress)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"progress is not JSON: {exc}",
                fix="report only str, number, bool, None, list or dict values",
                field="progress",
            ) from None
        reply = await self._call(command)
        if type(reply) is int and reply < 0:
            log.warning("progress of job %s of %s not stored: the job is gone", job_id, self.queue)

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
                # again as soon as the link is back instead of blocking for the next one.
                self._refetch = False
                await self.link.wait_connected()
            elif not self.draining:
                try:
                    if not await self._signal.wait():
                        continue
                    failures = 0
                except CONNECTION_ERRORS as exc:
                    log.debug("blocking wait on %s failed: %s", self.queue, exc)
                    await asyncio.sleep(
                        reconnect_delay(
                            failures, self.tuning.retry_backoff, self.tuning.max_backoff
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
        batch = [self._parked.popleft() for _ in range(count)]
        futures = [self.link.call(self._fetch(slot)) for slot, _ in batch]
        found = 0
        requeue: list[_Parked] = []
        self._fetching = True
        try:
            for (slot, parked), future in zip(batch, futures, strict=True):
                try:
                    job = self._job(slot, await future)
                except NoScriptError:
                    await self.link.reload_scripts()
                    job = None
                except CONNECTION_ERRORS:
                    self._refetch = True
                    self._orphaned.add(slot)
                    if not parked.done():
                        # The slot wakes with no job and releases what the fetch took.
                        parked.set_result(None)
                        continue
                    job = None
                if job is None:
                    requeue.append((slot, parked))
                elif parked.done():
                    await self._release_jobs([(job.id, job.token)])
                else:
                    found += 1
                    parked.set_result(job)
        finally:
            self._parked.extendleft(reversed(requeue))
            self._fetching = False
            self._fetched.set()
        return found
