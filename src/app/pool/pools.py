"""`WorkerPool`: the children of one job definition's ``ProcessPool`` in one worker process;
`Pools`: a worker's pools, one per pooled job definition."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from portside.app.logs import event
from portside.app.pool.errors import ChildCrashedError
from portside.app.pool.options import ProcessPool
from portside.app.pool.process import PoolProcess
from portside.app.pool.protocol import Task

__all__ = ["Pools", "WorkerPool"]

_log = logging.getLogger("portside.worker")

Progress = Callable[[Any], Awaitable[None]]


class WorkerPool:
    """Up to ``options.size`` children, started when a job needs one and kept for the next.

    A child that died, was killed for a timeout or interrupted is dropped; the next job starts
    a fresh one, so the pool is back to full strength without a background task.

    Attributes:
        started: Children started so far (the first ones and every replacement).
        crashed: Children that died while running an attempt.
    """

    def __init__(
        self,
        name: str,
        options: ProcessPool,
        start: Callable[[int | None], Awaitable[PoolProcess]] = PoolProcess.start,
    ) -> None:
        self.name = name
        self.options = options
        self._start = start
        self._free = asyncio.Semaphore(options.size)
        self._idle: list[PoolProcess] = []
        self._busy: set[PoolProcess] = set()
        self._closed = False
        self.started = 0
        self.crashed = 0

    async def _take(self) -> PoolProcess:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
        child = await self._start(self.options.memory_limit_mb)
        self.started += 1
        event(_log, "pool.child_started", logging.DEBUG, job=self.name, pid=child.pid)
        return child

    async def run(self, task: Task, on_progress: Progress) -> Any:
        """Run ``task`` in a free child (waiting for one if all are busy); its result."""
        async with self._free:
            child = await self._take()
            self._busy.add(child)
            try:
                result = await child.run(task, on_progress)
            except ChildCrashedError as error:
                self.crashed += 1
                event(
                    _log,
                    "pool.child_crashed",
                    logging.WARNING,
                    job=self.name,
                    job_id=task.job_id,
                    pid=child.pid,
                    error=str(error),
                )
                raise
            finally:
                self._busy.discard(child)
                if child.alive and not self._closed:
                    self._idle.append(child)
            return result

    async def close(self) -> None:
        """End every child: idle ones exit at the end of their stdin, busy ones are killed."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy = list(self._busy)
        await asyncio.gather(*(child.close() for child in idle), *(child.kill() for child in busy))


class Pools:
    """A worker's ``WorkerPool`` per pooled job definition, made when first used."""

    def __init__(
        self, start: Callable[[int | None], Awaitable[PoolProcess]] = PoolProcess.start
    ) -> None:
        self._start = start
        self._pools: dict[str, WorkerPool] = {}

    def get(self, name: str, options: ProcessPool) -> WorkerPool:
        """The pool of job ``name``."""
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = WorkerPool(name, options, self._start)
        return pool

    async def close(self) -> None:
        """Close every pool."""
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))
