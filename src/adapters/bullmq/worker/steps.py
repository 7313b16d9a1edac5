"""A slot's steps against Redis: fetch, finish, progress, release, and recovering lost fetches.

Every command goes through the worker's pipelined connection and rides out connection loss
(it is sent again after the reconnect).

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
from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import NoScriptError, ResponseError

from portside.adapters.bullmq.jobs import BullMQJob, JobActions, children_values
from portside.adapters.bullmq.settings import BullMQSettings
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS, REDIS_ERRORS
from portside.adapters.bullmq.transport.pipelined import (
    ConnectionClosedError,
    PipelinedConnection,
)
from portside.adapters.bullmq.worker.attempts import Ending, record_commands
from portside.adapters.bullmq.worker.commands import QueueCommands
from portside.adapters.bullmq.worker.signal import WorkSignal
from portside.adapters.reconnect import reconnect_delay
from portside.ports import JobOutcome, ValidationError

__all__ = ["Intake", "OutcomeSink", "SlotSteps"]

log = logging.getLogger("portside.adapters.bullmq")

OutcomeSink = Callable[[JobOutcome], None]

_HAND_BACK_ERRORS: tuple[type[BaseException], ...] = (*REDIS_ERRORS, ConnectionClosedError)


class Intake(Protocol):
    """Whether the worker takes jobs now (the slot loop opens and closes its intake)."""

    @property
    def intake(self) -> bool: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


class SlotSteps:
    """The commands the slots of one worker send, and the jobs they hold (see the module
    docstring).

    Attributes:
        active: The jobs the worker holds: job id -> lock token.
        tokens: Each slot's lock token.
        orphaned: Slots whose fetch reply was lost; they recover before fetching again.
        processed: Attempts recorded (any ending).
        failed: Attempts recorded as failed or retrying.
        last_fetch_at: When a fetch last answered (epoch seconds).
        sinks: Callbacks receiving each recorded attempt's outcome (``drain``).
    """

    def __init__(
        self,
        *,
        commands: QueueCommands,
        connection: PipelinedConnection,
        signal: WorkSignal,
        concurrency: int,
        limiter: dict[str, int] | None,
        settings: BullMQSettings,
        worker_id: str,
    ) -> None:
        self.commands = commands
        self.queue = commands.queue.portside
        self.connection = connection
        self.settings = settings
        self.limiter = limiter
        self.tokens = [f"{worker_id}:{slot}" for slot in range(concurrency)]
        self._fetch_opts = [commands.fetch_opts(token, limiter) for token in self.tokens]
        self._signal = signal
        self.active: dict[str, str] = {}
        self.orphaned: set[int] = set()
        self.processed = 0
        self.failed = 0
        self.last_fetch_at: float | None = None
        self.sinks: list[OutcomeSink] = []

    # -- fetching --------------------------------------------------------------------------

    def fetch_command(self, slot: int) -> tuple[Any, ...]:
        """The command fetching the next job for ``slot``."""
        return self.commands.move_to_active(_now_ms(), self._fetch_opts[slot])

    def job(self, slot: int, reply: Any) -> BullMQJob | None:
        """The job a fetch reply carries, or None (the reply's wait hints go to the signal)."""
        if type(reply) is not list or not reply:
            return None
        self.last_fetch_at = time.time()
        raw = reply[0]
        if type(raw) is list and raw:
            fields = dict(zip(raw[::2], raw[1::2], strict=True))
            return BullMQJob(str(reply[1]), fields, self.queue, self.tokens[slot], self)
        self._signal.note(reply)
        return None

    async def call(self, command: tuple[Any, ...], fetching_for: int | None = None) -> Any:
        """Send one command, riding out connection loss (resend after reconnect).

        Args:
            fetching_for: The slot whose fetch this is: a lost reply orphans that slot, which
                then recovers before the fetch is sent again.
        """
        attempt = 0
        while True:
            try:
                return await self.connection.call(command)
            except NoScriptError:
                await self.connection.reload_scripts()
            except ConnectionClosedError:
                raise
            except CONNECTION_ERRORS as exc:
                log.debug("command to %s failed (%s); retrying after reconnect", self.queue, exc)
                if fetching_for is not None:
                    self.orphaned.add(fetching_for)
                await asyncio.sleep(reconnect_delay(attempt, self.settings.retry_backoff, 0.5))
                await self.connection.wait_connected()
                if fetching_for is not None:
                    await self.recover([fetching_for])
                attempt += 1
            except asyncio.CancelledError:
                if fetching_for is not None:
                    self.orphaned.add(fetching_for)  # the reply may still come, unheard
                raise

    async def recover(self, slots: list[int], *, retry: bool = True) -> None:
        """Release the jobs locked with these slots' tokens that the worker does not hold.

        Only safe while none of these slots has a fetch in flight (see the module docstring).
        """
        tokens = {self.tokens[slot]: slot for slot in slots}
        command = self.commands.locked_by(list(tokens))
        found = await (self.call(command) if retry else self.connection.call(command))
        for job_id, token in zip(found[::2], found[1::2], strict=True):
            if self.active.get(job_id) == token:
                continue
            release = self.commands.release(job_id, token)
            reply = await (self.call(release) if retry else self.connection.call(release))
            if type(reply) is int and reply < 0:
                continue  # its lock expired meanwhile: the stalled check has it
            log.warning(
                "job %s of %s was fetched by slot %d but the reply was lost with the Redis "
                "connection; released it back to waiting (no attempt used)",
                job_id,
                self.queue,
                tokens[token],
            )
        self.orphaned.difference_update(slots)

    # -- finishing -------------------------------------------------------------------------

    def _finish_commands(
        self, slot: int, ending: Ending, fetch_next: bool
    ) -> tuple[list[tuple[Any, ...]], bool]:
        return record_commands(
            self.commands,
            ending,
            fetch_opts=self._fetch_opts[slot] if fetch_next else None,
            limiter=self.limiter,
            max_events=self.settings.max_events,
        )

    async def finish(self, slot: int, ending: Ending, gate: Intake) -> tuple[Any, bool]:
        """Record the attempt; returns (next-job reply or None, whether fetching was tried).

        Args:
            gate: While its intake is open the finish also fetches the slot's next job
                (asked again for a resend).
        """
        job = ending.job
        commands, tried = self._finish_commands(slot, ending, gate.intake)
        resent = False
        while True:
            futures = [self.connection.call(command) for command in commands]
            try:
                for future in futures[:-1]:
                    with contextlib.suppress(ResponseError):
                        await future
                reply = await futures[-1]
                break
            except NoScriptError:
                await self.connection.reload_scripts()
            except ConnectionClosedError:
                raise
            except asyncio.CancelledError:
                if tried:
                    self.orphaned.add(slot)
                raise
            except ResponseError:
                # The job stays locked in Redis; forgetting it lets the lock expire so the
                # stalled check hands it to a worker again.
                self.active.pop(job.id, None)
                log.exception("BullMQ rejected the end of job %s of %s", job.id, self.queue)
                return None, False
            except CONNECTION_ERRORS as exc:
                log.debug("finishing job %s failed (%s); resending after reconnect", job.id, exc)
                await self.connection.wait_connected()
                if tried:
                    # The job being finished is still in ``active``, so it is not released.
                    self.orphaned.add(slot)
                    await self.recover([slot])
                resent = True
                commands, tried = self._finish_commands(slot, ending, gate.intake)
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
        await self._hand_back_slot(gate)
        return reply, tried

    async def _hand_back_slot(self, gate: Intake) -> None:
        """Touch the marker after a job ended on a worker that takes no more (Q13).

        Finishing with *fetch next* reuses a queue-wide slot at once. A worker that stops
        taking jobs gives its slot back instead; under a queue-wide cap the other workers are
        parked with nothing to wake them (BullMQ's finish script adds no marker), so this
        wakes one to look again instead of leaving it blocked for ``block_timeout``.
        """
        if gate.intake:
            return
        try:
            async with asyncio.timeout(self.settings.command_timeout):
                await self.connection.call(("ZADD", self.commands.marker, "0", "0"))
        except _HAND_BACK_ERRORS as exc:
            log.debug("could not wake other workers of %s: %s", self.queue, exc)

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
        """Store a job's progress (used by ``BullMQJob.update_progress``).

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
        reply = await self.call(command)
        if type(reply) is int and reply < 0:
            log.warning("progress of job %s of %s not stored: the job is gone", job_id, self.queue)

    async def log(self, job: BullMQJob, line: str) -> None:
        """Append a log line to a job (used by ``BullMQJob.log``); a line for a job that is
        gone is dropped with a warning, as progress is."""
        reply = await self.call(self.commands.add_log(job.id, line, job.stored.keep_logs))
        if type(reply) is int and reply < 0:
            log.warning("log line of job %s of %s not stored: the job is gone", job.id, self.queue)

    async def children_values(self, job_id: str) -> dict[str, Any]:
        """The results of a parent's completed children (used by ``BullMQJob``)."""
        key = self.commands.base + job_id + ":processed"
        reply = await self.call(("HGETALL", key))
        return children_values(reply, self.commands.queue.root)

    # -- releasing -------------------------------------------------------------------------

    async def release_unfinished(self) -> None:
        """On stop: put every held job back to waiting."""
        await self.release_jobs(list(self.active.items()))

    async def release_jobs(self, jobs: list[tuple[str, str]]) -> None:
        """Put held jobs back to waiting (best effort, one bounded try each)."""
        if not jobs:
            return
        futures = [
            self.connection.call(self.commands.release(job_id, token)) for job_id, token in jobs
        ]
        for (job_id, _), future in zip(jobs, futures, strict=True):
            try:
                async with asyncio.timeout(self.settings.command_timeout):
                    await future
                log.info("released unfinished job %s of %s back to waiting", job_id, self.queue)
            except REDIS_ERRORS as exc:
                log.warning("could not release job %s of %s: %s", job_id, self.queue, exc)
            self.active.pop(job_id, None)

    async def release_orphans(self) -> None:
        """On stop: one bounded try to free what orphaned slots may have left locked."""
        if not self.orphaned:
            return
        slots = sorted(self.orphaned)
        try:
            async with asyncio.timeout(self.settings.command_timeout):
                await self.recover(slots, retry=False)
        except REDIS_ERRORS as exc:
            log.warning(
                "could not look for jobs of %s fetched with a lost reply: %s (the stalled "
                "check requeues them once their lock expires)",
                self.queue,
                exc,
            )


def _conforms(steps: SlotSteps) -> JobActions:
    return steps
