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


def work(payload: Work, ctx: PoolContext) -> dict[str, object]:
    """Report the child's pid as progress, then do what ``payload.mode`` says."""
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
