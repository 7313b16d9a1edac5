"""How an attempt run in a pool child can fail besides a timeout."""

from __future__ import annotations

import signal

from portside.ports import FailureKind, PortsideError, TransientError

__all__ = [
    "OUT_OF_MEMORY_EXIT",
    "ChildCrashedError",
    "ChildHandlerError",
    "ChildOutOfMemoryError",
    "describe_exit",
]

OUT_OF_MEMORY_EXIT = 75
"""The exit status of a child whose handler raised ``MemoryError`` (it exits: its heap may be
left unusable)."""


def describe_exit(code: int) -> str:
    """``exit status 3`` or ``signal SIGSEGV`` from a ``returncode``."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


class ChildCrashedError(TransientError):
    """The child running the attempt died (a crash, ``os._exit``, a kill): the attempt fails as
    transient and the pool replaces the child.

    ``returncode`` is the child's, as ``asyncio.subprocess.Process`` reports it.
    """

    def __init__(self, job: str, pid: int, returncode: int, *, why: str = "") -> None:
        self.pid = pid
        self.returncode = returncode
        super().__init__(
            f"the process-pool child (pid {pid}) running job {job!r} "
            + (why or f"died with {describe_exit(returncode)}"),
            fix=self._fix,
        )

    _fix = "see the worker's stderr for the child's last words; the queue retries the job"


class ChildOutOfMemoryError(ChildCrashedError):
    """The child's handler ran out of memory (``MemoryError`` under its ``memory_limit_mb``)."""

    _fix = "raise the pool's memory_limit_mb or make the handler use less; the queue retries it"

    def __init__(self, job: str, pid: int, returncode: int) -> None:
        super().__init__(job, pid, returncode, why="ran out of memory")


class ChildHandlerError(PortsideError):
    """The handler raised in the child; the exception itself stays there.

    Attributes:
        error_class: The exception's class name, e.g. ``ValueError``.
        error_types: ``module.qualname`` of each class in its MRO, most specific first; a job
            definition's ``classification`` is matched against these.
        kind: How the child classified it with portside's defaults (``PermanentError``,
            ``TransientError`` and parse errors as everywhere else).
    """

    def __init__(
        self, error_class: str, message: str, error_types: list[str], kind: FailureKind
    ) -> None:
        self.error_class = error_class
        self.error_types = error_types
        self.kind: FailureKind = kind
        super().__init__(f"{error_class}: {message}" if message else error_class)
