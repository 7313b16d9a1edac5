"""CPU-bound handlers in a process pool, off the worker's event loop (Q14).

A job definition with ``executor=ProcessPool(size=...)`` runs its handler, a plain function
``def handler(payload, ctx: PoolContext) -> result``, in a child process. The payload and the
result cross as JSON; ``ctx.progress(...)`` reaches the job; the worker's event loop stays free,
so its locks keep renewing. A timed-out or interrupted attempt kills its child; a child that
crashes or runs out of memory fails only its attempt (transient) and the next job gets a fresh
child.
"""

from __future__ import annotations

from portside.app.pool.context import PoolContext
from portside.app.pool.errors import ChildCrashedError, ChildHandlerError, ChildOutOfMemoryError
from portside.app.pool.options import ProcessPool
from portside.app.pool.pools import Pools, WorkerPool

__all__ = [
    "ChildCrashedError",
    "ChildHandlerError",
    "ChildOutOfMemoryError",
    "PoolContext",
    "Pools",
    "ProcessPool",
    "WorkerPool",
]
