"""Background duties of a running worker: lock renewal and the stalled-job check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from portside.adapters.bullmq.transport.errors import REDIS_ERRORS
from portside.adapters.bullmq.worker.steps import SlotSteps

__all__ = ["Maintenance"]

log = logging.getLogger("portside.adapters.bullmq")


class Maintenance:
    """Renews the locks of in-flight jobs and requeues jobs whose lock expired.

    Lock renewal runs every half lock duration with one ``extendLocks`` call for all of the
    worker's jobs. The stalled check runs BullMQ's ``moveStalledJobsToWait`` at start and then
    every ``stalled_interval``; the script itself makes sure only one worker per interval
    does the work, so running it in every worker is safe (Node BullMQ does the same).
    """

    def __init__(self, steps: SlotSteps) -> None:
        self._steps = steps
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, *, stalled_check: bool) -> None:
        """Start renewal (and the stalled check unless ``stalled_check`` is False)."""
        if self._tasks:
            return
        name = self._steps.queue
        self._tasks.append(asyncio.create_task(self._renew(), name=f"portside-locks-{name}"))
        if stalled_check:
            task = asyncio.create_task(self._check_stalled(), name=f"portside-stalled-{name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop both loops."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew(self) -> None:
        steps = self._steps
        interval = steps.settings.lock_duration / 2
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew_once()
            except REDIS_ERRORS as exc:
                log.warning("renewing job locks on %s failed: %s", steps.queue, exc)
            except Exception:
                # The loop must outlive any bug: without it every lock of the worker expires.
                log.exception("renewing job locks on %s failed", steps.queue)

    async def _renew_once(self) -> None:
        steps = self._steps
        jobs = list(steps.active.items())
        if not jobs:
            return
        command = steps.commands.extend_locks(
            [job_id for job_id, _ in jobs], [token for _, token in jobs]
        )
        lost = await steps.connection.call(command)
        for job_id in lost or ():
            if job_id in steps.active:
                log.warning(
                    "lock of job %s on %s could not be renewed; another worker may take it",
                    job_id,
                    steps.queue,
                )

    async def _check_stalled(self) -> None:
        steps = self._steps
        settings = steps.settings
        interval_ms = round(settings.stalled_interval * 1000)
        while True:
            now = int(time.time() * 1000)
            command = steps.commands.move_stalled(settings.max_stalled_count, now, interval_ms)
            try:
                stalled = await steps.connection.call(command)
            except REDIS_ERRORS as exc:
                log.debug("stalled check on %s failed: %s", steps.queue, exc)
            except Exception:
                log.exception("stalled check on %s failed", steps.queue)
            else:
                for job_id in stalled or ():
                    log.warning(
                        "job %s of %s stalled: its lock expired while it was active (its "
                        "worker died, or could not renew the lock in time); moved back to "
                        "waiting",
                        job_id,
                        steps.queue,
                    )
            await asyncio.sleep(settings.stalled_interval)
