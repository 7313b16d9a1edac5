"""Pooled handlers of the Q14 tests: plain functions a pool child imports by name."""

from __future__ import annotations

import ctypes
import os
import time

from pydantic import BaseModel

from portside.app.pool import PoolContext


class Work(BaseModel):
    """What one test job does; ``until`` attempt ``n`` it misbehaves as ``mode`` says."""

    mode: str = "ok"
    seconds: float = 0.0
    until: int = 99


def burn(seconds: float) -> int:
    """Keep one core busy for ``seconds``, never yielding; the loop count."""
    end = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < end:
        spins += 1
    return spins


PID_DIR_ENV = "PORTSIDE_TEST_POOL_PIDS"
"""A directory where each attempt records its child's pid (set by the tests)."""


def record_pid(ctx: PoolContext) -> None:
    """Write this child's pid to ``<PID_DIR_ENV>/<job id>.<attempt>`` before anything else.

    Unbuffered and closed at once, so it survives the ``os._exit`` or crash that may follow;
    progress alone could not tell the tests this: a child that dies right after reporting
    may never have its progress relayed, and the retry's progress overwrites it.
    """
    directory = os.environ.get(PID_DIR_ENV)
    if not directory:
        return
    final = os.path.join(directory, f"{ctx.job_id}.{ctx.attempt}")
    partial = final + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    os.replace(partial, final)  # the file is complete once it has its name


def work(payload: Work, ctx: PoolContext) -> dict[str, object]:
    """Record the child's pid (file and progress), then do what ``payload.mode`` says."""
    record_pid(ctx)
    ctx.progress({"pid": os.getpid(), "step": 1})
    if ctx.attempt < payload.until:
        if payload.mode == "exit":
            os._exit(3)
        if payload.mode == "segfault":
            ctypes.string_at(0)
        if payload.mode == "memory":
            hog = bytearray(4 * 1024 * 1024 * 1024)
            return {"size": len(hog)}
        if payload.mode == "raise":
            raise LookupError("no palette for this image")
    spins = burn(payload.seconds)
    ctx.progress({"pid": os.getpid(), "step": 2})
    return {"pid": os.getpid(), "attempt": ctx.attempt, "spins": spins, "mode": payload.mode}
