"""`PoolProcess`: one pool child, started with ``python -m portside.app.pool.serve``."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from portside.app.pool.errors import (
    OUT_OF_MEMORY_EXIT,
    ChildCrashedError,
    ChildHandlerError,
    ChildOutOfMemoryError,
)
from portside.app.pool.protocol import ErrorReply, ProgressReply, Task, decode_reply

__all__ = ["READ_LIMIT", "PoolProcess"]

READ_LIMIT = 64 * 1024 * 1024
"""The longest answer line (a result or progress value as JSON) a child may write."""

_EXIT_WAIT = 5.0
"""Seconds a child gets to exit after its stdin closed before it is killed."""


def _child_env() -> dict[str, str]:
    # The child imports handlers the way this process does: the same import path.
    path = [entry for entry in sys.path if entry]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *path])}


class PoolProcess:
    """A child process that runs one attempt at a time for the pool.

    ``run`` sends a task and relays the child's progress until its answer; when the child dies
    meanwhile it raises ``ChildCrashedError`` (``ChildOutOfMemoryError`` for a handler out of
    memory). A ``run`` that is cancelled (a timeout, a worker stopping) kills the child.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid

    @classmethod
    async def start(cls, memory_limit_mb: int | None = None) -> PoolProcess:
        """Start a child; it is ready for a task at once (imports happen on its first task)."""
        limit = str(memory_limit_mb) if memory_limit_mb is not None else "-"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.pool.serve",
            limit,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=_child_env(),
            limit=READ_LIMIT,
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        """Whether the child has not exited (as far as this process has noticed)."""
        return self._process.returncode is None

    async def run(self, task: Task, on_progress: Callable[[Any], Awaitable[None]]) -> Any:
        """The handler's result for ``task``.

        Raises:
            ChildHandlerError: the handler raised (the child lives on).
            ChildCrashedError: the child died before answering.
        """
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(task.encode())
            await stdin.drain()
            while True:
                line = await stdout.readline()
                if not line:
                    raise await self._crashed(task.name)
                reply = decode_reply(line)
                if isinstance(reply, ProgressReply):
                    await on_progress(reply.value)
                    continue
                if isinstance(reply, ErrorReply):
                    raise ChildHandlerError(
                        reply.error_class, reply.message, reply.error_types, reply.kind
                    )
                return reply.value
        except (ChildHandlerError, ChildCrashedError):
            raise
        except (ConnectionError, BrokenPipeError):
            raise await self._crashed(task.name) from None
        except BaseException:
            # Cancelled (a timeout, a stopping worker), or the answer was garbled: the child
            # may still be busy with the task, so it is not used again.
            if self.alive:
                await self.kill()
            raise

    async def _crashed(self, job: str) -> ChildCrashedError:
        code = await self._process.wait()
        if code == OUT_OF_MEMORY_EXIT:
            return ChildOutOfMemoryError(job, self.pid, code)
        return ChildCrashedError(job, self.pid, code)

    async def kill(self) -> None:
        """SIGKILL the child and reap it."""
        if self._process.returncode is None:
            self._process.kill()
        await self._process.wait()

    async def close(self) -> None:
        """End the child: close its stdin and wait for it to exit, killing it if it lingers."""
        if self._process.returncode is not None:
            return
        stdin = self._process.stdin
        if stdin is not None:
            stdin.close()
        try:
            async with asyncio.timeout(_EXIT_WAIT):
                await self._process.wait()
        except TimeoutError:
            await self.kill()
